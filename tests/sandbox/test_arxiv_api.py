"""Behaviour of the emulated arXiv API: query grammar, date windows, paging, errors."""

from __future__ import annotations

import pytest
import requests
from lxml import etree

from sandbox.server import WorldServer
from tests.sandbox import tiny_scenario

ATOM = "{http://www.w3.org/2005/Atom}"
OS = "{http://a9.com/-/spec/opensearch/1.1/}"


def _query(world: WorldServer, raw: str | None = None, **params) -> tuple[int, etree._Element]:
    url = f"{world.url}/api/query" + (f"?{raw}" if raw else "")
    response = requests.get(url, params=params or None, timeout=5)
    return response.status_code, etree.fromstring(response.content)


def _ids(feed: etree._Element) -> list[str]:
    return [e.findtext(f"{ATOM}id").rsplit("/", 1)[1] for e in feed.iter(f"{ATOM}entry")]


def test_category_and_date_window_select_exactly_the_days_papers(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY3 + (tiny_scenario.DAY2 - tiny_scenario.DAY1))
    # As a client URL-encodes it: spaces as '+', the literal query joined by +AND+.
    status, feed = _query(
        tiny,
        "search_query=cat:cs.CL+AND+submittedDate:[202611030000+TO+202611040000]"
        "&sortBy=submittedDate&sortOrder=ascending",
    )
    assert status == 200
    # Day 2: paper 5 (cs.CL) and paper 6 (cs.LG cross-listed to cs.CL); v2 of 5 is on day 3.
    assert _ids(feed) == ["2611.00005v2", "2611.00006v1"]
    status, feed = _query(
        tiny,
        search_query="(cat:cs.CL OR cat:cs.LG) AND submittedDate:[202611020000 TO 202611030000]",
        sortBy="submittedDate",
        sortOrder="descending",
    )
    assert _ids(feed) == ["2611.00003v1", "2611.00002v1", "2611.00001v1"]
    assert feed.findtext(f"{OS}totalResults") == "3"


def test_future_papers_and_updates_are_invisible(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2 + (tiny_scenario.DAY2 - tiny_scenario.DAY1) / 2)
    _, feed = _query(tiny, search_query="cat:cs.CL", sortBy="submittedDate")
    # Paper 5 shows as v1 (its v2 comes on day 3); 6 is cross-listed to cs.CL.
    assert _ids(feed) == ["2611.00006v1", "2611.00005v1", "2611.00002v1", "2611.00001v1"]
    _, by_id = _query(tiny, id_list="2611.00007,2611.00005v2")
    assert _ids(by_id) == []  # 7 is not submitted yet; v2 of 5 does not exist yet


def test_paging_with_start_and_max_results_reports_totals(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY3 + (tiny_scenario.DAY2 - tiny_scenario.DAY1))
    every = []
    for start in range(0, 10, 2):
        _, feed = _query(
            tiny, search_query="cat:cs", start=start, max_results=2, sortBy="submittedDate"
        )
        assert feed.findtext(f"{OS}totalResults") == "6"
        assert feed.findtext(f"{OS}startIndex") == str(start)
        assert feed.findtext(f"{OS}itemsPerPage") == "2"
        every += _ids(feed)
    assert len(every) == len(set(every)) == 6
    assert "2611.00004v1" not in every  # math.ST only


def test_id_list_keeps_order_and_filters_with_a_query(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY3)
    _, feed = _query(tiny, id_list="2611.00003,2611.00001")
    assert _ids(feed) == ["2611.00003v1", "2611.00001v1"]
    _, feed = _query(tiny, id_list="2611.00003,2611.00001", search_query="cat:cs.CL")
    assert _ids(feed) == ["2611.00001v1"]


def test_text_fields_and_bare_words(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY3 + (tiny_scenario.DAY2 - tiny_scenario.DAY1))
    _, feed = _query(tiny, search_query='ti:"tide-locked"')
    assert _ids(feed) == ["2611.00005v2"]
    _, feed = _query(tiny, search_query="slang")
    assert _ids(feed) == ["2611.00005v2"]
    assert "search_query=all:slang" in feed.findtext(f"{ATOM}title")
    _, feed = _query(tiny, search_query="au:turing ANDNOT cat:cs.LG", sortBy="submittedDate")
    assert _ids(feed) == ["2611.00007v1", "2611.00005v2", "2611.00004v1", "2611.00001v1"]


def test_max_results_is_capped_like_arxiv(tiny: WorldServer) -> None:
    _, feed = _query(tiny, search_query="cat:cs.CL", max_results=50000)
    assert feed.findtext(f"{OS}itemsPerPage") == "2000"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"id_list": "abc"}, "incorrect id format for abc"),
        ({"search_query": "cat:cs.CL", "start": "x"}, "start must be an integer, got 'x'"),
        ({"search_query": "cat:cs.CL", "max_results": "-1"}, "max_results must be non-negative"),
        ({"search_query": "cat:cs.CL", "sortBy": "date"}, "sortBy must be one of"),
        ({"search_query": "cat:cs.CL", "sortOrder": "up"}, "sortOrder must be one of"),
        ({"search_query": "(cat:cs.CL"}, "unbalanced parentheses"),
        ({"search_query": "cat:cs.CL AND"}, "ends where a term was expected"),
        ({"search_query": "submittedDate:[2026 TO 2027]"}, "must have 8, 12 or 14 digits"),
        ({"search_query": "submittedDate:202611"}, "needs [YYYYMMDDHHMM TO YYYYMMDDHHMM]"),
        ({"search_query": "submittedDate:[202613010000 TO 202614010000]"}, "is not a date"),
        ({"search_query": "foo:bar"}, "unknown search_query field 'foo'"),
        ({}, "search_query or id_list is required"),
    ],
)
def test_invalid_input_answers_400_with_an_error_feed(
    tiny: WorldServer, params: dict[str, str], message: str
) -> None:
    status, feed = _query(tiny, **params) if params else _query(tiny, "")
    assert status == 400
    entry = feed.find(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == "Error"
    assert message in entry.findtext(f"{ATOM}summary")
    assert "/api/errors#" in entry.findtext(f"{ATOM}id")
