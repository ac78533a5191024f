"""arXiv Atom parsing on every recorded API response, both formats, and the golden files."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from crawlers.parsers.arxiv import ArxivApiError, parse_arxiv_feed
from tests.crawlers.conftest import REAL

ARXIV = REAL / "arxiv"
XMLS = sorted(ARXIV.glob("*.xml"))
GOLDEN = sorted((ARXIV / "arxiv.py-golden").glob("*.json"))
ERROR_FEEDS = {"arxiv.py__id_abc_s0_m100_b79c8dcf6bc3.xml"}


def raw_entries(data: bytes) -> int:
    return len(re.findall(rb"<entry>", data))


@pytest.mark.parametrize("path", XMLS, ids=lambda p: p.name)
def test_every_recorded_response_parses_to_its_entries(path):
    data = path.read_bytes()
    if path.name in ERROR_FEEDS:
        with pytest.raises(ArxivApiError, match="incorrect id format for abc"):
            parse_arxiv_feed(data)
        return
    page = parse_arxiv_feed(data)
    assert len(page.papers) == raw_entries(data)
    assert page.total_results is not None and page.start_index is not None
    for paper in page.papers:
        assert re.fullmatch(r"\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7}", paper.arxiv_id)
        assert paper.version is not None and paper.version >= 1
        assert paper.title and paper.abstract and paper.authors
        assert "\n" not in paper.title and "  " not in paper.abstract
        assert paper.primary_category == paper.categories[0]
        assert paper.published.tzinfo is not None
        assert paper.url.startswith("http")


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.name)
def test_golden_responses_match_their_request_and_xml(golden):
    """The golden files are arxiv.py's recordings ``{url, status_code, body}``: the XML is
    their body, and the parse must agree with the request they answer."""
    recorded = json.loads(golden.read_text())
    body = recorded["body"].encode("latin-1")
    assert body == (ARXIV / f"arxiv.py__{golden.stem}.xml").read_bytes()
    query = parse_qs(urlsplit(recorded["url"]).query)
    if recorded["status_code"] != 200:
        with pytest.raises(ArxivApiError):
            parse_arxiv_feed(body)
        return
    page = parse_arxiv_feed(body)
    assert page.start_index == int(query["start"][0])
    assert page.items_per_page == int(query["max_results"][0])
    assert len(page.papers) <= page.items_per_page
    wanted = [i for i in query.get("id_list", [""])[0].split(",") if i]
    if wanted:
        bare = {re.sub(r"v\d+$", "", i) for i in wanted}
        assert {p.arxiv_id for p in page.papers} <= bare
    else:
        assert page.total_results == 214881


def test_single_entry_fields_new_format():
    page = parse_arxiv_feed(
        (ARXIV / "arxiv.py__id_1605.08386_s0_m100_199195aa31ad.xml").read_bytes()
    )
    (paper,) = page.papers
    assert paper.arxiv_id == "1605.08386" and paper.version == 1
    assert paper.title == "Heat-bath random walks with Markov bases"
    assert paper.authors == ("Caprice Stanley", "Tobias Windisch")
    assert paper.categories == ("math.CO", "math.ST")
    assert paper.comment == "20 pages, 3 figures"
    assert paper.published == datetime(2016, 5, 26, 17, 59, 46, tzinfo=UTC)


def test_title_zero_is_kept():
    page = parse_arxiv_feed(
        (ARXIV / "arxiv.py__id_2104.12255v1_s0_m100_6ae69987ffe1.xml").read_bytes()
    )
    assert page.papers[0].title == "0"


def test_old_style_ids_and_non_ascii_authors():
    old = parse_arxiv_feed(
        (ARXIV / "arxiv.py__id_astro-ph_0601001_s0_m100_3150dca9dc76.xml").read_bytes()
    )
    assert old.papers[0].arxiv_id == "astro-ph/0601001"
    assert old.papers[0].journal_ref
    many = parse_arxiv_feed(
        (ARXIV / "arxiv.py__id_1707.08567_s0_m100_6a1afebfc6a3.xml").read_bytes()
    )
    assert len(many.papers[0].authors) == 34
    assert any("Wübben" in a for a in many.papers[0].authors)


def test_legacy_format_unwraps_title_and_abstract():
    page = parse_arxiv_feed((ARXIV / "pubs__id_list_1710.08557_2019.xml").read_bytes())
    (paper,) = page.papers
    assert paper.title == (
        "On Neuromechanical Approaches for the Study of Biological Grasp and Manipulation"
    )
    assert paper.abstract.startswith("Biological and robotic grasp and manipulation are")
    assert "\n" not in paper.abstract
    assert paper.doi == "10.1186/s12984-017-0305-3"
    assert paper.journal_ref == "Journal of NeuroEngineering and Rehabilitation, 2017"
    assert paper.primary_category == "cs.RO"
    assert page.total_results == 1 and page.items_per_page == 10


def test_zero_results_and_dois():
    empty = parse_arxiv_feed(
        (ARXIV / "arxiv.py__id_0000.0000_s0_m100_8b51d9633a68.xml").read_bytes()
    )
    assert empty.total_results == 0 and empty.papers == []
    search = parse_arxiv_feed((ARXIV / "arxiv.py__q_testing_s0_m100_cfe7536492ca.xml").read_bytes())
    assert sum(1 for p in search.papers if p.doi) == 32


@pytest.mark.parametrize("garbage", [b"", b"not xml", b"<html><body>502</body></html>"])
def test_garbage_is_a_clear_error(garbage):
    with pytest.raises(ArxivApiError):
        parse_arxiv_feed(garbage)
