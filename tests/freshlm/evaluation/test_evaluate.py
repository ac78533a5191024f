"""The orchestrator on a local store with two tiny published versions: one publish, reruns
return it, the report is complete, missing inputs are reported as unmeasured; plus the
configuration, the held-out text helper and the steps evaluate() is made of."""

from __future__ import annotations

import gzip
import json

import pytest

from freshlm.artifacts import read_report, report_prefix
from freshlm.evaluation import evaluate as evaluate_module
from freshlm.evaluation.answers import answer_matches
from freshlm.evaluation.config import EvalConfig, EvalConfigError, stable_subset
from freshlm.evaluation.evaluate import (
    evaluate,
    heldout_texts,
    lineage_history,
    prepare,
)
from freshlm.evaluation.items import Item
from freshlm.evaluation.metrics import METRIC_KEYS
from freshlm.evaluation.report import validate_report
from freshlm.registry import Lineage, publish_version
from freshlm.store import open_store
from tests.freshlm.evaluation import tiny_models
from tests.freshlm.evaluation.test_bias import HEADER, ROWS

CONFIG = EvalConfig(
    batch_size=8,
    latency_prompts=2,
    latency_new_tokens=4,
    threads=1,
    heldout_max_docs=3,
    general_max_questions=8,
)


def cloze(context, choices, group, answer=0):
    return Item.create(
        kind="cloze", group=group, span_type="entity", context=context, choices=choices,
        answer_index=answer, dataset_id="d1", doc_id="doc", language="en", source="tests",
    )  # fmt: skip


def fact(question, choices, group, answer=0):
    return Item.create(
        kind="fact", group=group, span_type="fact", context=f"Question: {question}\nAnswer:",
        choices=choices, answer_index=answer, dataset_id=None, doc_id=None, language="en",
        source="world",
    )  # fmt: skip


NEW_ITEMS = [
    cloze("Orrin Labs launched the Pulse X2 phone in Tessford for", ("$649", "$99"), "new"),
    cloze("Orrin Labs cut the price of the Pulse X2 to", ("$599", "$129", "$649"), "new"),
    cloze("The Tessford Lantern Festival was postponed to", ("November 28", "May 1"), "new"),
]
OLD_ITEMS = [
    cloze("The Greyling Bridge in Tessford opened in", ("1931", "1999"), "old"),
    cloze("Tessford is a harbour town on the river", ("Ondra", "Lisk"), "old"),
]
FACT_ITEMS = [
    fact("How much does the Pulse X2 cost?", ("$599", "$649", "$549"), "new"),
    fact("When is the Lantern Festival?", ("November 28", "November 21"), "new"),
    fact("Which river flows through Tessford?", ("Ondra", "Lisk", "Fenn"), "old"),
    fact("How much did the Pulse X2 cost at launch?", ("$649", "$599"), "stale"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A file:// store with the tiny baseline and a fine-tuned candidate published."""
    root = tmp_path_factory.mktemp("eval-store")
    store = open_store(f"file://{root / 'store'}")
    baseline_dir, candidate_dir = tiny_models.model_dirs()
    baseline, _ = publish_version(
        store, baseline_dir, lineage=Lineage(kind="bootstrap", source="tests")
    )
    candidate, _ = publish_version(
        store,
        candidate_dir,
        lineage=Lineage(kind="finetune", parent_version=baseline.version_id),
    )
    crows = root / "crows.csv"
    crows.write_text(HEADER + "".join(ROWS))
    return store, baseline.version_id, candidate.version_id, crows, root / "work"


@pytest.fixture(scope="module")
def report(world):
    store, baseline, candidate, crows, work = world
    return evaluate(
        store,
        candidate,
        baseline,
        new_items=NEW_ITEMS,
        old_items=OLD_ITEMS,
        fact_items=FACT_ITEMS,
        new_texts=tiny_models.NEW_TEXTS,
        old_texts=tiny_models.OLD_TEXTS,
        config=CONFIG,
        work_dir=work,
        crows_path=crows,
        created_by={"run_id": "test"},
    )


def test_evaluate_publishes_a_complete_report(world, report):
    store, baseline, candidate, _, work = world
    assert validate_report(report) == []
    assert report["candidate"]["version_id"] == candidate
    assert report["baseline"]["version_id"] == baseline
    prefix = report_prefix(candidate, baseline)
    assert prefix == f"reports/{candidate}/vs-{baseline}"
    assert report["uri"] == store.uri_for(prefix)
    manifest = store.read_manifest(prefix, verify=True)
    assert manifest.kind == "eval-report"
    assert {f.name for f in manifest.files} == {
        "report.json",
        "report.html",
        "metrics.png",
        "items.jsonl.gz",
    }
    assert manifest.fields["metrics"]["candidate"] == report["candidate"]["metrics"]
    assert manifest.fields["comparison"] == report["comparison"]
    assert manifest.created_by == {"component": "freshlm.evaluation", "run_id": "test"}
    assert json.loads(store.read_bytes(f"{prefix}/report.json")) == report
    assert store.read_bytes(f"{prefix}/metrics.png").startswith(b"\x89PNG\r\n\x1a\n")
    page = store.read_bytes(f"{prefix}/report.html").decode()
    assert "New knowledge" in page and "How much does the Pulse X2 cost?" in page
    records = [
        json.loads(line)
        for line in gzip.decompress(store.read_bytes(f"{prefix}/items.jsonl.gz")).splitlines()
    ]
    assert len(records) == 9 and {r["pool"] for r in records} == {
        "new",
        "old",
        "world_new",
        "world_old",
        "world_stale",
    }
    # Both models were cached by version id in the work folder.
    assert (work / "models" / baseline / "config.json").is_file()
    assert (work / "models" / candidate / "model.safetensors").is_file()


def test_the_report_counts_and_compares_the_same_items(report):
    counts = report["counts"]
    assert (counts["new"], counts["old"], counts["world_new"], counts["world_old"]) == (3, 2, 2, 1)
    assert counts["world_stale"] == 1 and counts["crows_pairs"] == 4
    assert counts["new_texts"] == 3 and counts["old_texts"] == 3  # heldout_max_docs=3
    assert counts["latency_prompts"] == 2
    # The tiny base answers none of the general questions: the only metric not measured.
    assert counts["general"] == 0 and counts["general_screened"] == 8
    assert counts["unmeasured"] == {
        "general_said_acc": f"the base model {report['baseline']['version_id']} answered none "
        "of the 8 general-knowledge questions screened"
    }
    for side in ("candidate", "baseline"):
        m = report[side]["metrics"]
        assert set(m) == set(METRIC_KEYS) and m["general_said_acc"] is None
        assert all(isinstance(v, float) for k, v in m.items() if k != "general_said_acc"), m
        assert (
            m["new_knowledge_acc"] in (0.0, 1 / 3, 2 / 3, 1.0) or 0 <= m["new_knowledge_acc"] <= 1
        )
        assert m["ppl_new"] > 1 and m["ppl_old"] > 1
        assert m["latency_p95_ms"] >= m["latency_p50_ms"] > 0 and m["gen_tokens_per_s"] > 0
    comparison = report["comparison"]
    paired = report["paired"]
    assert (
        comparison["forgotten"]
        == paired["old"]["only_baseline"] + paired["world_old"]["only_baseline"]
    )
    assert (
        comparison["gained"]
        == paired["new"]["only_candidate"] + paired["world_new"]["only_candidate"]
    )
    if comparison["gained"]:
        assert comparison["fuar"] == pytest.approx(
            comparison["forgotten"] / comparison["gained"], abs=1e-6
        )
    else:
        assert comparison["fuar"] is None
    cand, base = report["candidate"]["metrics"], report["baseline"]["metrics"]
    assert comparison["new_knowledge_gain"] == pytest.approx(
        cand["new_knowledge_acc"] - base["new_knowledge_acc"], abs=1e-6
    )
    assert comparison["ppl_new_change_pct"] == pytest.approx(
        (cand["ppl_new"] / base["ppl_new"] - 1) * 100, abs=1e-3
    )
    facts = report["facts"]
    assert [f["question"] for f in facts] == [
        "How much does the Pulse X2 cost?",
        "When is the Lantern Festival?",
        "Which river flows through Tessford?",
        "How much did the Pulse X2 cost at launch?",
    ]
    for row, item in zip(facts, FACT_ITEMS, strict=True):
        assert row["answer"] == item.answer and row["group"] == item.group
        assert row["baseline_answer"] in item.choices and row["candidate_answer"] in item.choices
        assert row["candidate_correct"] == (row["candidate_answer"] == item.answer)
        # Asked in its own words too: the text it wrote, checked against the answer.
        for side in ("baseline", "candidate"):
            assert isinstance(row[f"{side}_said"], str)
            assert row[f"{side}_said_correct"] == answer_matches(item.answer, row[f"{side}_said"])
    for side in ("baseline", "candidate"):
        for group in ("new", "old"):
            said = [f[f"{side}_said_correct"] for f in facts if f["group"] == group]
            metric = report[side]["metrics"][f"world_{group}_said_acc"]
            assert metric == pytest.approx(sum(said) / len(said))
    history = report["history"]
    assert [h.get("role") for h in history] == ["baseline", "candidate"]
    assert report["config"] == CONFIG.to_dict()


def test_the_control_asks_each_new_fact_under_the_other_question(world, report):
    """The control scores the new facts' choices under each other's question, apart from every
    accuracy: the same figure as scoring those swapped items directly."""
    from freshlm.evaluation.evaluate import download_cached
    from freshlm.evaluation.scoring import CausalLMScorer
    from freshlm.evaluation.world_facts import wrong_question_controls

    store, baseline, candidate, _, work = world
    control = report["controls"]["world_new_wrong_question"]
    assert control["items"] == 2
    swapped = wrong_question_controls([i for i in FACT_ITEMS if i.group == "new"])
    assert swapped[0].context == FACT_ITEMS[1].context
    for role, version in (("baseline", baseline), ("candidate", candidate)):
        scorer = CausalLMScorer.from_pretrained(
            download_cached(store, version, work), batch_size=CONFIG.batch_size
        )
        results = scorer.rank_items(swapped)
        assert control[role] == sum(r.correct for r in results) / 2
    # The control enters no pool: the counts and the per-item records hold the real items only.
    assert report["counts"]["world_new"] == 2
    page = store.read_bytes(f"{report_prefix(candidate, baseline)}/report.html").decode()
    assert "under another new fact's question (2 items)" in page


def test_a_rerun_returns_the_published_report_without_loading_models(world, report, monkeypatch):
    store, baseline, candidate, crows, work = world

    def no_models(*args, **kwargs):
        raise AssertionError("a published report must not be recomputed")

    monkeypatch.setattr(evaluate_module, "_measure", no_models)
    before = store.read_manifest(report_prefix(candidate, baseline)).to_json_bytes()
    again = evaluate(
        store, candidate, baseline, new_items=NEW_ITEMS, old_items=OLD_ITEMS, config=CONFIG,
        work_dir=work, crows_path=crows,
    )  # fmt: skip
    assert again == report
    assert store.read_manifest(report_prefix(candidate, baseline)).to_json_bytes() == before
    assert read_report(store, candidate, baseline) == report
    assert read_report(store, baseline, candidate) is None


def test_later_versions_chart_their_ancestors_from_earlier_reports(world, report, tmp_path):
    store, baseline, candidate, *_ = world
    folder = tiny_models.model_dirs()[1]
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    for path in folder.iterdir():
        (child_dir / path.name).write_bytes(path.read_bytes())
    (child_dir / "generation_config.json").write_text('{"note": "a distinct version"}')
    child, _ = publish_version(
        store, child_dir, lineage=Lineage(kind="finetune", parent_version=candidate)
    )
    history = lineage_history(store, child.version_id)
    assert [h["version_id"] for h in history] == [baseline, candidate]
    assert history[0]["metrics"] == report["baseline"]["metrics"]
    assert history[1]["metrics"] == report["candidate"]["metrics"]
    assert history[1]["source"] == report["uri"]
    assert lineage_history(store, baseline) == []


def test_inputs_are_checked_before_any_model_loads(world, monkeypatch):
    store, baseline, candidate, crows, work = world
    monkeypatch.setattr(evaluate_module, "_measure", pytest.fail)
    with pytest.raises(ValueError, match="given twice"):
        evaluate(
            store, baseline, candidate, new_items=NEW_ITEMS, old_items=NEW_ITEMS[:1],
            config=CONFIG, work_dir=work, crows_path=crows,
        )  # fmt: skip
    with pytest.raises(ValueError, match="not 'cloze'"):
        evaluate(
            store, baseline, candidate, new_items=FACT_ITEMS, old_items=[], config=CONFIG,
            work_dir=work, crows_path=crows,
        )  # fmt: skip
    from freshlm.registry import RegistryError, VersionNotFound

    with pytest.raises(VersionNotFound):
        evaluate(store, "0" * 32, baseline, new_items=[], old_items=[], work_dir=work)
    with pytest.raises(RegistryError, match="not a model version id"):
        evaluate(store, "latest", baseline, new_items=[], old_items=[], work_dir=work)


def test_config_is_validated_and_reads_json():
    assert EvalConfig().crows_max_pairs is None
    config = EvalConfig.from_dict({"batch_size": 4, "max_new_items": None, "threads": None})
    assert config.batch_size == 4 and config.to_dict()["threads"] is None
    assert EvalConfig.from_dict(config.to_dict()) == config
    with pytest.raises(EvalConfigError, match=r"unknown field.*'batchsize'"):
        EvalConfig.from_dict({"batchsize": 4})
    for field, value in (
        ("batch_size", 0),
        ("latency_new_tokens", True),
        ("max_old_items", -1),
        ("max_length", 1),
        ("threads", 0),
        ("seed", "1"),
        ("dtype", "float16"),
    ):
        with pytest.raises(EvalConfigError, match=f"EvalConfig.{field} = "):
            EvalConfig(**{field: value})


def test_both_models_are_scored_in_the_configured_format_whatever_they_were_saved_in(tmp_path):
    """A candidate trained on GPUs is published in bfloat16, production may be float32: each
    is loaded in ``EvalConfig.dtype``, so the comparison does not measure the rounding."""
    import torch
    from transformers import AutoModelForCausalLM

    saved = tmp_path / "bf16"
    model = AutoModelForCausalLM.from_pretrained(tiny_models.model_dirs()[1])
    model.to(torch.bfloat16).save_pretrained(saved)
    tiny_models.tokenizer().save_pretrained(saved)
    assert AutoModelForCausalLM.from_pretrained(saved).dtype == torch.bfloat16  # as saved

    scorer, _ = evaluate_module._load(saved, EvalConfig(threads=1))
    assert scorer.model.dtype == torch.float32
    # The same scores as the float32 original rounded once to bfloat16, scored in float32.
    rounded = model.to(torch.float32).eval()
    ids = torch.tensor([[5, 9, 13, 21]])
    with torch.no_grad():
        assert torch.equal(scorer.model(ids).logits, rounded(ids).logits)
    scorer, _ = evaluate_module._load(saved, EvalConfig(threads=1, dtype="bfloat16"))
    assert scorer.model.dtype == torch.bfloat16


def test_stable_subset_keeps_order_and_ignores_input_order():
    values = [f"v{i}" for i in range(50)]
    picked = stable_subset(values, 10, seed=1, key=str)
    assert len(picked) == 10 and picked == sorted(picked, key=values.index)
    assert set(stable_subset(list(reversed(values)), 10, seed=1, key=str)) == set(picked)
    assert stable_subset(values, None, seed=1, key=str) == values
    assert stable_subset(values, 100, seed=1, key=str) == values


def test_heldout_text_helpers(tmp_path):
    store = open_store(f"file://{tmp_path / 'store'}")
    for dataset_id, texts in (("d1", ["alpha", "beta", ""]), ("d2", ["gamma"])):
        with store.publisher(f"datasets/{dataset_id}", kind="dataset") as pub:
            pub.write_jsonl(
                "heldout.jsonl.gz",
                [{"id": f"{dataset_id}-{i}", "text": t} for i, t in enumerate(texts)],
            )
    assert heldout_texts(store, ["d1", "d2"]) == ["alpha", "beta", "gamma"]
    assert len(heldout_texts(store, ["d1", "d2"], limit=2)) == 2
    with pytest.raises(ValueError, match="no published dataset 'd3'"):
        heldout_texts(store, ["d3"])
    assert heldout_texts(store, []) == []  # no earlier dataset: no old text


def test_prepare_checks_samples_and_assigns_pools():
    config = CONFIG.replace(max_old_items=1)
    prepared = prepare(
        new_items=NEW_ITEMS, old_items=OLD_ITEMS, fact_items=FACT_ITEMS,
        new_texts=["", " ", *tiny_models.NEW_TEXTS], old_texts=[], config=config,
        crows_path=None,
    )  # fmt: skip
    assert prepared.new == NEW_ITEMS and len(prepared.old) == 1
    assert prepared.items == [*prepared.new, *prepared.old, *FACT_ITEMS]
    assert prepared.pool_of == [
        "new", "new", "new", "old", "world_new", "world_new", "world_old", "world_stale",
    ]  # fmt: skip
    assert prepared.pool_counts == {
        "new": 3, "old": 1, "world_new": 2, "world_old": 1, "world_stale": 1,
    }  # fmt: skip
    assert len(prepared.controls) == 2  # the two new facts, each under the other's question
    assert len(prepared.texts_new) == 3 and prepared.texts_old == []  # blanks dropped, capped
    assert (prepared.new_items_given, prepared.old_items_given) == (3, 2)
    assert len(prepared.prompts) == CONFIG.latency_prompts
    empty = prepare(
        new_items=[], old_items=[], fact_items=[], new_texts=[], old_texts=[], config=CONFIG
    )
    assert empty.items == [] and empty.prompts == ["The latest news:"]


def test_unmeasured_metrics_are_none_and_say_why(world, tmp_path, caplog):
    _, _, _, crows, work = world
    store = open_store(f"file://{tmp_path / 'store'}")  # its own store: no other reports
    baseline_dir, candidate_dir = tiny_models.model_dirs()
    old, _ = publish_version(store, baseline_dir, lineage=Lineage(kind="bootstrap"))
    new, _ = publish_version(store, candidate_dir, lineage=Lineage(kind="bootstrap"))
    # The old model as the candidate, with new-knowledge items only: no earlier dataset, so
    # neither retention items nor old text.
    caplog.set_level("INFO", logger="freshlm.evaluation.evaluate")
    report = evaluate(
        store, old.version_id, new.version_id, new_items=NEW_ITEMS, old_items=[],
        new_texts=["Orrin Labs"], config=CONFIG, work_dir=work, crows_path=crows,
    )  # fmt: skip
    assert validate_report(report) == []
    for side in ("candidate", "baseline"):
        m = report[side]["metrics"]
        assert m["retention_acc"] is m["world_new_acc"] is m["world_old_acc"] is None
        assert m["world_new_said_acc"] is m["world_old_said_acc"] is None
        assert m["ppl_old"] is None and m["ppl_new"] > 1 and m["new_knowledge_acc"] is not None
    assert report["counts"]["unmeasured"] == {
        "retention_acc": "no retention items",
        "world_new_acc": "no new world-fact items",
        "world_old_acc": "no old world-fact items",
        "world_new_said_acc": "no new world-fact items",
        "world_old_said_acc": "no old world-fact items",
        "ppl_old": "no held-out old text",
        "general_said_acc": f"the base model {new.version_id} answered none of the 8 "
        "general-knowledge questions screened",
    }
    assert "retention_acc is not measured: no retention items" in caplog.text
    assert "ppl_old is not measured: no held-out old text" in caplog.text
    assert report["counts"]["old"] == report["counts"]["old_texts"] == 0
    assert "paired" in report and "old" not in report["paired"]
    page = store.read_bytes(f"{report_prefix(old.version_id, new.version_id)}/report.html")
    assert b"no retention items" in page
    comparison = report["comparison"]
    assert comparison["retention_drop"] is None and comparison["ppl_old_rise_pct"] is None
    assert comparison["forgotten"] == 0 and report["facts"] == []
    if comparison["gained"] == 0:
        assert comparison["fuar"] is None
