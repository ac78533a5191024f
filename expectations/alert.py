"""The gate's Slack alert: built for triage from the gate report (``gate.json``).

:func:`gate_alert` — a gate failed (critical: batch quarantined) or warned (published): where
(DAG, run, window), what came in (documents per source), what failed (observed vs expected,
example document ids, never text), what was quarantined and why, links to the task log and
the Data Docs, buttons to open the Data Docs and to accept a refused batch (console pages,
clickable on any store backend), and what to do next. Slack's limits and mrkdwn escaping are
handled as for every FreshLM alert (:mod:`freshlm.alerts.blocks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
from freshlm.alerts.links import accept_batch_url
from freshlm.alerts.messages import SlackMessage, links_line
from freshlm.alerts.pages import stored_file_page
from freshlm.alerts.texts import t

if TYPE_CHECKING:
    from expectations.gate import GateResult

MAX_FAILURES_SHOWN = 12
MAX_SOURCES_SHOWN = 15


def gate_alert(
    result: GateResult | Mapping[str, Any],
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    log_url: str | None,
    data_docs_url: str | None = None,
    candidate_id: str | None = None,
    accept_params: tuple[str, str] = ("accept_batch", "accept_reason"),
) -> SlackMessage:
    """The alert for a gate that failed or warned.

    ``result`` is a :class:`~expectations.gate.GateResult` or its ``to_dict()``.
    ``data_docs_url``: the Data Docs' front page, as a store URI (``data_docs_index`` of the
    result by default) or already a console URL; the alert links the console's copy.
    ``candidate_id``: the refused batch, for the *Accept batch…* button. ``accept_params``: the
    DAG's Param names for accepting a batch with a reason.
    """
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    severity = data["severity"]
    override = data.get("override")
    stats = data.get("statistics") or {}
    failures = list(data.get("failures") or [])
    n_docs = int(stats.get("documents", 0))
    window = stats.get("window") or {}
    window_text = f"{window.get('start', '?')} → {window.get('end', '?')}"
    data_docs_url = stored_file_page(data_docs_url or data.get("data_docs_index"))

    if override:
        icon = ":white_check_mark:"
        verdict = t("gate.accepted", severity=severity, user=override["user"])
    elif severity == "critical":
        icon, verdict = ":no_entry:", t("gate.critical")
    elif severity == "warning":
        icon, verdict = ":warning:", t("gate.warning")
    else:
        icon, verdict = ":white_check_mark:", t("gate.passed")
    refused = severity == "critical" and not override

    blocks: list[dict[str, Any]] = [
        header(t("gate.header", icon=icon, verdict=verdict)),
        fields(
            [
                (t("dag"), f"`{esc(dag_id)}`"),
                (t("run"), f"`{esc(run_id)}`"),
                (t("gate.window"), esc(window_text)),
                (t("task"), f"`{esc(task_id)}`"),
                (
                    t("gate.documents"),
                    t("gate.documents_value", kept=n_docs, quarantined=stats.get("quarantined", 0)),
                ),
                (
                    t("gate.failed"),
                    t(
                        "gate.failed_value",
                        critical=sum(f["severity"] == "critical" for f in failures),
                        warning=sum(f["severity"] == "warning" for f in failures),
                    ),
                ),
            ]
        ),
    ]
    blocks += sections(t("gate.sources"), _source_lines(stats))
    blocks += sections(t("gate.failures"), _failure_lines(failures))
    blocks += sections(
        t("gate.quarantined"), _quarantine_lines(severity, override, n_docs, failures, stats)
    )
    blocks.append(section(links_line(log_url, data_docs_url)))
    blocks += actions(
        [
            button(t("button.open_data_docs"), data_docs_url, style="primary"),
            button(t("button.accept_batch"), accept_batch_url(candidate_id))
            if refused and candidate_id
            else None,
            button(t("button.open_log"), log_url),
        ]
    )
    blocks += sections(
        f"*{t('next_steps')}*", _next_steps(severity, override, dag_id, accept_params)
    )

    critical = sorted({f["check"] for f in failures if f["severity"] == "critical"})
    warning = sorted({f["check"] for f in failures if f["severity"] == "warning"})
    lead = t("gate.header", icon="", verdict=verdict).strip()
    text = (
        f"{lead} — {dag_id} run {run_id}, window {window_text}. "
        f"Critical: {', '.join(critical) or 'none'}. Warnings: {', '.join(warning) or 'none'}. "
        f"{n_docs} documents. Log: {log_url or 'n/a'} Data Docs: {data_docs_url or 'n/a'}"
    )
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=fit(blocks))


def _source_lines(stats: Mapping[str, Any]) -> list[str]:
    sources = stats.get("sources") or {}
    lines = []
    for name, s in sorted(sources.items()):
        line = (
            f"• `{esc(name)}`: {s.get('volume', 0)} delivered "
            f"({s.get('kept', 0)} kept, {s.get('quarantined', 0)} quarantined)"
        )
        if s.get("volume_ratio") is not None:
            line += (
                f", {s['volume_ratio']:.1f}x the median {s['history_median']:g} of "
                f"{s['history_batches']} batches"
            )
        else:
            line += f", history {s.get('history_batches', 0)} batches (too short to compare)"
        lines.append(line)
    if len(lines) > MAX_SOURCES_SHOWN:
        lines = [*lines[:MAX_SOURCES_SHOWN], f"… and {len(lines) - MAX_SOURCES_SHOWN} more"]
    return lines or ["(no sources)"]


def _failure_lines(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    ordered = sorted(failures, key=lambda f: f["severity"] != "critical")
    lines = []
    for f in ordered[:MAX_FAILURES_SHOWN]:
        icon = ":red_circle:" if f["severity"] == "critical" else ":large_yellow_circle:"
        column = f" on `{esc(clip(str(f['column']), 100))}`" if f.get("column") else ""
        line = (
            f"{icon} *{esc(f['check'])}* ({f['severity']}){column}\n"
            f"      observed: {esc(clip(str(f['observed']), 500))}\n"
            f"      expected: {esc(clip(str(f['expected']), 500))}"
        )
        if f.get("examples"):
            shown = ", ".join(f"`{esc(clip(str(e), 120))}`" for e in f["examples"][:3])
            line += f"\n      e.g. {shown}"
        lines.append(line)
    if len(ordered) > MAX_FAILURES_SHOWN:
        lines.append(f"… and {len(ordered) - MAX_FAILURES_SHOWN} more in the Data Docs")
    return lines or ["(none)"]


def _quarantine_lines(
    severity: str,
    override: Mapping[str, Any] | None,
    n_docs: int,
    failures: Sequence[Mapping[str, Any]],
    stats: Mapping[str, Any],
) -> list[str]:
    lines = []
    if severity == "critical" and not override:
        checks = sorted({f["check"] for f in failures if f["severity"] == "critical"})
        lines.append(
            f"• *whole batch: {n_docs} documents* by the gate — critical: {', '.join(checks)}"
        )
    elif override:
        lines.append(
            f"• nothing by the gate: accepted by {esc(override['user'])} — "
            f"\u201c{esc(override['reason'])}\u201d"
        )
    by_reason = stats.get("quarantined_by_reason") or {}
    for reason, count in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"• {count} by curation: `{esc(reason)}`")
    return lines or ["(nothing)"]


def _next_steps(
    severity: str,
    override: Mapping[str, Any] | None,
    dag_id: str,
    accept_params: tuple[str, str],
) -> list[str]:
    accept, reason = accept_params
    if override:
        return [t("gate.override_done")]
    if severity == "critical":
        return [
            t("gate.step1"),
            t("gate.step2"),
            t("gate.step3", dag=esc(dag_id), accept=accept, reason=reason),
        ]
    return [t("gate.warned_step")]
