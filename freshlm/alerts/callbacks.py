"""Airflow callbacks that alert Slack.

Use at task level (DAG-level callbacks are unreliable in Airflow 3)::

    default_args = {"retries": 2, "on_failure_callback": on_task_failure}

Airflow 3 runs ``on_failure_callback`` when a try ends in FAILED and ``on_retry_callback`` when
it ends in UP_FOR_RETRY, so this callback normally sees only final failures. It still checks
the context itself (``ti.try_number`` against ``ti.max_tries``, falling back to
``task.retries``) so that wiring it as a retry callback too, or a failure reported by the DAG
processor for a task that will still retry, does not page anyone early.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from freshlm.alerts.messages import SlackMessage, task_failure_alert
from freshlm.alerts.sender import send_slack

log = logging.getLogger(__name__)


class AlertedFailure(RuntimeError):
    """A task failure whose Slack alert was already sent by the task itself (the gate's, with
    the metric table); :func:`on_task_failure` stays quiet so on-call gets one message."""


def on_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback``: alert Slack when the task has no retries left. Never raises."""
    _alert_if_final(context, send_slack)


def _alert_if_final(
    context: Mapping[str, Any], send: Callable[[SlackMessage], bool]
) -> bool | None:
    """Build and send the alert when the try was the last; the send's result, or None when no
    alert was due (or it could not be built)."""
    try:
        ti = context.get("ti") or context.get("task_instance")
        if ti is None:
            log.warning("failure callback without a task instance in its context; no alert")
            return None
        if isinstance(context.get("exception"), AlertedFailure):
            log.info("failure already alerted by the task itself; no second Slack message")
            return None
        try_number, max_tries = _tries(ti, context.get("task"))
        if try_number is not None and max_tries is not None and try_number <= max_tries:
            log.info(
                "task %s failed on try %s of %s; retries left, no Slack alert yet",
                getattr(ti, "task_id", "?"),
                try_number,
                max_tries + 1,
            )
            return None
        dag_run = context.get("dag_run")
        message = task_failure_alert(
            dag_id=str(getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")),
            run_id=str(getattr(ti, "run_id", None) or context.get("run_id") or "?"),
            task_id=str(getattr(ti, "task_id", "?")),
            try_number=try_number,
            max_tries=max_tries,
            exception=_redacted(context.get("exception")),
            log_url=_log_url(ti),
            map_index=_map_index(ti),
        )
    except Exception as exc:  # a callback that raises only adds noise to a failed task
        log.warning("could not build the Slack failure alert: %s: %s", type(exc).__name__, exc)
        return None
    return send(message)


def _tries(ti: Any, task: Any) -> tuple[int | None, int | None]:
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    if max_tries is None and task is not None:
        max_tries = getattr(task, "retries", None)
    as_int = lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None  # noqa: E731
    return as_int(try_number), as_int(max_tries)


def _map_index(ti: Any) -> int:
    value = getattr(ti, "map_index", -1)
    return value if isinstance(value, int) else -1


def _log_url(ti: Any) -> str | None:
    try:
        url = ti.log_url
    except Exception:
        return None
    return url if isinstance(url, str) else None


def _redacted(exception: Any) -> Any:
    """The exception's text with what Airflow knows as secrets masked (connection passwords
    fetched in the task are registered with its masker)."""
    if exception is None:
        return None
    if isinstance(exception, BaseException):
        text = f"{type(exception).__name__}: {exception}"
    else:
        text = str(exception)
    try:
        # Airflow's masker has no public redact() in 3.x; the shared one is what its logs use.
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # pragma: no cover
        return text
    return redact(text)
