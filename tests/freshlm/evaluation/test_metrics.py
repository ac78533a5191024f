"""Accuracies, the FUAR-like forgetting ratio and paired comparisons on hand-made results."""

from __future__ import annotations

import pytest

from freshlm.evaluation.metrics import (
    METRIC_KEYS,
    accuracy,
    accuracy_by_group,
    compare,
    forgetting,
    mcnemar_exact_p,
    paired_comparison,
    pct_change,
)
from freshlm.evaluation.scoring import ItemResult


def results(prefix: str, correct: str, kind: str = "cloze", group: str = "new"):
    """One result per character of ``correct``: ``1`` right, ``0`` wrong."""
    return [
        ItemResult(
            item_id=f"{prefix}{i}",
            kind=kind,
            group=group,
            answer_index=0,
            chosen=0 if flag == "1" else 1,
            correct=flag == "1",
            logprobs=(-1.0, -2.0),
            tokens=(1, 1),
            bytes=(2, 2),
        )
        for i, flag in enumerate(correct)
    ]


def test_accuracy_and_groups():
    assert accuracy([]) is None
    assert accuracy(results("a", "1101")) == 0.75
    mixed = results("n", "10") + results("o", "111", group="old") + results("f", "0", "fact")
    assert accuracy_by_group(mixed) == {
        "cloze/new": {"items": 2, "correct": 1, "accuracy": 0.5},
        "cloze/old": {"items": 3, "correct": 3, "accuracy": 1.0},
        "fact/new": {"items": 1, "correct": 0, "accuracy": 0.0},
    }


def test_fuar_counts_forgotten_old_items_against_gained_new_items():
    base_old, cand_old = results("o", "1110"), results("o", "1000")  # o1, o2 forgotten
    base_new, cand_new = results("n", "0010"), results("n", "1110")  # n0, n1 gained
    f = forgetting(base_old, cand_old, base_new, cand_new)
    assert (f.forgotten, f.gained, f.fuar) == (2, 2, 1.0)
    assert (f.retention_items, f.new_items) == (4, 4)
    # An item the candidate newly gets right on old data is not "gained" (only new items
    # count), and one it loses on new data is not "forgotten".
    f = forgetting(results("o", "0111"), results("o", "1110"), results("n", "1"), results("n", "0"))
    assert (f.forgotten, f.gained, f.fuar) == (1, 0, None)
    f = forgetting(results("o", "11"), results("o", "11"), results("n", "00"), results("n", "11"))
    assert (f.forgotten, f.gained, f.fuar) == (0, 2, 0.0)
    f = forgetting(
        results("o", "1111"), results("o", "0111"), results("n", "000"), results("n", "111")
    )
    assert f.fuar == pytest.approx(1 / 3, abs=1e-6)
    # No items at all: nothing forgotten, nothing gained, ratio undefined.
    assert forgetting([], [], [], []).fuar is None


def test_paired_comparison_and_mcnemar():
    p = paired_comparison(results("x", "110010"), results("x", "101011"))
    assert (p.items, p.both_right, p.both_wrong, p.only_baseline, p.only_candidate) == (
        6,
        2,
        1,
        1,
        2,
    )
    assert p.baseline_acc == pytest.approx(0.5) and p.candidate_acc == pytest.approx(
        4 / 6, abs=1e-6
    )
    assert p.delta == pytest.approx(1 / 6, abs=1e-5)
    assert p.mcnemar_p == 1.0
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact_p(10, 0) == pytest.approx(2 / 1024, abs=1e-6)
    assert mcnemar_exact_p(5, 5) == 1.0
    assert paired_comparison([], []).delta is None


def test_results_must_be_over_the_same_items():
    with pytest.raises(ValueError, match="different items"):
        paired_comparison(results("a", "11"), results("b", "11"))
    with pytest.raises(ValueError, match="twice"):
        paired_comparison(results("a", "1") * 2, results("a", "1") * 2)


def test_comparison_signs_and_missing_metrics():
    base = dict.fromkeys(METRIC_KEYS)
    base.update(
        new_knowledge_acc=0.25,
        retention_acc=0.9,
        ppl_new=40.0,
        ppl_old=10.0,
        crows_stereo_share=0.6,
        latency_p95_ms=100.0,
        general_said_acc=1.0,
    )
    cand = dict(base, new_knowledge_acc=0.75, retention_acc=0.85, ppl_new=20.0, ppl_old=11.0)
    cand.update(general_said_acc=0.96)
    cand.update(crows_stereo_share=0.55, latency_p95_ms=None)
    f = forgetting(results("o", "1"), results("o", "0"), results("n", "0"), results("n", "1"))
    comparison = compare(base, cand, f)
    assert comparison == {
        "fuar": 1.0,
        "forgotten": 1,
        "gained": 1,
        "new_knowledge_gain": 0.5,
        "retention_drop": pytest.approx(0.05),
        "ppl_old_rise_pct": pytest.approx(10.0),
        "ppl_new_change_pct": pytest.approx(-50.0),
        "bias_change": pytest.approx(-0.05),
        "latency_p95_change_pct": None,
        "general_retention_drop": pytest.approx(0.04),
    }
    assert pct_change(1.0, 0.0) is None and pct_change(None, 1.0) is None
