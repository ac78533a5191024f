"""What a person sees of a Slack message, and Slack's limits, for the alert tests."""

from __future__ import annotations

from freshlm.alerts.blocks import MAX_BLOCKS, MAX_SECTION_CHARS
from freshlm.alerts.messages import SlackMessage


def text_of(message: SlackMessage) -> str:
    """Everything a person sees in the blocks, as one string."""
    parts = []
    for block in message.blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
    return "\n".join(parts)


def within_limits(message: SlackMessage) -> None:
    """The message is one Slack accepts whole: blocks, section and header lengths, text."""
    assert 0 < len(message.blocks) <= MAX_BLOCKS
    for block in message.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_CHARS
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    assert len(message.text) <= 3000
