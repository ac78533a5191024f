"""The general-knowledge retention set: the vendored questions, the selection at the base
version, its publication once per base, and how the evaluator and the gate use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freshlm.evaluation import general_knowledge as gk
from freshlm.evaluation.answers import answer_matches
from freshlm.evaluation.evaluate import evaluate
from freshlm.evaluation.report import validate_report
from freshlm.promotion.rules import decide, load_rules
from freshlm.registry import Lineage, publish_version, root_version
from freshlm.store import open_store
from tests.freshlm.evaluation import tiny_models
from tests.freshlm.evaluation.test_evaluate import CONFIG, FACT_ITEMS, NEW_ITEMS, OLD_ITEMS

SUPPORT_RULES = Path(__file__).parents[2] / "support" / "promotion_rules.yaml"

QUESTIONS = [
    gk.GeneralQuestion("ken-capital", "capital", "What is the capital of Kenya?", ("Nairobi",)),
    gk.GeneralQuestion(
        "jpn-currency", "currency", "What currency is used in Japan?", ("Japanese yen", "yen")
    ),
    gk.GeneralQuestion(
        "per-continent", "continent", "On which continent is Peru?", ("South America",)
    ),
]


def fake_answerer(answers: dict[str, str]):
    """Questions -> the canned answer of each (empty when none), recording every call."""
    calls: list[list[str]] = []

    def answer(questions):
        calls.append(list(questions))
        return [answers.get(q, "") for q in questions]

    return answer, calls


# --- the vendored data --------------------------------------------------------------------------


def test_the_vendored_questions_parse_and_every_one_has_an_answer():
    questions = gk.load_questions()
    assert len(questions) > 700
    assert gk.QUESTIONS_PATH.stat().st_size < 300_000
    assert {q.topic for q in questions} == {
        "capital",
        "currency",
        "language",
        "continent",
    }
    for q in questions:
        assert q.question.endswith("?") and q.answers and all(a.strip() for a in q.answers)
        # Echoing the question never counts as knowing the answer.
        assert not any(answer_matches(a, q.question) for a in q.answers), q
    by_id = {q.id: q for q in questions}
    assert by_id["ken-capital"].answers == ("Nairobi",)
    assert "yen" in by_id["jpn-currency"].answers
    assert by_id["per-continent"].answers == ("South America",)


def test_a_malformed_row_is_refused_naming_the_file_and_line(tmp_path):
    good = json.dumps(QUESTIONS[0].to_dict())
    for row, message in (
        ("not json", "line 2: not JSON"),
        ('{"id": "x", "topic": "t", "question": "Q?", "answers": []}', "line 2 .*'answers'"),
        ('{"id": "x", "topic": "t", "answers": ["a"]}', "line 2: 'question' must be"),
        (good, "line 2: question id 'ken-capital' is given twice"),
    ):
        path = tmp_path / "questions.jsonl"
        path.write_text(good + "\n" + row + "\n")
        with pytest.raises(ValueError, match=f"questions.jsonl {message}"):
            gk.load_questions(path)


# --- selection and publication ------------------------------------------------------------------


def test_selection_keeps_exactly_the_questions_answered_right():
    answer, _ = fake_answerer(
        {
            "What is the capital of Kenya?": "The capital of Kenya is Nairobi.",
            "What currency is used in Japan?": "Japan uses the yen.",  # an alias
            "On which continent is Peru?": "Peru is in North America.",
        }
    )
    kept, texts = gk.screen(QUESTIONS, answer)
    assert [q.id for q in kept] == ["ken-capital", "jpn-currency"]
    assert texts[2] == "Peru is in North America."
    with pytest.raises(ValueError, match="2 answers to 3 questions"):
        gk.screen(QUESTIONS, lambda qs: ["a", "b"])


@pytest.fixture
def questions_file(tmp_path):
    path = tmp_path / "general.jsonl"
    path.write_text("".join(json.dumps(q.to_dict()) + "\n" for q in QUESTIONS))
    return path


def test_the_set_is_published_once_and_reused_without_a_model(tmp_path, questions_file):
    store = open_store(tmp_path.joinpath("store").as_uri())
    base = "a" * 32
    answer, calls = fake_answerer({"What is the capital of Kenya?": "Nairobi"})
    built = gk.ensure_general_set(
        store, base, lambda: answer, max_questions=None, seed=0, max_new_tokens=32,
        questions_path=questions_file,
    )  # fmt: skip
    assert len(calls) == 1 and (built.kept, built.screened) == (1, 3)
    assert built.base_said_acc == 1.0 and built.unmeasured_reason() is None
    manifest = store.read_manifest(f"evaluations/general-sets/{base}")
    assert manifest.kind == "general-set"
    assert (manifest.fields["screened"], manifest.fields["kept"]) == (3, 1)
    assert manifest.fields["seconds"] >= 0 and manifest.fields["max_new_tokens"] == 32

    def no_model():
        raise AssertionError("a published set must not be screened again")

    again = gk.ensure_general_set(
        store, base, no_model, max_questions=None, seed=0, max_new_tokens=32
    )
    assert again.questions == built.questions and again.uri == built.uri
    assert again.summary() == {**built.summary(), "uri": again.uri}


def test_the_screening_sample_is_stable_and_capped(tmp_path, questions_file):
    store = open_store(tmp_path.joinpath("store").as_uri())
    answer, calls = fake_answerer({})
    empty = gk.build_general_set(
        store, "b" * 32, answer, max_questions=2, seed=0, max_new_tokens=32,
        questions_path=questions_file,
    )  # fmt: skip
    assert len(calls[0]) == 2 and empty.screened == 2
    # Nothing answered right: a valid, empty set that says why it measures nothing.
    assert empty.questions == () and empty.base_said_acc is None
    assert empty.unmeasured_reason() == (
        f"the base model {'b' * 32} answered none of the 2 general-knowledge questions screened"
    )
    assert gk.read_general_set(store, "b" * 32).questions == ()


def test_the_root_of_a_lineage_is_its_first_version(tmp_path):
    store = open_store(tmp_path.joinpath("store").as_uri())
    baseline_dir, candidate_dir = tiny_models.model_dirs()
    base, _ = publish_version(store, baseline_dir, lineage=Lineage(kind="bootstrap"))
    child, _ = publish_version(
        store, candidate_dir, lineage=Lineage(kind="finetune", parent_version=base.version_id)
    )
    assert root_version(store, child.version_id) == base.version_id
    assert root_version(store, base.version_id) == base.version_id


# --- the evaluator and the gate -----------------------------------------------------------------


def _lineage(tmp_path):
    store = open_store(tmp_path.joinpath("store").as_uri())
    baseline_dir, candidate_dir = tiny_models.model_dirs()
    base, _ = publish_version(store, baseline_dir, lineage=Lineage(kind="bootstrap"))
    child, _ = publish_version(
        store, candidate_dir, lineage=Lineage(kind="finetune", parent_version=base.version_id)
    )
    return store, base.version_id, child.version_id


CONFIG_GK = CONFIG.replace(crows_max_pairs=4)


def test_the_evaluator_asks_both_models_the_published_set(tmp_path, questions_file):
    """A published set (screened here by a stand-in that knew two answers) is read, not
    screened again, and both models are asked its questions and compared on them."""
    store, base, child = _lineage(tmp_path)
    answer, _ = fake_answerer(
        {"What is the capital of Kenya?": "Nairobi", "On which continent is Peru?": "South America"}
    )
    gk.build_general_set(
        store, base, answer, max_questions=None, seed=0, max_new_tokens=32,
        questions_path=questions_file,
    )  # fmt: skip
    report = evaluate(
        store, child, base, new_items=NEW_ITEMS, old_items=OLD_ITEMS, fact_items=FACT_ITEMS,
        config=CONFIG_GK, work_dir=tmp_path / "work", crows_path=None,
    )  # fmt: skip
    assert validate_report(report) == []
    general = report["general"]
    assert (general["base_version"], general["questions"], general["screened"]) == (base, 2, 3)
    assert general["base_said_acc"] == 1.0
    assert [row["id"] for row in general["rows"]] == ["ken-capital", "per-continent"]
    assert report["counts"]["general"] == 2 and report["counts"]["general_screened"] == 3
    assert "general_said_acc" not in report["counts"]["unmeasured"]
    accuracy = {}
    for side in ("baseline", "candidate"):
        right = [row[f"{side}_correct"] for row in general["rows"]]
        accuracy[side] = report[side]["metrics"]["general_said_acc"]
        assert accuracy[side] == sum(right) / 2
        for row in general["rows"]:
            said = row[f"{side}_said"]
            assert isinstance(said, str) and row[f"{side}_correct"] == any(
                answer_matches(a, said) for a in row["answers"]
            )
    assert report["comparison"]["general_retention_drop"] == pytest.approx(
        accuracy["baseline"] - accuracy["candidate"]
    )
    assert report["paired"]["general"]["items"] == 2
    page = store.read_bytes(f"reports/{child}/vs-{base}/report.html").decode()
    assert "General knowledge the base had" in page and "General knowledge, said" in page


def test_a_missing_set_is_screened_by_the_base_and_an_empty_one_is_not_measured(
    tmp_path, monkeypatch, questions_file, caplog
):
    """A store without the set (created before it existed): the base, here neither of the
    two models evaluated, is loaded to screen it. The tiny base answers nothing, so the set is
    empty, the metric unmeasured with the reason, and the optional rule passes."""
    store, base, child = _lineage(tmp_path)
    monkeypatch.setattr(gk, "QUESTIONS_PATH", questions_file)
    caplog.set_level("INFO", logger="freshlm.evaluation")
    grandchild_dir = tmp_path / "grandchild"
    grandchild_dir.mkdir()
    for path in tiny_models.model_dirs()[1].iterdir():
        (grandchild_dir / path.name).write_bytes(path.read_bytes())
    (grandchild_dir / "generation_config.json").write_text('{"note": "a distinct version"}')
    grandchild, _ = publish_version(
        store, grandchild_dir, lineage=Lineage(kind="finetune", parent_version=child)
    )
    report = evaluate(
        store, grandchild.version_id, child, new_items=NEW_ITEMS, old_items=[],
        config=CONFIG_GK, work_dir=tmp_path / "work", crows_path=None,
    )  # fmt: skip
    assert f"base {base} loaded in" in caplog.text
    assert "kept 0 of 3 questions screened" in caplog.text
    assert report["general"]["base_version"] == base and report["general"]["rows"] == []
    assert report["counts"]["unmeasured"]["general_said_acc"] == (
        f"the base model {base} answered none of the 3 general-knowledge questions screened"
    )
    for side in ("baseline", "candidate"):
        assert report[side]["metrics"]["general_said_acc"] is None
    assert report["comparison"]["general_retention_drop"] is None
    assert "general" not in report["paired"]
    result = decide(report, load_rules()).result("general_retention_drop")
    assert result.passed and result.observed is None
    assert gk.read_general_set(store, base).screened == 3


def _gate_report(general_retention_drop: float | None) -> dict:
    """A schema-1 report that passes every other shipped rule."""
    metrics = {"latency_p50_ms": 100.0, "general_said_acc": 1.0}
    return {
        "schema": 1,
        "candidate": {"version_id": "c" * 32, "metrics": metrics},
        "baseline": {"version_id": "b" * 32, "metrics": metrics},
        "comparison": {
            "new_knowledge_gain": 0.1,
            "retention_drop": 0.0,
            "ppl_old_rise_pct": 0.0,
            "bias_change": 0.0,
            "general_retention_drop": general_retention_drop,
        },
    }


def test_the_optional_rule_passes_an_empty_set_and_applies_a_measured_one():
    rules = load_rules()
    assert rules.general_retention_drop.threshold == 0.05
    assert rules.general_retention_drop.optional is True
    unmeasured = decide(_gate_report(None), rules)
    result = unmeasured.result("general_retention_drop")
    assert unmeasured.passed and result.passed and result.observed is None
    assert result.detail.startswith("not measured: comparison.general_retention_drop is null")
    forgot = decide(_gate_report(0.06), rules)
    assert not forgot.passed and [r.name for r in forgot.failed] == ["general_retention_drop"]
    kept = decide(_gate_report(0.05), rules)
    assert kept.passed
    # The test session's rules carry the same rule.
    support = load_rules(SUPPORT_RULES)
    assert support.general_retention_drop == rules.general_retention_drop
