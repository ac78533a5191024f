"""Slack messages built for triage: Block Kit blocks plus a plain-text fallback.

Here: :func:`task_failure_alert` — a task failed for good (no retries left): DAG, run, task,
try, the exception's first lines, the log link and an *Open log* button — and the pieces every
alert shares (the message type, task log links). Fixed phrases come from :mod:`.texts`, in the
language ``FRESHLM_ALERT_LANGUAGE`` names; every link is an http(s) page (Airflow's UI or the
console), never a store URI. The gate's own alert is built by the gate stage
(:mod:`expectations.alert`).

Limits respected (Slack rejects or truncates beyond them): at most 50 blocks, 3000 characters
per section text, 150 per header; the fallback ``text`` is kept under 3000 characters too.
Every dynamic string is escaped for mrkdwn (``&``, ``<``, ``>``), in the blocks and in the
fallback ``text`` alike, so a value like ``<EMAIL>`` shows as written instead of breaking the
message, and ``<!channel>`` in a reason or an error pings nobody.
"""

from __future__ import annotations

import dataclasses
import traceback
from typing import Any
from urllib.parse import quote

from freshlm.alerts.blocks import (
    MAX_BLOCKS,
    MAX_TEXT_CHARS,
    actions,
    button,
    clip,
    esc,
    fallback_text,
    fields,
    header,
    section,
)
from freshlm.alerts.texts import t

MAX_EXCEPTION_LINES = 12
MAX_EXCEPTION_CHARS = 1500


@dataclasses.dataclass(frozen=True)
class SlackMessage:
    """A message for ``chat.postMessage`` or an incoming webhook: ``text`` is the fallback
    shown in notifications and by clients without Block Kit.

    ``text`` is given as plain text and escaped here (:func:`~freshlm.alerts.blocks.
    fallback_text`), so no builder can forget: a rollback reason holding ``<!channel>`` must not
    ping the channel from a notification. Blocks escape their own dynamic strings with ``esc``.
    """

    text: str
    blocks: list[dict[str, Any]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", fallback_text(self.text))
        if len(self.blocks) > MAX_BLOCKS:
            raise ValueError(f"{len(self.blocks)} blocks; Slack accepts at most {MAX_BLOCKS}")

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def task_log_url(
    base_url: str,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None = None,
    map_index: int = -1,
) -> str:
    """The Airflow 3 UI URL of a task instance's log, as Airflow itself builds it
    (``TaskInstance.log_url``): ``{base}/dags/{dag}/runs/{run}/tasks/{task}[/mapped/{i}]
    [?try_number=N]``."""
    url = f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task_id}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{map_index}"
    if try_number:
        url += f"?try_number={try_number}"
    return url


def task_failure_alert(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None,
    max_tries: int | None,
    exception: BaseException | str | None,
    log_url: str | None,
    map_index: int = -1,
) -> SlackMessage:
    """The alert for a task that failed after its last try, with an *Open log* button."""
    detail = _exception_text(exception)
    where = task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"
    tries = (
        t("try_value", n=try_number, of=max_tries + 1)
        if try_number and max_tries is not None
        else "?"
    )
    blocks = [
        header(t("task_failed.header", where=f"{dag_id}.{where}")),
        fields(
            [
                (t("dag"), f"`{esc(dag_id)}`"),
                (t("run"), f"`{esc(run_id)}`"),
                (t("task"), f"`{esc(where)}`"),
                (t("try"), tries),
            ]
        ),
        section(f"*{t('error')}*\n```" + esc(detail) + "```"),
        section(links_line(log_url, None)),
        *actions([button(t("button.open_log"), log_url)]),
        section(f"*{t('next_steps')}*\n{t('task_failed.step1')}\n{t('task_failed.step2')}"),
    ]
    first_line = detail.splitlines()[0] if detail else "no exception recorded"
    text = t(
        "task_failed.text", where=f"{dag_id}.{where}", run=run_id, tries=tries, error=first_line
    )
    text += f" Log: {log_url or 'n/a'}"
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=blocks)


# --- pieces ------------------------------------------------------------------------------------


def links_line(log_url: str | None, data_docs_url: str | None) -> str:
    parts = []
    if log_url:
        parts.append(f":scroll: <{log_url}|{t('link.log')}>")
    if data_docs_url:
        parts.append(f":bar_chart: <{data_docs_url}|{t('link.data_docs')}>")
    return "  ·  ".join(parts) if parts else t("no_links")


def _exception_text(exception: BaseException | str | None) -> str:
    if exception is None:
        return "no exception recorded"
    if isinstance(exception, BaseException):
        text = "".join(traceback.format_exception_only(type(exception), exception)).strip()
    else:
        text = str(exception).strip()
    lines = text.splitlines()
    if len(lines) > MAX_EXCEPTION_LINES:
        lines = [*lines[:MAX_EXCEPTION_LINES], f"… ({len(lines) - MAX_EXCEPTION_LINES} more lines)"]
    return clip("\n".join(lines), MAX_EXCEPTION_CHARS)
