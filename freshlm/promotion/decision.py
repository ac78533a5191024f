"""The gate decision's effects: promote the candidate, or keep it as rejected; record both.

**Promote** (:func:`promote`): ``production`` moves to the candidate with the registry's
compare-and-swap (:func:`freshlm.registry.move_alias`), *expecting the baseline the candidate
was evaluated against*: if production moved meanwhile (another promotion, a rollback), nothing
is promoted and :class:`~freshlm.registry.PromotionConflict` is raised, so a candidate can never
replace a model it was not compared with. The alias move's audit record carries who (actor and
run), when, why and the metrics (comparison, both sides' metrics, each rule's observed value).
Then a Slack summary.

**Reject** (:func:`reject`): production is left alone; the candidate stays in the registry
(versions are immutable) and is recorded as rejected with its reasons; then a Slack alert with
the metric table and the links.

**Records.** Every outcome writes one immutable decision record::

    registry/decisions/<candidate version>/<digest>-<outcome>.json

``outcome`` is ``promoted``, ``rejected`` or ``conflict`` (the gate passed but production had
moved). The record holds the verdict, every rule with its observed value and threshold, the
reasons, the report's URI and figures, who and which run, when, production before and after,
for a promotion the alias move, and who approved it when a person had to (``approval``).
``digest`` hashes the decision's inputs (candidate, baseline, report URI and figures, rule
results), not the clock, so a retried task finds its record instead of writing a second one
(DESIGN invariant 1); the record is written with ``if_none_match`` (one atomic conditional
write; a conditional PUT on S3), so it is either whole or absent. Slack is told only when the
record is new, so a retry does not page twice.

A candidate :func:`is_rejected` when its latest verdict (``promoted`` or ``rejected``; a
``conflict`` is no verdict on the model) is ``rejected``: a candidate re-evaluated later
against another production and promoted is no longer rejected. :func:`list_decisions` lists
the records, oldest first.

Write order of a promotion: the alias move first (the commit point; see
:mod:`freshlm.registry.aliases`), then the record. A crash between them leaves production
moved and audited; rerunning the task repeats the move as a no-op and writes the record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from freshlm.alerts.messages import SlackMessage
from freshlm.alerts.sender import send_slack
from freshlm.promotion.messages import promotion_summary, rejection_alert
from freshlm.promotion.rules import Decision, check_report
from freshlm.registry import (
    ABSENT,
    PRODUCTION,
    PromotionConflict,
    RegistryError,
    get_version,
    move_alias,
    read_alias,
)
from freshlm.registry.versions import check_version_id
from freshlm.store import KeyNotFound, PreconditionFailed, Store

log = logging.getLogger(__name__)

DECISIONS_PREFIX = "registry/decisions"
RECORD_SCHEMA = 1
PROMOTED = "promoted"
REJECTED = "rejected"
CONFLICT = "conflict"
OUTCOMES = (PROMOTED, REJECTED, CONFLICT)
VERDICTS = (PROMOTED, REJECTED)


def actor_label(actor: str, run_id: str | None) -> str:
    """Who moved an alias, as the audit log shows it: ``actor`` plus ``/run:<run_id>``."""
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError("actor must be a non-empty string (who or which DAG; it is audited)")
    actor = actor.strip()
    if run_id and f"run:{run_id}" not in actor:
        return f"{actor}/run:{run_id}"
    return actor


def promote(
    store: Store,
    report: Mapping[str, Any],
    decision: Decision,
    *,
    actor: str,
    run_id: str | None = None,
    reason: str | None = None,
    notify: bool = True,
    slack_conn_id: str | None = None,
    log_url: str | None = None,
    report_url: str | None = None,
    approval: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Move ``production`` to the candidate of a passed ``decision``; record it; tell Slack.

    ``approval`` (who approved and when, when a person had to) is kept in the record.

    ``actor`` is who or which DAG decided (``"dag:freshlm_evaluate"``, a user name), ``run_id``
    the Airflow run; both go to the audit log and the record. ``reason`` defaults to the
    decision's summary. ``log_url`` (the task's Airflow log, see
    :func:`freshlm.alerts.messages.task_log_url`) and ``report_url`` (default
    ``<report uri>/report.html``) are the message's links; ``notify=False`` sends nothing.

    Returns the decision record plus ``record_uri``, ``recorded`` (False when a rerun found
    it) and ``slack_sent`` (None when nothing was sent). Raises ``ValueError`` if the decision
    did not pass or is not about this report, :class:`~freshlm.registry.VersionNotFound` if
    the candidate is not published, and :class:`~freshlm.registry.PromotionConflict` if
    production is no longer the evaluated baseline (recorded as a ``conflict``; nothing moved).
    """
    _check_pair(report, decision)
    if not decision.passed:
        raise ValueError(
            f"the decision on {decision.candidate} did not pass "
            f"({', '.join(r.name for r in decision.failed)} failed); reject() it instead"
        )
    who = actor_label(actor, run_id)
    reason = (reason or "").strip() or decision.summary()
    try:
        move = move_alias(
            store,
            PRODUCTION,
            decision.candidate,
            actor=who,
            reason=reason,
            metrics=audit_metrics(report, decision),
            expected_from=decision.baseline or ABSENT,
            report=decision.report_uri,
        )
    except PromotionConflict as exc:
        record = _record(
            report,
            decision,
            CONFLICT,
            actor=who,
            run_id=run_id,
            production_before=exc.actual,
            production_after=exc.actual,
            conflict={"expected": exc.expected, "actual": exc.actual, "message": str(exc)},
            approval=approval,
        )
        stored, _ = _write_record(store, record)
        log.error(
            "not promoting %s: production is %s, not the evaluated baseline %s; conflict "
            "recorded at %s",
            decision.candidate,
            exc.actual,
            decision.baseline,
            store.uri_for(stored["key"]),
        )
        exc.add_note(f"the conflict is recorded at {store.uri_for(stored['key'])}")
        raise
    record = _record(
        report,
        decision,
        PROMOTED,
        actor=who,
        run_id=run_id,
        production_before=move.from_version_id,
        production_after=move.version_id,
        alias_move=move.to_dict(),
        approval=approval,
    )
    log.info(
        "promoted %s to production (replacing %s): %s",
        decision.candidate,
        move.from_version_id,
        decision.summary(),
    )
    return _record_and_notify(
        store,
        record,
        notify=notify,
        slack_conn_id=slack_conn_id,
        message=lambda record_uri: promotion_summary(
            report,
            decision,
            move=move,
            actor=who,
            run_id=run_id,
            report_url=report_url,
            log_url=log_url,
        ),
    )


def reject(
    store: Store,
    report: Mapping[str, Any],
    decision: Decision,
    *,
    actor: str,
    run_id: str | None = None,
    notify: bool = True,
    slack_conn_id: str | None = None,
    log_url: str | None = None,
    report_url: str | None = None,
) -> dict[str, Any]:
    """Record the candidate of a failed ``decision`` as rejected, with its reasons; leave
    production alone; alert Slack with the metric table and the links.

    Returns the record plus ``record_uri``, ``recorded`` and ``slack_sent`` (as
    :func:`promote`). Raises ``ValueError`` for a passed decision or one not about this report,
    :class:`~freshlm.registry.VersionNotFound` if the candidate is not published.
    """
    _check_pair(report, decision)
    if decision.passed:
        raise ValueError(f"the decision on {decision.candidate} passed; promote() it instead")
    who = actor_label(actor, run_id)
    get_version(store, decision.candidate)
    production = read_alias(store, PRODUCTION)
    current = production.version_id if production is not None else None
    record = _record(
        report,
        decision,
        REJECTED,
        actor=who,
        run_id=run_id,
        production_before=current,
        production_after=current,
    )
    log.warning(
        "rejected %s (production stays %s): %s", decision.candidate, current, decision.summary()
    )
    return _record_and_notify(
        store,
        record,
        notify=notify,
        slack_conn_id=slack_conn_id,
        message=lambda record_uri: rejection_alert(
            report,
            decision,
            actor=who,
            run_id=run_id,
            report_url=report_url,
            log_url=log_url,
            record_uri=record_uri,
        ),
    )


def _record_and_notify(
    store: Store,
    record: dict[str, Any],
    *,
    notify: bool,
    slack_conn_id: str | None,
    message: Callable[[str], SlackMessage],
) -> dict[str, Any]:
    """Write the decision record; tell Slack only the first time it is written (a retried task
    finds the record and stays quiet). ``message`` builds the Slack message from the record's
    URI. Returns the record plus ``record_uri``, ``recorded`` and ``slack_sent``."""
    stored, created = _write_record(store, record)
    uri = store.uri_for(stored["key"])
    result = {**stored, "record_uri": uri, "recorded": created, "slack_sent": None}
    if notify and created:
        result["slack_sent"] = send_slack(message(uri), slack_conn_id)
    return result


def apply_decision(
    store: Store,
    report: Mapping[str, Any],
    decision: Decision,
    *,
    actor: str,
    run_id: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`promote` a passed decision, :func:`reject` a failed one (same keywords;
    ``reason`` only applies to a promotion)."""
    if decision.passed:
        return promote(store, report, decision, actor=actor, run_id=run_id, **kwargs)
    kwargs.pop("reason", None)
    return reject(store, report, decision, actor=actor, run_id=run_id, **kwargs)


# --- reading the records ----------------------------------------------------------------------


def list_decisions(store: Store, version_id: str | None = None) -> list[dict[str, Any]]:
    """Every decision record (of one candidate, if given), oldest first."""
    prefix = f"{DECISIONS_PREFIX}/"
    if version_id is not None:
        prefix += check_version_id(version_id) + "/"
    records = []
    for key in store.list(prefix):
        if not key.endswith(".json"):
            continue
        try:
            record = store.read_json(key)
        except KeyNotFound:  # pragma: no cover - deleted between list and read
            continue
        if not isinstance(record, dict) or record.get("outcome") not in OUTCOMES:
            raise RegistryError(
                f"{store.uri_for(key)}: not a promotion decision record; it was not written by "
                "freshlm.promotion (move it out of registry/decisions/)"
            )
        records.append(record)
    return sorted(records, key=lambda r: (str(r.get("decided_at")), str(r.get("key"))))


def latest_verdict(store: Store, version_id: str) -> dict[str, Any] | None:
    """The candidate's latest ``promoted`` or ``rejected`` record, or None if never decided."""
    verdicts = [r for r in list_decisions(store, version_id) if r["outcome"] in VERDICTS]
    return verdicts[-1] if verdicts else None


def is_rejected(store: Store, version_id: str) -> bool:
    """Whether the gate's latest verdict on ``version_id`` is a rejection."""
    verdict = latest_verdict(store, version_id)
    return verdict is not None and verdict["outcome"] == REJECTED


# --- pieces ------------------------------------------------------------------------------------


def _check_pair(report: Mapping[str, Any], decision: Decision) -> None:
    check_report(report)
    candidate = report["candidate"]["version_id"]
    baseline = report["baseline"].get("version_id")
    if (decision.candidate, decision.baseline) != (candidate, baseline):
        raise ValueError(
            f"the decision is about {decision.candidate} vs {decision.baseline}, the report "
            f"about {candidate} vs {baseline}; decide() on this report first"
        )
    check_version_id(decision.candidate)
    if decision.baseline is not None:
        check_version_id(decision.baseline)


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, containers are converted recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def audit_metrics(report: Mapping[str, Any], decision: Decision) -> dict[str, Any]:
    """The figures the audit record of a promotion carries: the comparison, both sides'
    metrics (``candidate.<name>``, ``baseline.<name>``) and each rule's observed value
    (``gate.<rule>``). Non-finite numbers become null."""
    metrics: dict[str, Any] = {}
    for key, value in (report.get("comparison") or {}).items():
        if _scalar(value):
            metrics[str(key)] = _finite(value)
    for side in ("candidate", "baseline"):
        for key, value in (report[side].get("metrics") or {}).items():
            if _scalar(value):
                metrics[f"{side}.{key}"] = _finite(value)
    for result in decision.results:
        metrics[f"gate.{result.name}"] = _finite(result.observed)
    return metrics


def _digest(report: Mapping[str, Any], decision: Decision) -> str:
    inputs = {
        "candidate": decision.candidate,
        "baseline": decision.baseline,
        "report_uri": decision.report_uri,
        "comparison": _finite(dict(report.get("comparison") or {})),
        "candidate_metrics": _finite(dict(report["candidate"].get("metrics") or {})),
        "baseline_metrics": _finite(dict(report["baseline"].get("metrics") or {})),
        "results": [r.to_dict() for r in decision.results],
    }
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def decision_key(report: Mapping[str, Any], decision: Decision, outcome: str) -> str:
    """Where the record of ``outcome`` for this decision is (or will be) stored."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
    candidate = check_version_id(decision.candidate)
    return f"{DECISIONS_PREFIX}/{candidate}/{_digest(report, decision)}-{outcome}.json"


def _record(
    report: Mapping[str, Any],
    decision: Decision,
    outcome: str,
    *,
    actor: str,
    run_id: str | None,
    production_before: str | None,
    production_after: str | None,
    alias_move: Mapping[str, Any] | None = None,
    conflict: Mapping[str, Any] | None = None,
    approval: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return _finite(
        {
            "schema": RECORD_SCHEMA,
            "key": decision_key(report, decision, outcome),
            "outcome": outcome,
            "decided_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": actor,
            "run_id": run_id,
            **decision.to_dict(),
            "summary": decision.summary(),
            "comparison": dict(report.get("comparison") or {}),
            "candidate_metrics": dict(report["candidate"].get("metrics") or {}),
            "baseline_metrics": dict(report["baseline"].get("metrics") or {}),
            "counts": report.get("counts") if isinstance(report.get("counts"), Mapping) else {},
            "production_before": production_before,
            "production_after": production_after,
            "alias_move": dict(alias_move) if alias_move is not None else None,
            "conflict": dict(conflict) if conflict is not None else None,
            "approval": dict(approval) if approval is not None else None,
        }
    )


def _write_record(store: Store, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Write the record unless one is stored under its key; ``(stored record, created)``."""
    key = record["key"]
    try:
        store.write_json(key, record, if_none_match=True)
    except PreconditionFailed:
        existing = store.read_json(key)
        log.info("decision %s was already recorded at %s", record["outcome"], store.uri_for(key))
        return existing, False
    log.info("decision %s recorded at %s", record["outcome"], store.uri_for(key))
    return record, True


__all__ = [
    "CONFLICT",
    "DECISIONS_PREFIX",
    "OUTCOMES",
    "PROMOTED",
    "REJECTED",
    "actor_label",
    "apply_decision",
    "audit_metrics",
    "decision_key",
    "is_rejected",
    "latest_verdict",
    "list_decisions",
    "promote",
    "reject",
]
