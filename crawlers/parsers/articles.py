"""The main text of a news article page, without the site's chrome, ads and scripts.

Extractor: `trafilatura <https://trafilatura.readthedocs.io>`_ (2.x) with ``favor_precision``.
It is maintained, offline (it never fetches: we hand it bytes), benchmarks at or near the top
of open-source main-content extractors, and returns metadata (title, author, date) from
``<meta>``/JSON-LD in the same pass. Precision over recall because a training corpus is
hurt more by cookie banners and "read more" boxes than by a lost paragraph.

If trafilatura finds nothing (tiny pages, odd markup), the text of ``<article>`` (or
``<main>``) is taken via lxml, with scripts, styles, navigation and asides removed. Scripts and
styles never reach the text either way.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import datetime

import trafilatura
from lxml import etree, html
from trafilatura.settings import use_config

from crawlers.parsers.feeds import parse_date
from crawlers.parsers.html_text import html_to_text

# trafilatura logs every page it finds too short at WARNING; the caller reports outcomes.
logging.getLogger("trafilatura").setLevel(logging.ERROR)

_NOT_CONTENT = (
    "//script | //style | //noscript | //template | //nav | //aside | //form | //footer"
    " | //iframe | //*[contains(concat(' ', normalize-space(@class), ' '), ' ad-slot ')]"
)
_CONFIG = use_config()
# A hostile page with millions of elements cannot make extraction run for minutes.
_CONFIG.set("DEFAULT", "MAX_TREE_SIZE", "100000")
# trafilatura's timeout uses SIGALRM, which must not fire inside Twisted's reactor.
_CONFIG.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")


@dataclasses.dataclass(frozen=True)
class Article:
    """What an article page yields. ``text`` is "" when no main text was found."""

    text: str
    title: str | None
    author: str | None
    published: datetime | None
    language: str | None
    extractor: str  # "trafilatura", "article-fallback" or "none"


_WARM_PAGE = (
    "<html><head><title>Warm-up</title><meta name='author' content='A. Writer'></head><body>"
    "<article><h1>Warm-up</h1><p>"
    + "The extractor loads its date, URL and language helpers on first use. " * 8
    + "</p></article></body></html>"
)


def warm_up() -> None:
    """Run one extraction so trafilatura's lazily built helpers (URL and date parsers, public
    suffix tables) are ready before the first real page; a crawl then pays them at start, not
    inside its first article callbacks."""
    extract_article(_WARM_PAGE, "https://example.org/warm-up")


def extract_article(page: bytes | str, url: str | None = None) -> Article:
    """Main text and metadata of an HTML page; never raises on bad markup."""
    if isinstance(page, bytes):
        page = _decode(page)
    if not page.strip():
        return Article("", None, None, None, None, "none")
    doc = None
    tree = _parse_html(page)  # parsed once: metadata first (JSON-LD lives in <script>)
    meta = _metadata(tree) if tree is not None else {}
    if tree is not None:
        # Script-like elements go before extraction: trafilatura keeps <template> text.
        for junk in tree.xpath("//script | //style | //template | //noscript"):
            junk.drop_tree()
    try:
        doc = trafilatura.bare_extraction(
            tree if tree is not None else page,
            url=url,
            favor_precision=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            # The page's own metadata (JSON-LD, meta tags) wins anyway; trafilatura's
            # metadata pass is only worth its cost when something is missing.
            with_metadata=not {"title", "author", "date"} <= meta.keys(),
            config=_CONFIG,
        )
    except Exception:
        logging.getLogger(__name__).warning("trafilatura failed on %s", url, exc_info=True)
        doc = None
    text = _tidy(getattr(doc, "text", None) or "") if doc is not None else ""
    extractor = "trafilatura"
    if not text:
        text, extractor = _fallback_text(page), "article-fallback"
        if not text:
            extractor = "none"
    title = (getattr(doc, "title", None) if doc is not None else None) or meta.get("title")
    author = (getattr(doc, "author", None) if doc is not None else None) or meta.get("author")
    published = parse_date(meta.get("date")) or parse_date(
        getattr(doc, "date", None) if doc is not None else None
    )
    language = meta.get("language") or (getattr(doc, "language", None) if doc is not None else None)
    return Article(
        text=text,
        title=title.strip() if title else None,
        author=author.strip() if author else None,
        published=published,
        language=_language(language),
        extractor=extractor,
    )


def _decode(page: bytes) -> str:
    head = page[:2048].decode("ascii", errors="ignore")
    match = re.search(r"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", head, re.I)
    for encoding in (match.group(1) if match else None, "utf-8"):
        if encoding:
            try:
                return page.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                continue
    return page.decode("cp1252", errors="replace")


def _parse_html(page: str) -> etree._Element | None:
    try:
        return html.document_fromstring(page)
    except (etree.ParserError, ValueError):
        return None


def _fallback_text(page: str) -> str:
    root = _parse_html(page)
    if root is None:
        return ""
    containers = root.xpath("//article") or root.xpath("//main") or []
    if not containers:
        return ""
    for junk in containers[0].xpath("." + _NOT_CONTENT.replace(" | //", " | .//")):
        junk.drop_tree()
    return html_to_text(etree.tostring(containers[0], encoding="unicode", method="html"))


def _metadata(root: etree._Element) -> dict[str, str]:
    """Title, author, date and language from meta tags and JSON-LD (most specific first)."""
    out: dict[str, str] = {}
    lang = root.get("lang")
    if lang:
        out["language"] = lang
    for script in root.xpath("//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "")
        except (ValueError, RecursionError):
            continue  # broken or absurdly nested JSON-LD: the page's text is still read
        for node in data if isinstance(data, list) else [data]:
            if not isinstance(node, dict):
                continue
            if isinstance(node.get("headline"), str):
                out.setdefault("title", node["headline"])
            if isinstance(node.get("datePublished"), str):
                out.setdefault("date", node["datePublished"])
            authors = node.get("author")
            authors = authors if isinstance(authors, list) else [authors]
            names = [a.get("name") for a in authors if isinstance(a, dict) and a.get("name")]
            if names:
                out.setdefault("author", ", ".join(names))
    for key, xpath in (
        ("title", "//meta[@property='og:title']/@content"),
        ("date", "//meta[@property='article:published_time']/@content"),
        ("author", "//meta[@name='author']/@content"),
    ):
        values = root.xpath(xpath)
        if values and key not in out:
            out[key] = values[0]
    return out


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _language(value: str | None) -> str | None:
    if not value:
        return None
    match = re.match(r"^\s*([A-Za-z]{2,3})(?:[-_]|\s*$)", value)
    return match.group(1).lower() if match else None
