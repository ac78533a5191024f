"""Slack Block Kit building blocks shared by FreshLM's alerts, within Slack's limits.

Slack refuses a message with more than 50 blocks, a section over 3,000 characters or a header
over 150 (``invalid_blocks``); these helpers clip and pack so an alert always posts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
MAX_TEXT_CHARS = 3000


def header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": clip(text, MAX_HEADER_CHARS), "emoji": True},
    }


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}}


def fields(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    # Slack allows 10 fields of at most 2000 characters each.
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": clip(f"*{k}*\n{v}", 2000)} for k, v in pairs[:10]],
    }


def sections(title: str, lines: Sequence[str]) -> list[dict[str, Any]]:
    """``lines`` under ``title``, packed into as few sections as the 3000-char limit allows."""
    blocks, current = [], title
    for line in lines:
        line = clip(line, MAX_SECTION_CHARS - len(title) - 1)
        if len(current) + 1 + len(line) > MAX_SECTION_CHARS:
            blocks.append(section(current))
            current = line
        else:
            current = f"{current}\n{line}"
    blocks.append(section(current))
    return blocks


def fit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most :data:`MAX_BLOCKS`: drop from the middle (failure details), keep the links and
    next steps at the end."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    tail = blocks[-3:]
    return [*blocks[: MAX_BLOCKS - 4], section("… (message shortened)"), *tail]


def esc(value: Any) -> str:
    """``value`` as literal text for Slack: ``&``, ``<`` and ``>`` become entities, so
    ``<!channel>`` or ``<https://x|y>`` in user-controlled text shows as written instead of
    pinging a channel or becoming a link (Slack's "escaping text" rules)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fallback_text(plain: str) -> str:
    """A message's plain fallback ``text`` made safe for Slack: escaped (:func:`esc`) and clipped
    to :data:`MAX_TEXT_CHARS` without cutting an entity in half."""
    escaped = esc(plain)
    if len(escaped) <= MAX_TEXT_CHARS:
        return escaped
    cut = escaped[: MAX_TEXT_CHARS - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # a partial "&amp;" would show as literal junk
    return cut + "…"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
