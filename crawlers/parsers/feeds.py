"""RSS 2.0, Atom 1.0 and RSS 0.9/1.0 (RDF) feeds to a list of entries, safely.

Contract of :func:`parse_feed`:

* Input is the raw response body (bytes). Nothing is fetched: no DTDs, no external entities
  (``file:///etc/passwd`` stays a reference), no entity expansion at all (a billion-laughs
  document parses in microseconds into entries without the expansion), no huge trees.
* Encodings: a declared encoding is honoured; with none declared, bytes that are not UTF-8
  are read as Windows-1252/Latin-1 (the usual culprit). A declaration of UTF-8 over Latin-1
  bytes is corrected the same way. Leading whitespace before ``<?xml`` is ignored.
* A document that is not well-formed is re-parsed in recovery mode: the entries that parsed
  are returned and :attr:`ParsedFeed.error` says what was wrong, so the caller can keep the
  entries and quarantine the document. :class:`FeedError` is raised only when nothing
  feed-like can be recovered (garbage, HTML, JSON...).
* An entry is returned when it has an identity (guid or link) and some text (title or
  summary); any other entry is listed in :attr:`ParsedFeed.problems` with the reason and its
  raw XML, never dropped silently. An unparseable date leaves ``published`` as ``None`` and
  is listed in ``problems`` too (the entry is still returned).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from lxml import etree

from crawlers.parsers.html_text import html_to_text

ATOM_NS = "http://www.w3.org/2005/Atom"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_RAW_PROBLEM_MAX = 4096


class FeedError(ValueError):
    """The bytes are not a feed at all (or nothing of one could be recovered)."""


@dataclasses.dataclass(frozen=True)
class FeedEntry:
    """One feed item. ``published`` is timezone-aware (UTC) or None when absent/unparseable."""

    guid: str
    url: str | None
    title: str | None
    summary: str
    published: datetime | None
    author: str | None
    categories: tuple[str, ...] = ()
    content_html: str | None = None  # content:encoded / atom:content, for a page-less fallback
    language: str | None = None


@dataclasses.dataclass(frozen=True)
class EntryProblem:
    """An entry (or part of one) that could not be used, with why and its raw XML."""

    index: int
    reason: str  # "no_identity", "no_text", "bad_date"
    detail: str
    raw: str


@dataclasses.dataclass(frozen=True)
class ParsedFeed:
    format: str  # "rss", "atom" or "rdf"
    title: str | None
    link: str | None
    language: str | None
    entries: list[FeedEntry]
    problems: list[EntryProblem]
    error: str | None = None  # set when the document was not well-formed and was recovered
    notes: tuple[str, ...] = ()  # e.g. the encoding was guessed, entities were not expanded

    @property
    def recovered(self) -> bool:
        return self.error is not None


def parse_feed(data: bytes, base_url: str | None = None) -> ParsedFeed:
    """Parse feed bytes into entries; see the module docstring for the contract."""
    if not data or not data.strip():
        raise FeedError("empty response: no feed document")
    data, notes = _normalise_bytes(data)
    root, error = _parse_xml(data)
    if root is None:
        raise FeedError(f"not a feed: {error or 'no XML element found'}")
    if _has_entity_declarations(data):
        notes.append("entity declarations ignored (entities are never expanded)")
    local = etree.QName(root).localname.lower()
    if local == "rss":
        channel = _child(root, "channel")
        if channel is None:
            raise FeedError("RSS document without a <channel>" + (f" ({error})" if error else ""))
        items = _children(channel, "item") or _children(root, "item")
        return _build("rss", channel, items, _rss_entry, base_url, error, notes)
    if local == "feed":
        return _build("atom", root, _children(root, "entry"), _atom_entry, base_url, error, notes)
    if local == "rdf":
        channel = _child(root, "channel")
        return _build("rdf", channel, _children(root, "item"), _rss_entry, base_url, error, notes)
    raise FeedError(f"not a feed: the root element is <{etree.QName(root).localname}>")


# --- bytes and XML ------------------------------------------------------------------------------

_DECL = re.compile(rb"^<\?xml[^>]*?\?>")
_DECL_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


def _normalise_bytes(data: bytes) -> tuple[bytes, list[str]]:
    """Leading whitespace removed; undeclared or mis-declared Latin-1 transcoded to UTF-8."""
    notes: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    stripped = data.lstrip()
    if stripped is not data and stripped[:5] == b"<?xml" and len(stripped) != len(data):
        notes.append("leading whitespace before the XML declaration ignored")
    data = stripped
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data, notes  # UTF-16 with a BOM: libxml2 reads it correctly
    decl = _DECL.match(data)
    declared = None
    if decl is not None:
        match = _DECL_ENCODING.search(decl.group(0))
        declared = match.group(1).decode("ascii").lower() if match else None
    if declared not in (None, "utf-8", "utf8"):
        return data, notes  # honour the declaration (libxml2 knows the common charsets)
    try:
        data.decode("utf-8")
        return data, notes
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    notes.append(
        "bytes are not UTF-8 "
        + ("despite the declaration" if declared else "and no encoding is declared")
        + "; read as Windows-1252/Latin-1"
    )
    body = text.encode("utf-8")
    if decl is not None:
        body = _DECL.sub(b'<?xml version="1.0" encoding="UTF-8"?>', body, count=1)
    return body, notes


def _parser(recover: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        recover=recover,
        remove_comments=True,
        remove_pis=True,
        strip_cdata=True,
    )


def _parse_xml(data: bytes) -> tuple[etree._Element | None, str | None]:
    """(root, None) when well-formed; (recovered root or None, first error) otherwise."""
    try:
        return etree.fromstring(data, _parser(recover=False)), None
    except etree.XMLSyntaxError as exc:
        error = _describe(exc)
    parser = _parser(recover=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        root = None
    return root, error


def _describe(exc: etree.XMLSyntaxError) -> str:
    line = getattr(exc, "lineno", None)
    return f"{exc.msg}" + (f" (line {line})" if line and f"line {line}" not in exc.msg else "")


def _has_entity_declarations(data: bytes) -> bool:
    head = data[: data.find(b">", data.find(b"]>")) + 1] if b"<!DOCTYPE" in data[:4096] else b""
    return b"<!ENTITY" in head


# --- element helpers (namespace-agnostic: real feeds bind namespaces every which way) ------------


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname.lower() if isinstance(element.tag, str) else ""


def _children(parent: etree._Element | None, name: str) -> list[etree._Element]:
    if parent is None:
        return []
    return [c for c in parent if isinstance(c.tag, str) and _local(c) == name]


def _child(parent: etree._Element | None, name: str, ns: str | None = None):
    for child in _children(parent, name):
        if ns is None or etree.QName(child).namespace == ns:
            return child
    return None


def _text(element: etree._Element | None) -> str | None:
    """Text content of an element, entity references left out (they are never expanded)."""
    if element is None:
        return None
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            parts.append(_text(child) or "")
        parts.append(child.tail or "")
    text = "".join(parts).strip()
    return text or None


def _html_or_text(element: etree._Element | None) -> str | None:
    """An Atom text construct or RSS field as plain text (escaped HTML is unescaped then
    stripped; ``type="xhtml"`` markup is read as HTML)."""
    if element is None:
        return None
    if (element.get("type") or "").lower() == "xhtml":
        markup = "".join(etree.tostring(c, encoding="unicode") for c in element)
        return html_to_text((element.text or "") + markup) or None
    raw = _text(element)
    return html_to_text(raw) or None if raw else None


def _raw(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")[:_RAW_PROBLEM_MAX]


# --- entries --------------------------------------------------------------------------------------


def _build(fmt, channel, items, to_entry, base_url, error, notes) -> ParsedFeed:
    title = _html_or_text(_child(channel, "title"))
    link = None
    if fmt == "atom":
        link = _atom_link(channel, base_url)
        language = channel.get("{http://www.w3.org/XML/1998/namespace}lang")
    else:
        link = _text(_child(channel, "link"))
        language = _text(_child(channel, "language"))
    entries, problems = [], []
    for index, item in enumerate(items):
        entry, item_problems = to_entry(index, item, base_url)
        problems.extend(item_problems)
        if entry is not None:
            entries.append(entry)
    return ParsedFeed(
        format=fmt,
        title=title,
        link=link,
        language=_language(language),
        entries=entries,
        problems=problems,
        error=error,
        notes=tuple(notes),
    )


def _finish(
    index, item, *, guid, url, title, summary, published_raw, author, categories, content, language
):
    problems = []
    published = None
    if published_raw:
        published = parse_date(published_raw)
        if published is None:
            problems.append(
                EntryProblem(index, "bad_date", f"unparseable date {published_raw!r}", _raw(item))
            )
    identity = guid or url
    text = title or summary
    if not identity:
        problems.append(
            EntryProblem(index, "no_identity", "entry has no guid/id and no link", _raw(item))
        )
        return None, problems
    if not text:
        problems.append(
            EntryProblem(index, "no_text", "entry has no title and no summary", _raw(item))
        )
        return None, problems
    entry = FeedEntry(
        guid=identity,
        url=url,
        title=title,
        summary=summary or "",
        published=published,
        author=author,
        categories=tuple(categories),
        content_html=content,
        language=_language(language),
    )
    return entry, problems


def _rss_entry(index: int, item: etree._Element, base_url: str | None):
    link = _text(_child(item, "link"))
    url = urljoin(base_url or "", link) if link else None
    guid = _text(_child(item, "guid")) or _text(_child(item, "identifier"))
    published_raw = (
        _text(_child(item, "pubdate"))
        or _text(_child(item, "date"))
        or _text(_child(item, "published"))
        or _text(_child(item, "updated"))
    )
    author = _text(_child(item, "creator")) or _text(_child(item, "author"))
    categories = [c for c in (_text(e) for e in _children(item, "category")) if c]
    content = _text(_child(item, "encoded"))
    summary = _html_or_text(_child(item, "description"))
    if not summary and content:
        summary = html_to_text(content) or None
    return _finish(
        index,
        item,
        guid=guid,
        url=url,
        title=_html_or_text(_child(item, "title")),
        summary=summary,
        published_raw=published_raw,
        author=html_to_text(author) or None if author else None,
        categories=categories,
        content=content,
        language=_text(_child(item, "language")),
    )


def _atom_link(element: etree._Element, base_url: str | None) -> str | None:
    fallback = None
    for link in _children(element, "link"):
        href = (link.get("href") or "").strip()
        if not href:
            continue
        rel = (link.get("rel") or "alternate").lower()
        if rel == "alternate" and (link.get("type") or "text/html").startswith("text/html"):
            return urljoin(base_url or "", href)
        if rel == "alternate" and fallback is None:
            fallback = urljoin(base_url or "", href)
    return fallback


def _atom_entry(index: int, entry: etree._Element, base_url: str | None):
    author = None
    author_el = _child(entry, "author")
    if author_el is not None:
        author = _text(_child(author_el, "name")) or _text(_child(author_el, "email"))
    categories = [
        c.get("term") or c.get("label") or _text(c) or "" for c in _children(entry, "category")
    ]
    content_el = _child(entry, "content")
    content = None
    if content_el is not None:
        content = _text(content_el)
        if (content_el.get("type") or "").lower() == "xhtml":
            content = "".join(etree.tostring(c, encoding="unicode") for c in content_el)
    summary = _html_or_text(_child(entry, "summary"))
    if not summary and content:
        summary = html_to_text(content) or None
    return _finish(
        index,
        entry,
        guid=_text(_child(entry, "id")),
        url=_atom_link(entry, base_url),
        title=_html_or_text(_child(entry, "title")),
        summary=summary,
        published_raw=_text(_child(entry, "published")) or _text(_child(entry, "updated")),
        author=author,
        categories=[c.strip() for c in categories if c and c.strip()],
        content=content,
        language=entry.get("{http://www.w3.org/XML/1998/namespace}lang"),
    )


def _language(value: str | None) -> str | None:
    """An ISO 639 code from ``en``, ``en-US``, ``pt_BR`` or ``de-de``; None otherwise."""
    if not value:
        return None
    match = re.match(r"^\s*([A-Za-z]{2,3})(?:[-_]|\s*$)", value)
    return match.group(1).lower() if match else None


# --- dates -------------------------------------------------------------------------------------

# Month and day names seen in real non-English RSS (pt, es, fr, de, it, nl); RFC 822 only
# allows English, but CMSes localise them anyway (UOL writes "Seg, 24 Set 2018").
_MONTHS = {
    "jan": ["janv", "jän", "ene", "gen", "janeiro", "enero"],
    "feb": ["fev", "fév", "févr", "fevereiro", "febr", "febrero", "febbraio"],
    "mar": ["mär", "mrz", "março", "marzo", "mars", "maart", "marco"],
    "apr": ["abr", "avr", "avril", "abril", "aprile"],
    "may": ["mai", "mayo", "maio", "mag", "maggio", "mei"],
    "jun": ["juin", "junio", "junho", "giu", "giugno"],
    "jul": ["juil", "juillet", "julio", "julho", "lug", "luglio"],
    "aug": ["ago", "août", "aout", "agosto", "augustus"],
    "sep": ["set", "sept", "septembre", "septiembre", "setembro", "settembre"],
    "oct": ["out", "okt", "octobre", "octubre", "outubro", "ott", "ottobre"],
    "nov": ["novembre", "noviembre", "novembro"],
    "dec": ["dez", "déc", "dic", "dicembre", "diciembre", "dezembro", "décembre"],
}
_MONTH_ALIASES = {alias: en for en, aliases in _MONTHS.items() for alias in aliases}
_ZONES = {
    "UTC": 0,
    "Z": 0,
    "CET": 1,
    "CEST": 2,
    "MEZ": 1,
    "MESZ": 2,
    "BST": 1,
    "IST": 5.5,
    "EET": 2,
    "EEST": 3,
    "WET": 0,
    "WEST": 1,
    "JST": 9,
    "KST": 9,
    "AEST": 10,
    "AEDT": 11,
    "BRT": -3,
    "HKT": 8,
    "SGT": 8,
}
_RFC822_SHAPE = re.compile(
    r"^(?:[^\d,]+,\s*)?(\d{1,2})\s+([^\s\d]+)\.?\s+(\d{2,4})\s+(\d{1,2}:\d{2}(?::\d{2})?)\s*(.*)$"
)


def parse_date(value: str | None) -> datetime | None:
    """An RFC 822 or ISO 8601 date as an aware UTC datetime; None if it cannot be read.

    Naive values are taken as UTC. Localised month/day names and common zone abbreviations
    (CET, CEST, BST, KST...) are understood.
    """
    if not value or not value.strip():
        return None
    text = " ".join(value.split())
    when = _iso(text) or _rfc822(text)
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _iso(text: str) -> datetime | None:
    candidate = text.replace(" ", "T", 1) if re.match(r"^\d{4}-\d\d-\d\d \d", text) else text
    if candidate.endswith("z"):
        candidate = candidate[:-1] + "Z"
    try:
        return datetime.fromisoformat(candidate.replace("Z", "+00:00"))
    except ValueError:
        return None


def _rfc822(text: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(text)
        if when is not None:
            return when
    except (TypeError, ValueError, IndexError):
        pass
    match = _RFC822_SHAPE.match(text)
    if match is None:
        return None
    day, month, year, clock, zone = match.groups()
    month_key = month.lower().rstrip(".")
    month_en = month_key[:3] if month_key[:3] in _MONTHS else _MONTH_ALIASES.get(month_key)
    if month_en is None:
        month_en = _MONTH_ALIASES.get(month_key[:3]) or _MONTH_ALIASES.get(month_key[:4])
    if month_en is None:
        return None
    zone = zone.strip()
    offset = None
    if zone.upper() in _ZONES:
        offset = _ZONES[zone.upper()]
        zone = ""
    rebuilt = f"{day} {month_en.title()} {year} {clock} {zone or '+0000'}"
    try:
        when = parsedate_to_datetime(rebuilt)
    except (TypeError, ValueError, IndexError):
        return None
    if offset is not None:
        when = when.replace(tzinfo=timezone(timedelta(hours=offset)))
    return when
