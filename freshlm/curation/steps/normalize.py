"""Normalize: Unicode NFC, leftover HTML and entities, invisible characters, whitespace, and
boilerplate lines. Drops documents with no text left (``normalize:empty``).

Crawlers already extract plain text; this step cleans what slips through (an ``&amp;`` from a
feed summary, a ``<br>`` in a Mastodon post, a "Share this article" line) so that later rules
and the exact-duplicate hash see one canonical form. Every fast path is guarded by a cheap
character test, so clean text pays only for ``str`` methods implemented in C.
"""

from __future__ import annotations

import html
import re
import unicodedata

from freshlm.curation.config import NormalizeConfig
from freshlm.curation.steps.base import Doc, DocStep, Drop

_BLOCK_TAG_RE = re.compile(
    r"<\s*(?:br|/?p|/?div|/?li|/?h[1-6]|/?tr|/?blockquote)\b[^>]{0,200}>", re.I
)
_TAG_RE = re.compile(r"<\s*/?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]{0,500})?\s*/?>")
_SCRIPT_RE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
# C0/C1 controls except tab and newline, zero-width characters, soft hyphen, BOM, bidi marks.
_INVISIBLE_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200d\u2060\ufeff\u200e\u200f\u202a-\u202e]"
)
_SPACES_RE = re.compile(r"[^\S\n]+")  # any whitespace but newline (tabs, NBSP, ideographic...)
_BOILERPLATE_RE = re.compile(
    r"^(?:"
    r"(?:read|see) (?:more|also|the full story)\b.{0,40}"
    r"|(?:share|print|email) (?:this|the) (?:article|story|page|post)\b.{0,40}"
    r"|(?:sign up|subscribe) (?:for|to) (?:our|the) (?:newsletter|updates)\b.{0,40}"
    r"|(?:follow us|like us) on\b.{0,40}"
    r"|click here\b.{0,40}"
    r"|advertisement|sponsored( content)?|skip to (?:main )?content"
    r"|(?:all rights reserved|copyright ©?).{0,60}|©.{0,60}all rights reserved.{0,20}"
    r"|this (?:site|website) uses cookies\b.*|accept (?:all )?cookies"
    r"|(?:related|most read|trending)(?: articles| stories| now)?:?"
    r"|.*무단\s*전재.*재배포\s*금지.*|저작권자\s*[©ⓒ].*"
    r"|기사\s*공유(?:하기)?|구독(?:하기)?|관련\s*기사|많이\s*본\s*뉴스"
    r")$",
    re.I,
)
_BOILERPLATE_START = re.compile(
    r"^(?:read|see|share|print|email|sign|subscribe|follow|like|click|advert|sponsored|skip|all "
    r"|copyright|©|this |accept|related|most|trending|.*무단|저작권|기사|구독|관련|많이)",
    re.I,
)


def normalize_text(text: str, config: NormalizeConfig) -> tuple[str, int]:
    """The normalized text and how many boilerplate lines were removed."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if "<" in text and ">" in text:
        text = _SCRIPT_RE.sub(" ", text)
        text = _BLOCK_TAG_RE.sub("\n", text)
        text = _TAG_RE.sub("", text)
    if "&" in text:
        text = html.unescape(text)
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE_RE.sub("", text)
    text = _SPACES_RE.sub(" ", text)
    lines = text.split("\n")
    removed = 0
    out = []
    limit = config.boilerplate_max_line_chars
    for line in lines:
        line = line.strip()
        # The anchored prefix test is cheap; the full pattern runs only on likely lines.
        if (
            line
            and len(line) <= limit
            and _BOILERPLATE_START.match(line)
            and _BOILERPLATE_RE.match(line)
        ):
            removed += 1
            continue
        out.append(line)
    text = "\n".join(out).strip()
    paragraph_break = "\n" * (config.max_blank_lines + 1)
    if paragraph_break + "\n" in text:
        text = re.sub(f"\n{{{config.max_blank_lines + 2},}}", paragraph_break, text)
    return text, removed


class NormalizeStep(DocStep):
    """Normalize ``text`` and ``title`` in place; counts ``changed`` and ``boilerplate_lines``."""

    name = "normalize"

    def __init__(self, config: NormalizeConfig | None = None) -> None:
        super().__init__()
        self.config = config or NormalizeConfig()

    def process(self, doc: Doc) -> Drop | None:
        original = doc.get("text") or ""
        text, removed = normalize_text(original, self.config)
        if removed:
            self.counters["boilerplate_lines"] += removed
        if text != original:
            self.counters["changed"] += 1
            doc["text"] = text
        title = doc.get("title")
        if title:
            doc["title"] = normalize_text(title, self.config)[0].replace("\n", " ") or None
        if not text:
            return Drop("empty", "no text left after normalization")
        return None
