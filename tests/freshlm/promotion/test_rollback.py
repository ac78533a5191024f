"""Rollback: production moves to a chosen earlier version validated against the registry, the
audit says who and why, Slack is told; refusals are clear and change nothing."""

from __future__ import annotations

import threading

import pytest

from freshlm.promotion import (
    RollbackRefused,
    available_versions,
    decide,
    load_rules,
    promote,
    reject,
    rollback_production,
)
from freshlm.promotion import rollback as rollback_module
from freshlm.registry import (
    ABSENT,
    PREVIOUS,
    PRODUCTION,
    PromotionConflict,
    VersionNotFound,
    move_alias,
    read_alias,
    read_audit,
)
from tests.freshlm.promotion.conftest import make_report
from tests.support.slack_text import text_of

RULES = load_rules()
ONCALL = "oncall:jiwoo"


@pytest.fixture
def history(store, make_version):
    """v1 -> v2 -> v3 went to production in turn; v3 is production, v2 previous."""
    ids = [make_version(f"v{i}").version_id for i in (1, 2, 3)]
    expected = ABSENT
    for vid in ids:
        move_alias(
            store,
            PRODUCTION,
            vid,
            actor="dag:nightly",
            reason="gate passed",
            expected_from=expected,
        )
        expected = vid
    return ids


def test_rollback_to_previous_records_why_and_tells_slack(store, history, slack) -> None:
    _, v2, v3 = history
    result = rollback_production(
        store, reason="answers about the launch are wrong", actor=ONCALL, run_id="manual__42"
    )
    assert (result["from_version"], result["to_version"]) == (v3, v2)
    assert read_alias(store, PRODUCTION).version_id == v2
    assert read_alias(store, PREVIOUS).version_id == v3  # a second rollback undoes this one
    move = read_audit(store, PRODUCTION)[-1]
    assert move.reason == "rollback: answers about the launch are wrong"
    assert move.actor == f"{ONCALL}/run:manual__42" and move.from_version_id == v3
    assert move.audit_key == result["audit_key"]
    assert result["served_before"] is True and result["was_rejected"] is False
    assert result["slack_sent"] is True
    [notice] = slack.messages
    shown = text_of(notice)
    assert notice.blocks[0]["text"]["text"].startswith(":rewind: FreshLM production rolled back")
    assert v2 in shown and v3 in shown and "answers about the launch are wrong" in shown


def test_rollback_to_a_chosen_earlier_version(store, history, slack) -> None:
    v1, _, v3 = history
    result = rollback_production(store, v1, reason="v2 and v3 both regressed", actor=ONCALL)
    assert read_alias(store, PRODUCTION).version_id == v1
    assert read_alias(store, PREVIOUS).version_id == v3
    assert result["to_version"] == v1 and len(read_audit(store, PRODUCTION)) == 4


@pytest.mark.parametrize("version", ["f" * 32, "not-a-version"])
def test_an_unknown_version_is_refused_listing_the_available_ones(
    store, history, slack, version: str
) -> None:
    v1, v2, v3 = history
    with pytest.raises(VersionNotFound) as info:
        rollback_production(store, version, reason="r", actor=ONCALL)
    message = str(info.value)
    assert f"cannot roll back production to {version!r}" in message
    assert f"{v3} (production); {v2} (previous); {v1} (served before)" in message
    assert read_alias(store, PRODUCTION).version_id == v3 and slack.messages == []


def test_the_current_production_is_refused(store, history, slack) -> None:
    v3 = history[-1]
    with pytest.raises(RollbackRefused, match=f"{v3} is production already .* gate passed"):
        rollback_production(store, v3, reason="r", actor=ONCALL)
    assert len(read_audit(store)) == 3 and slack.messages == []


def test_a_rejected_version_is_refused_unless_explicitly_allowed(
    store, history, make_version, slack
) -> None:
    v3 = history[-1]
    bad = make_version("bad").version_id
    report = make_report(bad, v3, comparison={"retention_drop": 0.2})
    reject(store, report, decide(report, RULES), actor="dag:nightly", notify=False)
    with pytest.raises(RollbackRefused) as info:
        rollback_production(store, bad, reason="r", actor=ONCALL)
    assert "was rejected by the promotion gate" in str(info.value)
    assert "retention_drop: +0.200 (must be <= 0.050)" in str(info.value)
    assert "allow_rejected=True" in str(info.value)
    assert read_alias(store, PRODUCTION).version_id == v3

    result = rollback_production(
        store,
        bad,
        reason="the only one without the tokenizer bug",
        actor=ONCALL,
        allow_rejected=True,
    )
    assert result["was_rejected"] is True and result["served_before"] is False
    assert result["rejection_key"].startswith(f"registry/decisions/{bad}/")
    move = read_alias(store, PRODUCTION)
    assert move.version_id == bad and "allowed although the promotion gate rejected" in move.reason
    assert move.metrics == {"rollback": True, "allow_rejected": True}
    shown = text_of(slack.messages[-1])
    assert "had been *rejected*" in shown and "never served production before" in shown


def test_a_version_that_never_served_is_allowed_but_flagged(store, history, make_version, slack):
    fresh = make_version("fresh").version_id
    result = rollback_production(store, fresh, reason="known good export", actor=ONCALL)
    assert result["served_before"] is False and result["was_rejected"] is False
    assert "never served production before" in text_of(slack.messages[-1])
    assert f"{fresh} (production)" in available_versions(store)[0]


def test_nothing_to_roll_back(store, make_version, slack) -> None:
    only = make_version("only").version_id
    with pytest.raises(RollbackRefused, match="production is not set"):
        rollback_production(store, only, reason="r", actor=ONCALL)
    move_alias(store, PRODUCTION, only, actor="bootstrap", reason="first", expected_from=ABSENT)
    with pytest.raises(RollbackRefused, match="no previous version to roll back to; name one"):
        rollback_production(store, reason="r", actor=ONCALL)
    with pytest.raises(ValueError, match="needs a reason"):
        rollback_production(store, only, reason="  ", actor=ONCALL)
    with pytest.raises(ValueError, match="actor"):
        rollback_production(store, only, reason="r", actor="")
    assert len(read_audit(store)) == 1 and slack.messages == []


def test_two_concurrent_rollbacks_exactly_one_wins(store, history, slack, monkeypatch) -> None:
    v1, v2, _ = history
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[object] = []
    read = rollback_module.read_alias

    def read_then_wait(store_: object, name: str) -> object:
        # Both rollbacks read production before either moves it, so they truly race: on a
        # busy machine one thread could otherwise finish before the other starts, and two
        # rollbacks one after the other both succeed, as they should.
        alias = read(store_, name)
        if name == PRODUCTION:
            barrier.wait()
        return alias

    monkeypatch.setattr(rollback_module, "read_alias", read_then_wait)

    def run(target: str) -> None:
        try:
            outcomes.append(rollback_production(store, target, reason="race", actor=ONCALL))
        except (PromotionConflict, RollbackRefused) as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in (v1, v2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if isinstance(o, dict)]
    assert len(outcomes) == 2 and len(winners) == 1
    assert read_alias(store, PRODUCTION).version_id == winners[0]["to_version"]
    assert len(read_audit(store, PRODUCTION)) == 4 and len(slack.messages) == 1


def test_a_candidate_evaluated_before_a_rollback_cannot_be_promoted_after_it(
    store, history, make_version, slack
) -> None:
    """The candidate was compared with v3; after the rollback production is v2, so the
    promotion is refused instead of replacing a model the candidate was never compared with."""
    _, v2, v3 = history
    cand = make_version("cand").version_id
    report = make_report(cand, v3)
    decision = decide(report, RULES)
    rollback_production(store, reason="v3 regressed", actor=ONCALL)
    with pytest.raises(PromotionConflict, match=f"production points at {v2}, not {v3}"):
        promote(store, report, decision, actor="dag:nightly")
    assert read_alias(store, PRODUCTION).version_id == v2
