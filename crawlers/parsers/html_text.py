"""HTML fragments to plain text that keeps paragraphs, line breaks and link text.

Feed summaries, Mastodon statuses and article fallbacks all carry small HTML fragments. The
text must read like the page does: one blank line between paragraphs, ``<br>`` as a newline,
link text kept (Mastodon's ``invisible`` spans included, so shortened links read as the full
URL), and nothing from ``<script>``/``<style>``/``<template>`` ever.
"""

from __future__ import annotations

import re

from lxml import etree, html

_DROP = {"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "head"}
_BLOCKS = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "aside",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "figure",
    "figcaption",
    "main",
    "nav",
    "hr",
    "form",
}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(fragment: str | None) -> str:
    """Plain text of an HTML fragment; paragraphs separated by a blank line, stripped.

    Never raises on bad markup (lxml's HTML parser recovers from anything); an empty or
    markup-only fragment gives ``""``.
    """
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment and "&" not in fragment:
        return _tidy(fragment)
    try:
        root = html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return _tidy(re.sub(r"<[^>]*>", " ", fragment))
    parts: list[str] = []
    _walk(root, parts)
    return _tidy("".join(parts))


def _walk(element: etree._Element, out: list[str]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    tag = tag.lower()
    if tag in _DROP or not isinstance(element.tag, str):
        # Comments and processing instructions carry no visible text; their tails do.
        if element.tail:
            out.append(element.tail)
        return
    if tag in _BLOCKS:
        out.append("\n\n")
    if tag == "br":
        out.append("\n")
    if element.text:
        out.append(element.text)
    for child in element:
        _walk(child, out)
    if tag in _BLOCKS:
        out.append("\n\n")
    if element.tail:
        out.append(element.tail)


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
