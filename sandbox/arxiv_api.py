"""The arXiv query API (``GET /api/query``) over the scenario's papers, in the 2025+ Atom format.

Parameters, as on ``export.arxiv.org/api/query``:

* ``search_query``: terms ``field:value`` with fields ``cat``, ``submittedDate``,
  ``lastUpdatedDate``, ``ti``, ``abs``, ``au``, ``co``, ``jr``, ``id``, ``all`` (a bare word
  means ``all:``); values are words, ``"quoted phrases"`` or, for the dates,
  ``[YYYYMMDDHHMM TO YYYYMMDDHHMM]`` (8, 12 or 14 digits, GMT, both ends inclusive);
  combined with ``AND``, ``OR``, ``ANDNOT`` and parentheses. ``+`` counts as a space, so
  ``cat:cs.CL+AND+submittedDate:[...]`` works however a client encoded it.
* ``id_list``: comma-separated ids (``2611.01234``, ``2611.01234v2``, ``hep-th/9901001``);
  with a ``search_query`` too, the ids are filtered by it.
* ``start`` (default 0), ``max_results`` (default 10, capped at 2000 like arXiv),
  ``sortBy`` (``relevance``, ``lastUpdatedDate``, ``submittedDate``), ``sortOrder``
  (``ascending``, ``descending``).

Only papers with ``published_at <= now`` exist. Invalid input answers HTTP 400 with arXiv's
error feed: one ``<entry>`` titled ``Error`` whose ``<summary>`` says what was wrong.
"Relevance" has no search engine behind it here: it orders like ``submittedDate``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime

from lxml import etree

from sandbox.http_messages import Request, Response, iso_seconds
from sandbox.model import Paper, Scenario

ATOM = "http://www.w3.org/2005/Atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
ARXIV = "http://arxiv.org/schemas/atom"
NSMAP = {"opensearch": OPENSEARCH, "arxiv": ARXIV, None: ATOM}
CONTENT_TYPE = "application/atom+xml; charset=utf-8"

DEFAULT_MAX_RESULTS = 10
MAX_RESULTS_CAP = 2000
SORT_BY = ("relevance", "lastUpdatedDate", "submittedDate")
SORT_ORDER = ("ascending", "descending")
TEXT_FIELDS = ("ti", "abs", "au", "co", "jr", "cat", "id", "all")
DATE_FIELDS = ("submittedDate", "lastUpdatedDate")

_ID_NEW = re.compile(r"\d{4}\.\d{4,5}(v\d+)?")
_ID_OLD = re.compile(r"[a-z][a-z-]*(\.[A-Z]{2})?/\d{7}(v\d+)?")


class ArxivQueryError(ValueError):
    """Invalid API input; the message is what the error feed's summary says."""


# --- search_query parsing -----------------------------------------------------------------------

Predicate = Callable[["PaperView"], bool]

_QUERY_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))"
    r"|(?P<field>[A-Za-z]+):(?P<value>\[[^\]]*\]|\"[^\"]*\"|[^\s()\"]+)"
    r"|(?P<phrase>\"[^\"]*\")|(?P<word>[^\s()\"]+))"
)


@dataclasses.dataclass(frozen=True)
class PaperView:
    """A paper as visible at a moment: an update after ``now`` is not visible yet."""

    paper: Paper
    version: int
    updated_at: datetime

    @classmethod
    def at(cls, paper: Paper, now: datetime) -> PaperView:
        if paper.updated_at <= now:
            return cls(paper, paper.version, paper.updated_at)
        return cls(paper, 1, paper.published_at)


def parse_search_query(query: str) -> Predicate:
    """Compile a ``search_query`` into a predicate over papers; raise ArxivQueryError."""
    tokens = _tokenize(query.replace("+", " "))
    if not tokens:
        raise ArxivQueryError("search_query is empty")
    predicate, pos = _parse_or(tokens, 0)
    if pos != len(tokens):
        raise ArxivQueryError(f"malformed search_query: unexpected {tokens[pos][1]!r}")
    return predicate


def canonical_query(query: str) -> str:
    """The query as arXiv echoes it in the feed title (bare words gain ``all:``)."""
    parts = []
    for kind, text in _tokenize(query.replace("+", " ")):
        parts.append(f"all:{text}" if kind in ("word", "phrase") else text)
    return " ".join(parts).replace("( ", "(").replace(" )", ")")


def _tokenize(query: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    query = query.strip()
    while pos < len(query):
        match = _QUERY_TOKEN.match(query, pos)
        if match is None or match.end() == pos:
            raise ArxivQueryError(f"malformed search_query near {query[pos:]!r}")
        pos = match.end()
        if match.group("lp"):
            tokens.append(("(", "("))
        elif match.group("rp"):
            tokens.append((")", ")"))
        elif match.group("field"):
            tokens.append(("term", match.group(0).strip()))
        elif match.group("phrase"):
            tokens.append(("phrase", match.group("phrase")))
        else:
            word = match.group("word")
            tokens.append(("op", word) if word in ("AND", "OR", "ANDNOT") else ("word", word))
        while pos < len(query) and query[pos].isspace():
            pos += 1
    return tokens


def _parse_or(tokens: list[tuple[str, str]], pos: int) -> tuple[Predicate, int]:
    left, pos = _parse_atom(tokens, pos)
    while pos < len(tokens) and tokens[pos][0] == "op":
        op = tokens[pos][1]
        right, pos = _parse_atom(tokens, pos + 1)
        # arXiv's Lucene-style boolean operators bind left to right with equal precedence.
        left = _combine(op, left, right)
    return left, pos


def _combine(op: str, left: Predicate, right: Predicate) -> Predicate:
    if op == "AND":
        return lambda v: left(v) and right(v)
    if op == "OR":
        return lambda v: left(v) or right(v)
    return lambda v: left(v) and not right(v)


def _parse_atom(tokens: list[tuple[str, str]], pos: int) -> tuple[Predicate, int]:
    if pos >= len(tokens):
        raise ArxivQueryError("malformed search_query: it ends where a term was expected")
    kind, text = tokens[pos]
    if kind == "(":
        inner, pos = _parse_or(tokens, pos + 1)
        if pos >= len(tokens) or tokens[pos][0] != ")":
            raise ArxivQueryError("malformed search_query: unbalanced parentheses")
        return inner, pos + 1
    if kind == "term":
        field, value = text.split(":", 1)
        return _term(field, value), pos + 1
    if kind in ("word", "phrase"):
        return _term("all", text), pos + 1
    raise ArxivQueryError(f"malformed search_query: unexpected {text!r}")


def _term(field: str, value: str) -> Predicate:
    if field in DATE_FIELDS:
        low, high = _date_range(field, value)
        if field == "submittedDate":
            return lambda v: low <= v.paper.published_at <= high
        return lambda v: low <= v.updated_at <= high
    if field not in TEXT_FIELDS:
        known = ", ".join((*TEXT_FIELDS, *DATE_FIELDS))
        raise ArxivQueryError(f"unknown search_query field {field!r}; known fields: {known}")
    if value.startswith("[") or not value.strip('"').strip():
        raise ArxivQueryError(f"malformed search_query: {field}:{value} needs a word or phrase")
    if field == "cat":
        # Category terms match a whole category (cs.CL) or an archive prefix (cs, cs.*).
        wanted = value.strip('"').rstrip("*").rstrip(".")
        return lambda v: any(c == wanted or c.startswith(wanted + ".") for c in v.paper.categories)
    if field == "id":
        wanted = value.strip('"')
        return lambda v: v.paper.arxiv_id == re.sub(r"v\d+$", "", wanted)
    phrase = value.startswith('"')
    needle = value.strip('"').lower()

    def matches(view: PaperView) -> bool:
        haystack = _field_text(view.paper, field).lower()
        if phrase:
            return needle in haystack
        words = set(re.findall(r"\w+", haystack))
        return all(w in words for w in re.findall(r"\w+", needle))

    return matches


def _field_text(paper: Paper, field: str) -> str:
    texts = {
        "ti": paper.title,
        "abs": paper.abstract,
        "au": " ".join(paper.authors),
        "co": paper.comment or "",
        "jr": paper.journal_ref or "",
    }
    if field == "all":
        return " ".join((*texts.values(), " ".join(paper.categories)))
    return texts[field]


def _date_range(field: str, value: str) -> tuple[datetime, datetime]:
    match = re.fullmatch(r"\[\s*(\d+)\s+TO\s+(\d+)\s*\]", value)
    if match is None:
        raise ArxivQueryError(
            f"malformed search_query: {field} needs [YYYYMMDDHHMM TO YYYYMMDDHHMM], got {value}"
        )
    return _date_bound(field, match.group(1)), _date_bound(field, match.group(2))


def _date_bound(field: str, digits: str) -> datetime:
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    fmt = formats.get(len(digits))
    if fmt is None:
        raise ArxivQueryError(
            f"malformed search_query: {field} bound {digits} must have 8, 12 or 14 digits "
            "(YYYYMMDD[HHMM[SS]], GMT)"
        )
    try:
        return datetime.strptime(digits, fmt).replace(tzinfo=UTC)
    except ValueError:
        raise ArxivQueryError(
            f"malformed search_query: {field} bound {digits} is not a date"
        ) from None


# --- the endpoint -------------------------------------------------------------------------------


class ArxivApi:
    """Answers ``/api/query`` from the scenario's papers at a world time."""

    def __init__(self, scenario: Scenario, base_url: str):
        self.scenario = scenario
        self.base_url = base_url.rstrip("/")

    def handle(self, request: Request, now: datetime) -> Response:
        try:
            return self._query(request, now)
        except ArxivQueryError as exc:
            return Response(400, self.error_feed(str(exc), now), CONTENT_TYPE)

    def _query(self, request: Request, now: datetime) -> Response:
        search_query = request.param("search_query") or ""
        id_list_raw = request.param("id_list") or ""
        start = _int_param(request, "start", 0)
        max_results = min(_int_param(request, "max_results", DEFAULT_MAX_RESULTS), MAX_RESULTS_CAP)
        sort_by = request.param("sortBy") or "relevance"
        if sort_by not in SORT_BY:
            raise ArxivQueryError(f"sortBy must be one of {', '.join(SORT_BY)}, got {sort_by!r}")
        sort_order = request.param("sortOrder") or "descending"
        if sort_order not in SORT_ORDER:
            raise ArxivQueryError(
                f"sortOrder must be one of {', '.join(SORT_ORDER)}, got {sort_order!r}"
            )
        ids = [i.strip() for i in id_list_raw.split(",") if i.strip()]
        for arxiv_id in ids:
            if not (_ID_NEW.fullmatch(arxiv_id) or _ID_OLD.fullmatch(arxiv_id)):
                raise ArxivQueryError(f"incorrect id format for {arxiv_id}")
        if not search_query.strip() and not ids:
            raise ArxivQueryError("search_query or id_list is required")
        predicate = parse_search_query(search_query) if search_query.strip() else None

        views = [PaperView.at(p, now) for p in self.scenario.papers_at(now)]
        if ids:
            by_id = {v.paper.arxiv_id: v for v in views}
            selected = []
            for arxiv_id in ids:
                match = re.fullmatch(r"(.+?)(?:v(\d+))?", arxiv_id)
                assert match is not None  # the id formats were validated above
                base_id, version = match.group(1), match.group(2)
                view = by_id.get(base_id)
                if view is not None and (version is None or int(version) <= view.version):
                    selected.append(view)
            views = selected
        if predicate is not None:
            views = [v for v in views if predicate(v)]
        if not ids or predicate is not None:
            key = (
                (lambda v: (v.updated_at, v.paper.arxiv_id))
                if sort_by == "lastUpdatedDate"
                else (lambda v: (v.paper.published_at, v.paper.arxiv_id))
            )
            views.sort(key=key, reverse=sort_order == "descending")
        page = views[start : start + max_results]
        title_query = canonical_query(search_query) if search_query.strip() else ""
        body = self.results_feed(
            page, title_query, id_list_raw, start, max_results, len(views), now
        )
        return Response(200, body, CONTENT_TYPE)

    # --- rendering ---------------------------------------------------------------------------

    def results_feed(
        self,
        page: list[PaperView],
        search_query: str,
        id_list: str,
        start: int,
        max_results: int,
        total: int,
        now: datetime,
    ) -> bytes:
        echo = (
            f"search_query={search_query}&id_list={id_list}&start={start}&max_results={max_results}"
        )
        feed = etree.Element(f"{{{ATOM}}}feed", nsmap=NSMAP)
        # arXiv's feed id is a hash of the query, base64 without padding.
        digest = base64.b64encode(hashlib.sha1(echo.encode()).digest()).decode().rstrip("=")
        _sub(feed, "id", f"{self.base_url}/api/{digest}")
        _sub(feed, "title", f"arXiv Query: {echo}")
        _sub(feed, "updated", iso_seconds(now))
        link = (
            f"{self.base_url}/api/query?search_query={search_query}&start={start}"
            f"&max_results={max_results}&id_list={id_list}"
        )
        _sub(feed, "link", href=link, type="application/atom+xml")
        _sub(feed, f"{{{OPENSEARCH}}}itemsPerPage", str(max_results))
        _sub(feed, f"{{{OPENSEARCH}}}totalResults", str(total))
        _sub(feed, f"{{{OPENSEARCH}}}startIndex", str(start))
        for view in page:
            self._entry(feed, view)
        return _serialize(feed)

    def _entry(self, feed: etree._Element, view: PaperView) -> None:
        paper = view.paper
        versioned = f"{paper.arxiv_id}v{view.version}"
        entry = _sub(feed, "entry")
        # Element order follows the live API's output.
        _sub(entry, "id", f"{self.base_url}/abs/{versioned}")
        _sub(entry, "title", paper.title)
        _sub(entry, "updated", iso_seconds(view.updated_at))
        _sub(
            entry,
            "link",
            href=f"{self.base_url}/abs/{versioned}",
            rel="alternate",
            type="text/html",
        )
        _sub(
            entry,
            "link",
            href=f"{self.base_url}/pdf/{versioned}",
            rel="related",
            type="application/pdf",
            title="pdf",
        )
        _sub(entry, "summary", paper.abstract)
        categories = [paper.primary_category] + [
            c for c in paper.categories if c != paper.primary_category
        ]
        for category in categories:
            _sub(entry, "category", term=category, scheme=ARXIV)
        _sub(entry, "published", iso_seconds(paper.published_at))
        if paper.comment:
            _sub(entry, f"{{{ARXIV}}}comment", paper.comment)
        _sub(entry, f"{{{ARXIV}}}primary_category", term=paper.primary_category)
        if paper.journal_ref:
            _sub(entry, f"{{{ARXIV}}}journal_ref", paper.journal_ref)
        for name in paper.authors:
            author = _sub(entry, "author")
            _sub(author, "name", name)
        if paper.doi:
            _sub(entry, f"{{{ARXIV}}}doi", paper.doi)
            _sub(entry, "link", rel="related", href=f"https://doi.org/{paper.doi}", title="doi")

    def error_feed(self, message: str, now: datetime) -> bytes:
        """arXiv's error response: a one-entry feed whose summary is the message."""
        anchor = re.sub(r"\W+", "_", message.lower()).strip("_")
        error_url = f"{self.base_url}/api/errors#{anchor}"
        feed = etree.Element(f"{{{ATOM}}}feed", nsmap=NSMAP)
        _sub(feed, "id", f"{self.base_url}/")
        _sub(feed, "title", "arXiv Search Results")
        _sub(feed, "updated", iso_seconds(now))
        _sub(feed, f"{{{OPENSEARCH}}}itemsPerPage", "1")
        _sub(feed, f"{{{OPENSEARCH}}}totalResults", "1")
        _sub(feed, f"{{{OPENSEARCH}}}startIndex", "0")
        entry = _sub(feed, "entry")
        _sub(entry, "id", error_url)
        _sub(entry, "title", "Error")
        _sub(entry, "updated", iso_seconds(now))
        _sub(entry, "link", href=error_url, rel="alternate", type="text/html")
        _sub(entry, "summary", message)
        author = _sub(entry, "author")
        _sub(author, "name", "arXiv api core")
        return _serialize(feed)


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str):
    qualified = tag if tag.startswith("{") else f"{{{ATOM}}}{tag}"
    element = etree.SubElement(parent, qualified, attrs)
    if text is not None:
        element.text = text
    return element


def _serialize(feed: etree._Element) -> bytes:
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.param(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ArxivQueryError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ArxivQueryError(f"{name} must be non-negative, got {value}")
    return value
