"""The end of a ``freshlm_evaluate`` or ``freshlm_rollback`` run, called from the DAGs' tasks with
the task context: decide, promote or reject (and tell Slack), roll back.

A rejected candidate fails its task after the alert went out (:class:`AlertedFailure`), so the
run shows red in the UI and on-call gets one message, the gate's, not a second generic one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from freshlm.alerts.callbacks import AlertedFailure
from freshlm.alerts.links import airflow_base_url
from freshlm.alerts.messages import task_log_url
from freshlm.artifacts import read_report
from freshlm.settings import get_settings
from freshlm.store import open_store

log = logging.getLogger("freshlm.promotion")


def _actor(ctx: Mapping[str, Any]) -> str:
    ti = ctx["ti"]
    user = getattr(ctx.get("dag_run"), "triggering_user_name", None)
    return f"dag:{ti.dag_id}" + (f"/user:{user}" if user else "")


def _log_url(ctx: Mapping[str, Any], task_id: str) -> str:
    ti = ctx["ti"]
    return task_log_url(airflow_base_url(), ti.dag_id, ti.run_id, task_id)


def approval_assignees(settings: Any = None) -> list[dict[str, str]] | None:
    """The approval step's ``assigned_users`` (Airflow's ``HITLUser`` dicts) from
    ``FRESHLM_APPROVERS``; None lets any user allowed to act on the DAG answer."""
    approvers = (settings or get_settings()).approvers
    return [{"id": user, "name": user} for user in approvers] if approvers else None


class ApprovalMissing(RuntimeError):
    """The approval step's answer names no approver, or one not allowed to approve."""


def approval_record(response: Mapping[str, Any] | None, settings: Any = None) -> dict | None:
    """Who approved and when, from what the approval task returned (the HITL operator's
    ``chosen_options``, ``responded_by_user``, ``responded_at``); None when no approval step ran.

    Airflow already refuses answers from users outside ``assigned_users``; this checks again so
    a promotion is never recorded as approved by someone ``FRESHLM_APPROVERS`` does not name.
    """
    if not response:
        return None
    user = response.get("responded_by_user") or {}
    user_id = str(user.get("id") or "").strip()
    if not user_id:
        raise ApprovalMissing(
            f"the approval step answered {response.get('chosen_options')} without naming who"
            " approved; nothing is promoted"
        )
    approvers = (settings or get_settings()).approvers
    if approvers and user_id not in approvers:
        raise ApprovalMissing(
            f"approved by user {user_id!r}, who is not in FRESHLM_APPROVERS ({approvers});"
            " nothing is promoted"
        )
    when = response.get("responded_at")
    return {
        "approved_by": {"id": user_id, "name": str(user.get("name") or user_id)},
        "responded_at": when.isoformat() if hasattr(when, "isoformat") else when,
        "chosen_options": list(response.get("chosen_options") or []),
    }


def decide_on(report: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the promotion rules (``FRESHLM_PROMOTION_RULES`` or the shipped file) to the
    report; the decision as a dict, each rule with its observed value, logged as a table."""
    from freshlm.promotion.rules import decide, load_rules

    decision = decide(report, load_rules(get_settings().promotion_rules))
    for result in decision.results:
        log.info(
            "%-20s %-4s observed %s, threshold %s %s",
            result.name,
            "pass" if result.passed else "FAIL",
            result.observed_text,
            result.comparison,
            result.threshold_text,
        )
    log.info("decision: %s", decision.summary())
    return {**decision.to_dict(), "summary": decision.summary()}


def load_report(store: Any, report_summary: Mapping[str, Any]) -> dict[str, Any]:
    """The whole published report that ``report_summary`` (an XCom) stands for."""
    report = read_report(
        store, report_summary["candidate"]["version_id"], report_summary["baseline"]["version_id"]
    )
    if report is None:
        raise RuntimeError(f"the evaluation report {report_summary.get('uri')} is not published")
    return report


def promote_candidate(
    ctx: Mapping[str, Any],
    report_summary: Mapping[str, Any],
    decision: Mapping[str, Any],
    approval: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Move production to the candidate (compare-and-swap on the evaluated baseline).

    ``approval`` is what the approval step returned, when it ran: the approver goes into the
    alias move's actor (the audit log) and the decision record.
    """
    from freshlm.promotion.decision import promote
    from freshlm.promotion.rules import Decision

    approved = approval_record(approval)
    actor = _actor(ctx)
    if approved:
        actor += f"/approved_by:{approved['approved_by']['id']}"
    store = open_store()
    result = promote(
        store,
        load_report(store, report_summary),
        Decision.from_dict(decision),
        actor=actor,
        approval=approved,
        run_id=ctx["ti"].run_id,
        slack_conn_id=get_settings().slack_conn_id,
        log_url=_log_url(ctx, "decide"),
    )
    log.info(
        "promoted %s to production (was %s)",
        report_summary["candidate"]["version_id"],
        report_summary["baseline"]["version_id"],
    )
    return result


def reject_candidate(
    ctx: Mapping[str, Any], report_summary: Mapping[str, Any], decision: Mapping[str, Any]
) -> dict[str, Any]:
    """Record the candidate as rejected, alert Slack, then fail the task (the run shows red)."""
    from freshlm.promotion.decision import reject
    from freshlm.promotion.rules import Decision

    store = open_store()
    verdict = Decision.from_dict(decision)
    result = reject(
        store,
        load_report(store, report_summary),
        verdict,
        actor=_actor(ctx),
        run_id=ctx["ti"].run_id,
        slack_conn_id=get_settings().slack_conn_id,
        log_url=_log_url(ctx, "decide"),
    )
    raise AlertedFailure(
        f"candidate {report_summary['candidate']['version_id']} rejected: "
        f"{'; '.join(verdict.reasons)}; production stays "
        f"{report_summary['baseline']['version_id']}; recorded at {result.get('record_uri')}"
    )


def roll_back(ctx: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``freshlm_rollback``: move production to the chosen version, record why, tell Slack."""
    from freshlm.promotion.rollback import rollback_production

    store = open_store()
    result = rollback_production(
        store,
        params.get("version") or None,
        reason=str(params.get("reason") or ""),
        actor=_actor(ctx),
        run_id=ctx["ti"].run_id,
        allow_rejected=bool(params.get("allow_rejected")),
        slack_conn_id=get_settings().slack_conn_id,
        log_url=_log_url(ctx, ctx["ti"].task_id),
    )
    log.info(
        "production rolled back: %s -> %s (%s)",
        result["from_version"],
        result["to_version"],
        result["reason"],
    )
    return result
