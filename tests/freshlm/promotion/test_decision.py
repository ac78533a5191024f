"""The decision's effects: a pass moves production atomically (expecting the evaluated
baseline) with an audit record carrying the metrics; a fail keeps the candidate as rejected;
every outcome is recorded; of two concurrent promotions exactly one wins."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from freshlm.alerts.links import store_file_url
from freshlm.promotion import (
    CONFLICT,
    PROMOTED,
    REJECTED,
    apply_decision,
    decide,
    is_rejected,
    latest_verdict,
    list_decisions,
    load_rules,
    promote,
    reject,
)
from freshlm.promotion.decision import DECISIONS_PREFIX, decision_key
from freshlm.registry import (
    ABSENT,
    PREVIOUS,
    PRODUCTION,
    PromotionConflict,
    RegistryError,
    VersionNotFound,
    move_alias,
    read_alias,
    read_audit,
)
from freshlm.store import open_store
from tests.freshlm.promotion.conftest import make_report
from tests.support.slack_text import text_of

RULES = load_rules()
RUN = "scheduled__2026-11-03T02:00:00+00:00"
ACTOR = "dag:freshlm_evaluate"


@pytest.fixture
def versions(store, make_version):
    """Production ``base`` (moved there by the bootstrap) and two candidates."""
    base, cand, other = make_version("base"), make_version("cand"), make_version("other")
    move_alias(
        store,
        PRODUCTION,
        base.version_id,
        actor="bootstrap",
        reason="first model",
        expected_from=ABSENT,
    )
    return base.version_id, cand.version_id, other.version_id


def passing(candidate: str, baseline: str | None, **kwargs):
    report = make_report(candidate, baseline, **kwargs)
    decision = decide(report, RULES)
    assert decision.passed
    return report, decision


def failing(candidate: str, baseline: str | None):
    report = make_report(
        candidate, baseline, comparison={"retention_drop": 0.07, "bias_change": None}
    )
    decision = decide(report, RULES)
    assert [r.name for r in decision.failed] == ["retention_drop", "bias_change"]
    return report, decision


def test_a_pass_promotes_with_an_audited_move_a_record_and_a_slack_summary(
    store, versions, slack
) -> None:
    base, cand, _ = versions
    report, decision = passing(cand, base)
    result = promote(store, report, decision, actor=ACTOR, run_id=RUN, reason="nightly gate passed")

    assert read_alias(store, PRODUCTION).version_id == cand
    assert read_alias(store, PREVIOUS).version_id == base
    move = read_audit(store, PRODUCTION)[-1]
    assert (move.from_version_id, move.version_id) == (base, cand)
    assert move.actor == f"{ACTOR}/run:{RUN}" and move.reason == "nightly gate passed"
    assert move.report == "file:///store/reports/r1"
    assert move.metrics["new_knowledge_gain"] == 0.12
    assert move.metrics["candidate.retention_acc"] == 0.81
    assert move.metrics["baseline.ppl_old"] == 41.2
    assert move.metrics["gate.latency_regression"] == pytest.approx(10.0)

    assert result["outcome"] == PROMOTED and result["recorded"] is True
    assert result["slack_sent"] is True
    assert (result["production_before"], result["production_after"]) == (base, cand)
    assert result["alias_move"]["audit_key"] == move.audit_key
    assert result["key"] == decision_key(report, decision, PROMOTED)
    assert result["key"].startswith(f"{DECISIONS_PREFIX}/{cand}/")
    assert result["record_uri"] == store.uri_for(result["key"])
    stored = store.read_json(result["key"])
    assert stored == {
        k: v for k, v in result.items() if k not in ("record_uri", "recorded", "slack_sent")
    }
    assert [(r["name"], r["passed"]) for r in stored["results"]] == [
        (r.name, True) for r in decision.results
    ]
    assert stored["results"][0]["observed"] == 0.12 and stored["results"][0]["threshold"] == 0.05
    assert stored["report_uri"] == "file:///store/reports/r1"
    assert stored["actor"] == f"{ACTOR}/run:{RUN}" and stored["run_id"] == RUN
    assert stored["decided_at"].endswith("Z")

    [message] = slack.messages
    assert "promoted" in message.blocks[0]["text"]["text"]
    assert list_decisions(store) == [stored] and list_decisions(store, cand) == [stored]
    assert not is_rejected(store, cand) and latest_verdict(store, cand) == stored


def test_the_default_reason_is_the_decision_summary(store, versions, slack) -> None:
    base, cand, _ = versions
    report, decision = passing(cand, base)
    promote(store, report, decision, actor=ACTOR, notify=False)
    move = read_alias(store, PRODUCTION)
    assert move.reason == decision.summary() and move.actor == ACTOR
    assert slack.messages == []


def test_a_rerun_promotion_changes_nothing_and_does_not_page_again(store, versions, slack) -> None:
    base, cand, _ = versions
    report, decision = passing(cand, base)
    first = promote(store, report, decision, actor=ACTOR, run_id=RUN)
    again = promote(store, report, decision, actor=ACTOR, run_id=RUN)
    assert again["recorded"] is False and again["slack_sent"] is None
    assert again["key"] == first["key"] and again["decided_at"] == first["decided_at"]
    assert len(read_audit(store, PRODUCTION)) == 2
    assert len(list_decisions(store)) == 1 and len(slack.messages) == 1


def test_production_moved_meanwhile_is_a_conflict_and_nothing_is_promoted(
    store, versions, slack
) -> None:
    base, cand, other = versions
    report, decision = passing(cand, base)
    # Another run promoted `other` after `cand` was evaluated against `base`.
    move_alias(store, PRODUCTION, other, actor="dag:other", reason="won", expected_from=base)
    with pytest.raises(PromotionConflict) as info:
        promote(store, report, decision, actor=ACTOR, run_id=RUN)
    assert (info.value.expected, info.value.actual) == (base, other)
    assert f"not {base} as expected" in str(info.value) and "re-evaluate" in str(info.value)
    record_key = decision_key(report, decision, CONFLICT)
    assert any(store.uri_for(record_key) in note for note in info.value.__notes__)
    assert read_alias(store, PRODUCTION).version_id == other
    assert [m.version_id for m in read_audit(store, PRODUCTION)] == [base, other]
    [record] = list_decisions(store, cand)
    assert record["outcome"] == CONFLICT and record["passed"] is True
    assert record["conflict"]["actual"] == other and record["production_after"] == other
    assert latest_verdict(store, cand) is None and not is_rejected(store, cand)
    assert slack.messages == []


def test_a_fail_keeps_the_candidate_as_rejected_with_reasons(
    store, versions, slack, console
) -> None:
    base, cand, _ = versions
    report, decision = failing(cand, base)
    result = reject(store, report, decision, actor=ACTOR, run_id=RUN)

    assert read_alias(store, PRODUCTION).version_id == base  # untouched
    assert len(read_audit(store)) == 1
    assert result["outcome"] == REJECTED and result["passed"] is False
    assert result["failed_rules"] == ["retention_drop", "bias_change"]
    assert result["reasons"] == decision.reasons
    assert result["reasons"][0].startswith("retention_drop: +0.070 (must be <= 0.050)")
    assert "comparison.bias_change is null" in result["reasons"][1]
    observed = {r["name"]: r["observed"] for r in result["results"]}
    assert observed["retention_drop"] == 0.07 and observed["bias_change"] is None
    assert result["production_before"] == result["production_after"] == base
    assert result["comparison"]["retention_drop"] == 0.07
    assert result["candidate_metrics"]["new_knowledge_acc"] == 0.62
    assert is_rejected(store, cand) and not is_rejected(store, base)
    assert store.read_json(result["key"])["outcome"] == REJECTED

    [alert] = slack.messages
    assert "rejected" in alert.blocks[0]["text"]["text"]
    # The decision record is linked where a person can open it: the console serves it.
    assert store_file_url(result["key"], console) in text_of(alert)
    assert "file://" not in text_of(alert)
    # A retried task neither records nor alerts twice.
    again = reject(store, report, decision, actor=ACTOR, run_id=RUN)
    assert again["recorded"] is False and len(slack.messages) == 1
    assert len(list_decisions(store, cand)) == 1


def test_a_rejected_candidate_promoted_later_is_no_longer_rejected(store, versions, slack) -> None:
    base, cand, other = versions
    reject(store, *failing(cand, base), actor=ACTOR)
    assert is_rejected(store, cand)
    # Production changed; re-evaluated against the new production, the candidate passes.
    move_alias(store, PRODUCTION, other, actor="x", reason="y", expected_from=base)
    promote(store, *passing(cand, other, uri="file:///store/reports/r2"), actor=ACTOR)
    assert not is_rejected(store, cand)
    assert [r["outcome"] for r in list_decisions(store, cand)] == [REJECTED, PROMOTED]


def test_refused_calls_change_nothing(store, versions, slack, tmp_path: Path) -> None:
    base, cand, other = versions
    report, decision = passing(cand, base)
    bad_report, bad_decision = failing(cand, base)
    with pytest.raises(ValueError, match="did not pass"):
        promote(store, bad_report, bad_decision, actor=ACTOR)
    with pytest.raises(ValueError, match="passed; promote"):
        reject(store, report, decision, actor=ACTOR)
    with pytest.raises(ValueError, match="decide\\(\\) on this report first"):
        promote(store, make_report(other, base), decision, actor=ACTOR)
    with pytest.raises(ValueError, match="actor"):
        promote(store, report, decision, actor=" ")
    unknown = "e" * 32
    with pytest.raises(VersionNotFound):
        promote(store, *passing(unknown, base), actor=ACTOR)
    with pytest.raises(VersionNotFound):
        reject(store, *failing(unknown, base), actor=ACTOR)
    with pytest.raises(RegistryError, match="not a model version id"):
        reject(store, *failing("../../etc/passwd", base), actor=ACTOR)
    assert read_alias(store, PRODUCTION).version_id == base
    assert list_decisions(store) == [] and slack.messages == []


def test_apply_decision_dispatches_and_the_first_promotion_expects_no_production(
    store, make_version, slack
) -> None:
    first, second = make_version("first").version_id, make_version("second").version_id
    result = apply_decision(store, *passing(first, None), actor=ACTOR, reason="r")
    assert result["outcome"] == PROMOTED and result["production_before"] is None
    assert read_alias(store, PRODUCTION).version_id == first
    result = apply_decision(store, *failing(second, first), actor=ACTOR, reason="ignored")
    assert result["outcome"] == REJECTED and read_alias(store, PRODUCTION).version_id == first


def test_a_failed_slack_send_does_not_undo_or_fail_the_promotion(store, versions, slack) -> None:
    base, cand, _ = versions
    slack.ok = False
    result = promote(store, *passing(cand, base), actor=ACTOR)
    assert result["slack_sent"] is False and read_alias(store, PRODUCTION).version_id == cand


def test_non_finite_figures_are_recorded_as_null(store, versions, slack) -> None:
    base, cand, _ = versions
    report, decision = passing(cand, base, comparison={"fuar": float("nan")})
    result = promote(store, report, decision, actor=ACTOR)
    assert store.read_json(result["key"])["comparison"]["fuar"] is None
    assert read_alias(store, PRODUCTION).metrics["fuar"] is None


def test_a_foreign_object_under_decisions_is_a_clear_error(store, versions) -> None:
    _, cand, _ = versions
    store.write_json(f"{DECISIONS_PREFIX}/{cand}/junk.json", {"hello": 1})
    with pytest.raises(RegistryError, match="not a promotion decision record"):
        list_decisions(store)


def test_two_concurrent_promotions_exactly_one_wins(store, versions, slack) -> None:
    base, cand, other = versions
    pairs = [passing(cand, base), passing(other, base)]
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, object] = {}

    def run(report, decision) -> None:
        barrier.wait()
        try:
            outcomes[decision.candidate] = promote(store, report, decision, actor=ACTOR)
        except PromotionConflict as exc:
            outcomes[decision.candidate] = exc

    threads = [threading.Thread(target=run, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [vid for vid, out in outcomes.items() if isinstance(out, dict)]
    losers = [out for out in outcomes.values() if isinstance(out, PromotionConflict)]
    assert len(winners) == 1 and len(losers) == 1
    assert read_alias(store, PRODUCTION).version_id == winners[0]
    assert read_alias(store, PREVIOUS).version_id == base
    assert [m.version_id for m in read_audit(store, PRODUCTION)] == [base, winners[0]]
    assert sorted(r["outcome"] for r in list_decisions(store)) == [CONFLICT, PROMOTED]
    assert len(slack.messages) == 1


def _promote_in_process(root: str, report: dict, barrier, results) -> None:
    store = open_store(root)
    decision = decide(report, RULES)
    barrier.wait()
    try:
        promote(store, report, decision, actor="dag:racer", notify=False)
        results.put(("won", decision.candidate))
    except PromotionConflict as exc:
        results.put(("conflict", exc.actual))


def test_two_promotions_in_separate_processes_exactly_one_wins(
    store, make_version, tmp_path
) -> None:
    """The local store's lock is a file lock, so the race holds across processes (as two
    Airflow workers would run it), not only across threads."""
    base = make_version("base").version_id
    move_alias(store, PRODUCTION, base, actor="bootstrap", reason="first", expected_from=ABSENT)
    candidates = [make_version(f"racer{i}").version_id for i in range(3)]
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(candidates), timeout=60), ctx.Queue()
    procs = [
        ctx.Process(
            target=_promote_in_process,
            args=(store.root_uri, make_report(vid, base), barrier, results),
        )
        for vid in candidates
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    winners = [vid for kind, vid in outcomes if kind == "won"]
    assert len(winners) == 1
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "conflict", "won"]
    assert all(actual == winners[0] for kind, actual in outcomes if kind == "conflict")
    assert read_alias(store, PRODUCTION).version_id == winners[0]
    assert [m.version_id for m in read_audit(store, PRODUCTION)] == [base, winners[0]]
