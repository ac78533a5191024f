"""arXiv API Atom responses (the 2025+ format and the legacy one) to paper metadata.

Contract of :func:`parse_arxiv_feed`:

* Both formats are read namespace-aware: the 2025+ feed declares ``opensearch``/``arxiv`` on
  the root, the legacy one on each element; both bind the same namespace URIs.
* A paper keeps metadata only (arXiv metadata is CC0): id without version, version, title
  and abstract with whitespace unwrapped (the legacy format hard-wraps them), authors,
  categories (primary first), published/updated (aware UTC), doi, journal_ref, comment.
* The API's error feed (one entry titled ``Error`` with an ``/api/errors`` id) raises
  :class:`ArxivApiError` carrying arXiv's own message.
* The document is parsed with a hardened lxml parser (no entities, no network, no DTD).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

from lxml import etree

from crawlers.parsers.feeds import parse_date

ATOM = "http://www.w3.org/2005/Atom"
ARXIV = "http://arxiv.org/schemas/atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
_NS = {"a": ATOM, "arxiv": ARXIV, "os": OPENSEARCH}
_ID = re.compile(r"abs/(?P<id>.+?)(?:v(?P<version>\d+))?$")


class ArxivApiError(ValueError):
    """arXiv answered with its error feed (or something that is no arXiv feed at all)."""


@dataclasses.dataclass(frozen=True)
class Paper:
    arxiv_id: str  # without version: "2611.01023", "hep-th/9901001"
    version: int | None
    url: str  # the abstract page
    title: str
    abstract: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]  # primary first
    primary_category: str | None
    published: datetime | None
    updated: datetime | None
    doi: str | None
    journal_ref: str | None
    comment: str | None


@dataclasses.dataclass(frozen=True)
class ArxivPage:
    total_results: int | None
    start_index: int | None
    items_per_page: int | None
    papers: list[Paper]


def parse_arxiv_feed(data: bytes) -> ArxivPage:
    """Parse an ``/api/query`` response body; raise ArxivApiError for error feeds."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data.lstrip(), parser)
    except etree.XMLSyntaxError as exc:
        raise ArxivApiError(f"the arXiv response is not well-formed XML: {exc}") from None
    if root.tag != f"{{{ATOM}}}feed":
        raise ArxivApiError(f"not an arXiv Atom feed: the root element is <{root.tag}>")
    entries = root.findall("a:entry", _NS)
    for entry in entries:
        entry_id = _text(entry, "a:id") or ""
        if "/api/errors" in entry_id or (_text(entry, "a:title") == "Error" and len(entries) == 1):
            message = _text(entry, "a:summary") or "unknown error"
            raise ArxivApiError(f"arXiv API error: {message}")
    return ArxivPage(
        total_results=_int(root, "os:totalResults"),
        start_index=_int(root, "os:startIndex"),
        items_per_page=_int(root, "os:itemsPerPage"),
        papers=[_paper(e) for e in entries],
    )


def _paper(entry: etree._Element) -> Paper:
    raw_id = _text(entry, "a:id") or ""
    match = _ID.search(raw_id)
    arxiv_id = match.group("id") if match else raw_id
    version = int(match.group("version")) if match and match.group("version") else None
    primary_el = entry.find("arxiv:primary_category", _NS)
    primary = primary_el.get("term") if primary_el is not None else None
    categories = [c.get("term") for c in entry.findall("a:category", _NS) if c.get("term")]
    if primary and primary in categories:
        categories.remove(primary)
    if primary:
        categories.insert(0, primary)
    url = None
    for link in entry.findall("a:link", _NS):
        if link.get("rel") == "alternate":
            url = link.get("href")
    return Paper(
        arxiv_id=arxiv_id,
        version=version,
        url=url or raw_id,
        title=_unwrapped(entry, "a:title") or "",
        abstract=_unwrapped(entry, "a:summary") or "",
        authors=tuple(
            n for n in (_unwrapped(a, "a:name") for a in entry.findall("a:author", _NS)) if n
        ),
        categories=tuple(dict.fromkeys(categories)),
        primary_category=primary,
        published=parse_date(_text(entry, "a:published")),
        updated=parse_date(_text(entry, "a:updated")),
        doi=_unwrapped(entry, "arxiv:doi"),
        journal_ref=_unwrapped(entry, "arxiv:journal_ref"),
        comment=_unwrapped(entry, "arxiv:comment"),
    )


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path, _NS)
    if found is None:
        return None
    # A title may legitimately be "0": only None and whitespace count as missing.
    text = "".join(found.itertext())
    return text.strip() if text.strip() else None


def _unwrapped(element: etree._Element, path: str) -> str | None:
    text = _text(element, path)
    return " ".join(text.split()) if text is not None else None


def _int(root: etree._Element, path: str) -> int | None:
    text = _text(root, path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
