"""The gate's Slack alert: built for triage from the gate report (``gate.json``).

:func:`gate_alert` — a gate failed (critical: batch quarantined) or warned (published): where
(DAG, run, window), what came in (documents per source), what failed (observed vs expected,
example document ids, never text), what was quarantined and why, links to the task log and
the Data Docs, and what to do next. Slack's limits and mrkdwn escaping are handled as for every
FreshLM alert (:mod:`freshlm.alerts.blocks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freshlm.alerts.blocks import MAX_TEXT_CHARS, clip, esc, fields, fit, header, section, sections
from freshlm.alerts.messages import SlackMessage, links_line

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
    accept_params: tuple[str, str] = ("accept_batch", "accept_reason"),
) -> SlackMessage:
    """The alert for a gate that failed or warned.

    ``result`` is a :class:`~expectations.gate.GateResult` or its ``to_dict()``.
    ``data_docs_url``: where people can open the Data Docs (the store copy); defaults to the
    local ``data_docs_index`` as a ``file://`` URL. ``accept_params``: the DAG's Param names
    for accepting a batch with a reason.
    """
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    severity = data["severity"]
    override = data.get("override")
    stats = data.get("statistics") or {}
    failures = list(data.get("failures") or [])
    n_docs = int(stats.get("documents", 0))
    window = stats.get("window") or {}
    window_text = f"{window.get('start', '?')} → {window.get('end', '?')}"
    if data_docs_url is None and data.get("data_docs_index"):
        data_docs_url = Path(data["data_docs_index"]).resolve().as_uri()

    if override:
        icon, verdict = ":white_check_mark:", f"{severity} failures accepted by {override['user']}"
    elif severity == "critical":
        icon, verdict = ":no_entry:", "CRITICAL: batch quarantined, nothing published"
    elif severity == "warning":
        icon, verdict = ":warning:", "warning: batch published"
    else:
        icon, verdict = ":white_check_mark:", "passed"
    title = f"{icon} FreshLM gate {verdict}"

    blocks: list[dict[str, Any]] = [
        header(title),
        fields(
            [
                ("DAG", f"`{esc(dag_id)}`"),
                ("Run", f"`{esc(run_id)}`"),
                ("Window", esc(window_text)),
                ("Task", f"`{esc(task_id)}`"),
                ("Documents", f"{n_docs} kept, {int(stats.get('quarantined', 0))} quarantined"),
                (
                    "Failed expectations",
                    f"{sum(f['severity'] == 'critical' for f in failures)} critical, "
                    f"{sum(f['severity'] == 'warning' for f in failures)} warning",
                ),
            ]
        ),
    ]
    blocks += sections("*Sources* (delivered = kept + quarantined)", _source_lines(stats))
    blocks += sections("*Failed expectations* (observed vs expected)", _failure_lines(failures))
    blocks += sections(
        "*Quarantined*", _quarantine_lines(severity, override, n_docs, failures, stats)
    )
    blocks.append(section(links_line(log_url, data_docs_url)))
    blocks += sections("*Next steps*", _next_steps(severity, override, dag_id, accept_params))

    critical = sorted({f["check"] for f in failures if f["severity"] == "critical"})
    warning = sorted({f["check"] for f in failures if f["severity"] == "warning"})
    text = (
        f"FreshLM gate {verdict} — {dag_id} run {run_id}, window {window_text}. "
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
        return ["Nothing to do: the acceptance and its reason are recorded with the dataset."]
    if severity == "critical":
        return [
            "1. Open the Data Docs and look at the example documents (ids above).",
            "2. *Bad data or a bug* (spam flood, scrubber miss, broken feed): fix it, then "
            "*Clear* the failed tasks of this run in the Airflow UI to rerun the window.",
            f"3. *Batch is fine after all*: trigger `{esc(dag_id)}` for this window with Params "
            f'`{accept}=true` and `{reason}="why it is safe"`; the reason and your name are '
            "recorded in the dataset's manifest.",
        ]
    return [
        "The batch was published. Check the warnings in the Data Docs; if one keeps firing, "
        "fix its cause or tune the gate's thresholds (expectations/config.py)."
    ]
