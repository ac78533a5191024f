"""A version is never measured twice: the next night's evaluation of last night's candidate
(now production) reuses its scores and answers from the store, with the same results."""

from __future__ import annotations

import pytest

from freshlm.evaluation import answers as answers_module
from freshlm.evaluation.evaluate import evaluate
from freshlm.evaluation.memo import ScoreMemo, load_memo, memo_key, save_memo
from freshlm.evaluation.scoring import CausalLMScorer, torch_threads
from freshlm.registry import Lineage, publish_version
from freshlm.store import open_store
from tests.freshlm.evaluation import tiny_models
from tests.freshlm.evaluation.test_bias import HEADER, ROWS
from tests.freshlm.evaluation.test_evaluate import CONFIG, FACT_ITEMS, NEW_ITEMS, OLD_ITEMS


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


def test_a_scorer_with_a_memo_scores_each_request_once(tmp_path):
    scorer = CausalLMScorer(tiny_models.baseline_model(), tiny_models.tokenizer(), batch_size=4)
    pairs = [(item.context, c) for item in NEW_ITEMS for c in item.choices]
    plain = scorer.score_choices(pairs)
    scorer.memo = ScoreMemo()
    first = scorer.score_choices(pairs)
    assert [s.logprob for s in first] == pytest.approx([s.logprob for s in plain], abs=1e-5)

    def no_forward(requests):
        raise AssertionError(f"{len(requests)} requests computed again")

    scorer._forward_continuations = no_forward
    again = scorer.score_choices(pairs)
    assert again == first
    assert scorer.memo.hits == len(pairs)

    store = open_store(f"file://{tmp_path / 'store'}")
    save_memo(store, "v1", scorer.model, scorer.memo)
    loaded = load_memo(store, "v1", scorer.model)
    assert loaded.scores == scorer.memo.scores
    assert memo_key("v1", scorer.model).endswith("/v1/float32-cpu.jsonl.gz")
    assert load_memo(store, "v2", scorer.model).scores == {}


def test_a_damaged_memo_is_ignored_not_trusted(tmp_path):
    store = open_store(f"file://{tmp_path / 'store'}")
    model = tiny_models.baseline_model()
    store.write_jsonl(memo_key("v1", model), [{"key": "s:1", "logprob": "not a number"}])
    memo = load_memo(store, "v1", model)
    assert memo.scores == {} and memo.answers == {}


def test_a_version_measured_once_is_not_measured_again(tmp_path, monkeypatch):
    """Night 1 measures the base and the candidate; a later evaluation of the same two versions
    (here the other way round, as a rollback's check would) runs no scoring pass and answers
    no question again, and finds the same figures."""
    store = open_store(f"file://{tmp_path / 'store'}")
    base_dir, tuned_dir = tiny_models.model_dirs()
    base, _ = publish_version(store, base_dir, lineage=Lineage(kind="bootstrap", source="t"))
    night1, _ = publish_version(
        store, tuned_dir, lineage=Lineage(kind="finetune", parent_version=base.version_id)
    )
    crows = tmp_path / "crows.csv"
    crows.write_text(HEADER + "".join(ROWS))
    common = dict(
        new_items=NEW_ITEMS, old_items=OLD_ITEMS, fact_items=FACT_ITEMS,
        new_texts=tiny_models.NEW_TEXTS, old_texts=tiny_models.OLD_TEXTS, config=CONFIG,
        work_dir=tmp_path / "work", crows_path=crows,
    )  # fmt: skip
    first = evaluate(store, night1.version_id, base.version_id, **common)

    def no_pass(self, requests):
        raise AssertionError(f"{len(requests)} requests scored again")

    def no_answers(model, tokenizer, questions, **kwargs):
        if questions:
            raise AssertionError(f"{len(questions)} questions answered again")
        return []

    monkeypatch.setattr(CausalLMScorer, "_forward_requests", no_pass)
    monkeypatch.setattr(CausalLMScorer, "_forward_continuations", no_pass)
    monkeypatch.setattr(answers_module, "generate_answers", no_answers)
    second = evaluate(store, base.version_id, night1.version_id, **common)

    timed = ("latency_p50_ms", "latency_p95_ms", "gen_tokens_per_s")
    for role, other in (("baseline", "candidate"), ("candidate", "baseline")):
        want = {k: v for k, v in first[other]["metrics"].items() if k not in timed}
        assert {k: second[role]["metrics"][k] for k in want} == want
        assert second["timings"][role]["reused_measurements"] > len(NEW_ITEMS + OLD_ITEMS)
