"""The monitor's Slack alert: each warning with what to do, the figures, the log link."""

from __future__ import annotations

from typing import Any

from freshlm.alerts.blocks import MAX_TEXT_CHARS, clip, esc, fields, fit, header, section, sections
from freshlm.alerts.messages import SlackMessage, links_line


def monitor_alert(check: dict[str, Any], *, log_url: str | None) -> SlackMessage | None:
    """The alert for ``check``'s warnings, or None when it has none."""
    warnings = [f for f in check["findings"] if f["severity"] == "warning"]
    if not warnings:
        return None
    fresh, canaries = check["freshness"], check["canaries"]
    lag = fresh["lag_hours"]
    accuracy = canaries.get("accuracy")
    blocks = [
        header(f":mag: FreshLM monitor: {len(warnings)} problem(s) with production's freshness"),
        fields(
            [
                ("Production", f"`{esc(fresh['production'])}`"),
                ("Freshness lag", "unknown" if lag is None else f"{lag:g} h"),
                ("Newest crawled", esc(fresh["newest_document"])),
                (
                    "Canaries",
                    f"{canaries['correct']}/{canaries['asked']} correct"
                    if accuracy is not None
                    else "not asked",
                ),
            ]
        ),
    ]
    lines = [f"• *{esc(f['what'])}*\n   → {esc(f['action'])}" for f in warnings]
    blocks += sections("*Problems and what to do*", lines)
    if check.get("retrain"):
        plan = check["retrain"]
        blocks.append(section(f"*Retraining triggered:* `{esc(plan['dag_id'])}`"))
    blocks.append(section(links_line(log_url, None)))
    text = "FreshLM monitor: " + "; ".join(f["what"] for f in warnings)
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=fit(blocks))
