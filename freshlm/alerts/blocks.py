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
# Block Kit buttons: text at most 75 characters, url at most 3000, 25 elements per actions block.
MAX_BUTTON_TEXT_CHARS = 75
MAX_BUTTON_URL_CHARS = 3000
MAX_ACTIONS = 25


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


def button(text: str, url: str | None, *, style: str | None = None) -> dict[str, Any] | None:
    """A URL button: Slack opens ``url`` in the browser (no interactivity endpoint needed).

    ``style`` is ``primary`` or ``danger``. None when there is no ``url``, or one over Slack's
    limit (a clipped URL would be a broken link; Slack would refuse the whole message):
    :func:`actions` skips it and the alert still posts.
    """
    if not url or len(url) > MAX_BUTTON_URL_CHARS:
        return None
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, MAX_BUTTON_TEXT_CHARS), "emoji": True},
        "url": url,
    }
    if style:
        element["style"] = style
    return element


def actions(buttons: Sequence[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """One ``actions`` block of the given buttons (None skipped, at most :data:`MAX_ACTIONS`),
    or no block at all when none is left: Slack refuses an empty actions block."""
    elements = [b for b in buttons if b is not None][:MAX_ACTIONS]
    return [{"type": "actions", "elements": elements}] if elements else []


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
    """At most :data:`MAX_BLOCKS`: drop from the middle (failure details), keep the links,
    buttons and next steps at the end."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    tail = blocks[-4:]
    return [*blocks[: MAX_BLOCKS - 5], section("… (message shortened)"), *tail]


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
