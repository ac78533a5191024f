"""The monitor's Slack alert: each warning with what to do, the figures, the log link, and
buttons to the console's freshness history and models (where a rollback starts)."""

from __future__ import annotations

from typing import Any

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
from freshlm.alerts.links import freshness_url, models_url
from freshlm.alerts.messages import SlackMessage, links_line
from freshlm.alerts.texts import t


def monitor_alert(check: dict[str, Any], *, log_url: str | None) -> SlackMessage | None:
    """The alert for ``check``'s warnings, or None when it has none."""
    warnings = [f for f in check["findings"] if f["severity"] == "warning"]
    if not warnings:
        return None
    fresh, canaries = check["freshness"], check["canaries"]
    lag = fresh["lag_hours"]
    accuracy = canaries.get("accuracy")
    correct, asked = canaries["correct"], canaries["asked"]
    blocks = [
        header(t("monitor.header", n=len(warnings))),
        fields(
            [
                (t("monitor.production"), f"`{esc(fresh['production'])}`"),
                (t("monitor.lag"), t("monitor.unknown") if lag is None else f"{lag:g} h"),
                (t("monitor.newest"), esc(fresh["newest_document"])),
                (
                    t("monitor.canaries"),
                    t("monitor.canaries_value", correct=correct, asked=asked)
                    if accuracy is not None
                    else t("monitor.not_asked"),
                ),
            ]
        ),
    ]
    lines = [f"• *{esc(f['what'])}*\n   → {esc(f['action'])}" for f in warnings]
    blocks += sections(t("monitor.problems"), lines)
    if check.get("retrain"):
        plan = check["retrain"]
        blocks.append(section(t("monitor.retrain", dag=esc(plan["dag_id"]))))
    blocks.append(section(links_line(log_url, None)))
    blocks += actions(
        [
            button(t("button.freshness"), freshness_url(), style="primary"),
            button(t("button.models"), models_url()),
            button(t("button.open_log"), log_url),
        ]
    )
    text = "FreshLM monitor: " + "; ".join(f["what"] for f in warnings)
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=fit(blocks))
