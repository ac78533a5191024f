"""The end of a ``freshlm_curate`` run: publish (maybe with a warning or an operator's
acceptance) or quarantine, and tell Slack. Called from the DAG's last two tasks with the task
context; everything else they need is in the batch, candidate and gate summaries (XComs).
"""

from __future__ import annotations

import logging
from typing import Any

from freshlm.alerts.callbacks import AlertedFailure
from freshlm.alerts.links import airflow_base_url
from freshlm.alerts.messages import gate_alert, task_log_url
from freshlm.alerts.sender import send_slack
from freshlm.curation import publish as publishing
from freshlm.store import open_store

log = logging.getLogger(__name__)


def _alert(ctx: Any, result: dict[str, Any], data_docs_url: str) -> bool:
    ti = ctx["ti"]
    message = gate_alert(
        result,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        log_url=task_log_url(airflow_base_url(), ti.dag_id, ti.run_id, "gate_batch"),
        data_docs_url=data_docs_url,
    )
    return send_slack(message)


def _gated(ctx: Any, batch: dict, candidate: dict, gate: dict) -> publishing.GatedBatch:
    return publishing.GatedBatch(
        candidate=candidate["uri"],
        report_uri=gate["report_uri"],
        window=batch["window"],
        shards=batch["shards"],
        run_id=ctx["run_id"],
    )


def publish(ctx: Any, batch: dict, candidate: dict, gate: dict) -> dict[str, Any]:
    """Publish the candidate; alert Slack when the gate warned or an operator accepted it."""
    from expectations.gate import GateResult, accept_override

    store = open_store()
    result = publishing.read_gate_result(store, gate["report_uri"])
    if batch["accept"] and not result["passed"]:
        user = getattr(ctx.get("dag_run"), "triggering_user_name", None) or "operator"
        accepted = accept_override(
            GateResult.from_dict(result),
            batch["accept"]["reason"],
            user,
            accepted_at=ctx["dag_run"].run_after,
        )
        result = accepted.to_dict()
        log.warning(
            "gate %s overridden by %s: %s", gate["severity"], user, batch["accept"]["reason"]
        )
    published = publishing.publish_dataset(store, _gated(ctx, batch, candidate, gate), result)
    if result["severity"] != "ok" or result.get("override"):
        published["alerted"] = _alert(ctx, result, gate["data_docs_url"])
    return published


def quarantine(ctx: Any, batch: dict, candidate: dict, gate: dict) -> dict[str, Any]:
    """Record the refused batch, alert Slack, then fail the task (the run shows red)."""
    store = open_store()
    result = publishing.read_gate_result(store, gate["report_uri"])
    record = publishing.quarantine_batch(store, _gated(ctx, batch, candidate, gate), result)
    _alert(ctx, result, gate["data_docs_url"])
    critical = sorted({f["check"] for f in result["failures"] if f["severity"] == "critical"})
    raise AlertedFailure(
        f"gate refused the batch for {batch['window']['start']}..{batch['window']['end']} "
        f"({', '.join(critical)}); quarantined at {record['quarantine_uri']}; nothing published. "
        "Rerun after fixing the source, or trigger with accept_batch and accept_reason."
    )
