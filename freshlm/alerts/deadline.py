"""The nightly deadline: a run of the nightly chain still going at ``FRESHLM_NIGHTLY_DEADLINE``
alerts Slack.

:func:`nightly_deadline` is the Airflow 3 ``DeadlineAlert`` every DAG of the chain (crawl,
curate, train, evaluate) carries: due at the first deadline time of day after the run was
created (:class:`~freshlm.alerts.nightly_reference.NightlyDeadline`), so the whole night must
be done by, say, 08:00 UTC whichever stage it is in. A run that ends in time has its deadline
dropped by Airflow; a late one makes the triggerer call :func:`on_deadline_missed`, which asks
Airflow which of the run's tasks are still running or queued and posts one alert naming them
(:func:`deadline_alert`), with a button to the run.

A run that failed before its deadline keeps it too (Airflow drops deadlines on success only),
but it is not late: its failure alerted when it happened, and it may be a designed end (the
gate refusing a batch) or one that a newer run has made good (a batch accepted, a window
re-triggered). So a run that has ended gets no lateness alert, only a line in the triggerer's
log.

The time comes from settings only, so a DAG file builds the same ``DeadlineAlert`` on every
parse (no ``now()``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from freshlm.alerts.blocks import (
    MAX_TEXT_CHARS,
    actions,
    button,
    clip,
    esc,
    fields,
    fit,
    header,
    section,
    sections,
)
from freshlm.alerts.messages import SlackMessage
from freshlm.alerts.texts import t

log = logging.getLogger(__name__)

#: Task states that mean "not done yet": where a late run is stuck.
UNFINISHED = ("running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred")

#: Run states that mean the run is over: not late, whatever its deadline says.
ENDED = ("success", "failed")


def nightly_deadline(time_of_day: dt.time | None = None, settings: Any = None) -> Any:
    """The ``DeadlineAlert`` of the nightly chain at ``time_of_day`` (UTC; by default
    ``FRESHLM_NIGHTLY_DEADLINE``), or None when that setting is ``none``."""
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert

    from freshlm.alerts.nightly_reference import NightlyDeadline

    if time_of_day is None:
        if settings is None:
            from freshlm.settings import get_settings

            settings = get_settings()
        time_of_day = settings.nightly_deadline
    if time_of_day is None:
        return None
    return DeadlineAlert(
        reference=NightlyDeadline(time_of_day=time_of_day.isoformat()),
        interval=dt.timedelta(0),
        callback=AsyncCallback(on_deadline_missed),
        name="freshlm-nightly-deadline",
    )


async def on_deadline_missed(context: Mapping[str, Any] | None = None, **_: Any) -> None:
    """The triggerer's callback for a missed deadline: alert Slack. Never raises (a failing
    callback only adds noise in the triggerer's log)."""
    await asyncio.to_thread(alert_missed_deadline, context or {})


def alert_missed_deadline(
    context: Mapping[str, Any],
    task_states: Callable[[str, str], Mapping[str, str]] | None = None,
    send: Callable[[SlackMessage], bool] | None = None,
) -> bool | None:
    """Build and send the alert for ``context`` (``dag_run`` as the REST API's DAG run JSON at
    the time the deadline passed, ``deadline`` with ``deadline_time``); the send's result, or
    None when nothing was sent: the run had already ended (:data:`ENDED`), or no message could
    be built."""
    try:
        run = context.get("dag_run") or {}
        dag_id, run_id = str(run.get("dag_id") or "?"), str(run.get("dag_run_id") or "?")
        if run.get("state") in ENDED:
            log.info(
                "%s run %s had ended (%s) by its deadline %s: not late, no alert",
                dag_id,
                run_id,
                run["state"],
                (context.get("deadline") or {}).get("deadline_time"),
            )
            return None
        try:
            states = (task_states or _task_states_from_airflow)(dag_id, run_id)
        except Exception as exc:  # the lateness still matters more than the detail
            log.warning("could not ask Airflow for %s's task states: %s", run_id, exc)
            states = {"?": "unknown"}
        stuck = {task: state for task, state in sorted(states.items()) if state in UNFINISHED}
        stuck.update({task: state for task, state in states.items() if state == "unknown"})
        deadline = (context.get("deadline") or {}).get("deadline_time")
        message = deadline_alert(
            dag_id=dag_id,
            run_id=run_id,
            state=str(run.get("state") or "running"),
            deadline=str(deadline or "?"),
            started=str(run.get("start_date") or run.get("queued_at") or "?"),
            stuck=stuck,
        )
    except Exception as exc:
        log.warning("could not build the deadline alert: %s: %s", type(exc).__name__, exc)
        return None
    if send is None:
        from freshlm.alerts.sender import send_slack

        send = send_slack
    return send(message)


def _task_states_from_airflow(dag_id: str, run_id: str) -> Mapping[str, str]:
    """``{task_id (mapped: task_id_index): state}`` of one run, from the Airflow API the
    triggerer's callbacks have (the execution API through its supervisor)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    by_run = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id])
    return {task: str(state) for task, state in (by_run.get(run_id) or {}).items()}


def run_url(dag_id: str, run_id: str, base_url: str | None = None) -> str:
    """The Airflow 3 UI page of a DAG run."""
    from freshlm.alerts.links import airflow_base_url

    base = (base_url or airflow_base_url()).rstrip("/")
    return f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def deadline_alert(
    *,
    dag_id: str,
    run_id: str,
    state: str,
    deadline: str,
    started: str,
    stuck: Mapping[str, str],
    base_url: str | None = None,
) -> SlackMessage:
    """The alert for a night still going at its deadline: which DAG and run, since when, and
    every task not done yet with its state."""
    lines = [f"• `{esc(task)}`: {esc(state_)}" for task, state_ in stuck.items()]
    url = run_url(dag_id, run_id, base_url)
    blocks = [
        header(t("deadline.header", dag=dag_id, state=state)),
        fields(
            [
                (t("dag"), f"`{esc(dag_id)}`"),
                (t("run"), f"`{esc(run_id)}`"),
                (t("deadline.deadline"), esc(deadline)),
                (t("deadline.started"), esc(started)),
            ]
        ),
        *sections(t("deadline.stuck"), lines or [t("deadline.no_tasks")]),
        *actions([button(t("button.open_run"), url, style="primary")]),
        section(f"*{t('next_steps')}*\n" + "\n".join(t(f"deadline.step{i}") for i in (1, 2, 3))),
    ]
    where = ", ".join(f"{task} ({state_})" for task, state_ in stuck.items())
    text = t(
        "deadline.text",
        dag=dag_id,
        run=run_id,
        state=state,
        deadline=deadline,
        stuck=where or t("deadline.no_tasks"),
    )
    return SlackMessage(text=clip(f"{text} {url}", MAX_TEXT_CHARS), blocks=fit(blocks))
