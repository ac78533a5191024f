"""The tasks of ``freshlm_monitor``, each a function of the Airflow context."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from freshlm.monitoring.check import run_check
from freshlm.monitoring.history import record_check
from freshlm.monitoring.messages import monitor_alert
from freshlm.settings import get_settings
from freshlm.store import Store

log = logging.getLogger(__name__)


def check_task(ctx: Mapping[str, Any], store: Store) -> dict[str, Any]:
    """Run the check (the Param ``serve_url`` overrides ``FRESHLM_SERVE_URL``), log every
    finding, store it in the history; the check, with ``history`` its store URI."""
    settings = get_settings()
    serve_url = (ctx["params"].get("serve_url") or settings.serve_url).rstrip("/")
    checked_at = ctx.get("logical_date") or ctx["dag_run"].run_after
    check = run_check(store, settings, serve_url=serve_url, checked_at=checked_at)
    fresh = check["freshness"]
    log.info(
        "production %s; newest crawled %s; lag %s h; canaries %s/%s; %d finding(s)",
        fresh["production"],
        fresh["newest_document"],
        fresh["lag_hours"],
        check["canaries"]["correct"],
        check["canaries"]["asked"],
        len(check["findings"]),
    )
    for finding in check["findings"]:
        log.log(
            logging.WARNING if finding["severity"] == "warning" else logging.INFO,
            "%s: %s -> %s",
            finding["kind"],
            finding["what"],
            finding["action"],
        )
    check["history"] = record_check(store, check, ctx["run_id"])
    return check


def alert_task(ctx: Mapping[str, Any], check: Mapping[str, Any]) -> bool:
    """Post the alert when the check has warnings; whether one was sent."""
    from freshlm.alerts.sender import send_slack

    ti = ctx.get("ti")
    message = monitor_alert(dict(check), log_url=getattr(ti, "log_url", None))
    if message is None:
        log.info("no warnings; no alert")
        return False
    return send_slack(message)
