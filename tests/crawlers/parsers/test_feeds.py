"""Feed parsing on every real recorded feed, and on hostile or broken feeds."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from crawlers.parsers.feeds import FeedError, parse_date, parse_feed
from tests.crawlers.conftest import REAL

FEEDS = sorted((REAL / "rss").iterdir())
# Entry counts stated in PROVENANCE.md for the feeds that state one.
STATED_COUNTS = {
    "rss-parser__guardian.rss": 55,
    "rss-parser__encoding_jn_pt_iso-8859-1.rss": 40,
    "rss-parser__uolNoticias.rss": 15,
    "rss-parser__heise.atom": 15,
    "rss-parser__transfermarkt_itunes-href.rss": 10,
    "feedjira__TechCrunch.xml": 20,
    "feedjira__HuffPostCanada.xml": 2,
    "feedjira__google_alerts_atom.xml": 20,
    "feed-rs__rss_2.0_invalid_1_reuters.xml": 0,
    "feed-rs__rss_2.0_ilgiornale.xml": 1,
    "feed-rs__rss_2.0_encoding_1_inovacaotecnologica.xml": 1,
    "miniflux__rdf_UTF8_heise.xml": 60,
}


def raw_entry_count(data: bytes) -> int:
    """Item/entry start tags counted on the raw bytes, independently of the parser."""
    return len(re.findall(rb"<(?:item|entry)[\s>]", data))


def test_every_recorded_feed_is_covered():
    assert {f.name for f in FEEDS} == set(STATED_COUNTS)


@pytest.mark.parametrize("path", FEEDS, ids=lambda p: p.name)
def test_every_entry_of_every_real_feed_is_extracted_with_its_fields(path):
    data = path.read_bytes()
    feed = parse_feed(data, base_url="https://feeds.example/")
    assert len(feed.entries) == raw_entry_count(data) == STATED_COUNTS[path.name]
    assert [p for p in feed.problems if p.reason != "bad_date"] == []
    for entry in feed.entries:
        assert entry.guid
        assert entry.url and entry.url.startswith(("http://", "https://"))
        assert entry.title
        assert entry.published is None or entry.published.tzinfo is not None
        assert "<p>" not in (entry.summary or "")  # HTML summaries come out as text


def test_rss_fields_guardian():
    feed = parse_feed((REAL / "rss" / "rss-parser__guardian.rss").read_bytes())
    first = feed.entries[0]
    assert feed.format == "rss"
    assert first.title.startswith("Trump State of the Union address promise")
    assert first.author == "David Smith in Washington"
    assert first.published == datetime(2018, 1, 31, 7, 26, 5, tzinfo=UTC)
    assert first.url.startswith("https://www.theguardian.com/us-news/2018/jan/31/")
    assert first.categories


def test_atom_fields_heise_with_offset_dates():
    feed = parse_feed((REAL / "rss" / "rss-parser__heise.atom").read_bytes())
    assert feed.format == "atom"
    first = feed.entries[0]
    assert first.title.startswith("Java-Anwendungsserver: Red Hat gibt Wild")
    # 17:22+01:00 in the file.
    assert first.published == datetime(2016, 2, 1, 16, 22, tzinfo=UTC)
    assert any("ü" in (e.title + e.summary) for e in feed.entries)  # umlauts intact


def test_rss_09_rdf_heise():
    feed = parse_feed((REAL / "rss" / "miniflux__rdf_UTF8_heise.xml").read_bytes())
    assert feed.format == "rdf"
    assert feed.entries[0].title.startswith("OLED-TVs: Vorsichtsmaßnahmen")


def test_google_alerts_html_titles_become_text():
    feed = parse_feed((REAL / "rss" / "feedjira__google_alerts_atom.xml").read_bytes())
    assert all("<b>" not in e.title for e in feed.entries)
    assert feed.entries[0].published == datetime(2019, 7, 10, 11, 53, 37, tzinfo=UTC)


def test_leading_blank_line_before_the_declaration_techcrunch():
    data = (REAL / "rss" / "feedjira__TechCrunch.xml").read_bytes()
    assert data.startswith(b"\n")
    feed = parse_feed(data)
    assert feed.error is None
    assert feed.entries[0].title.startswith("Angie’s List Sets Price Range IPO")  # &#8217;
    assert feed.entries[0].author == "Leena Rao"


def test_latin1_without_declaration_uol():
    data = (REAL / "rss" / "rss-parser__uolNoticias.rss").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    feed = parse_feed(data)
    assert feed.error is None
    assert any("Latin-1" in note for note in feed.notes)
    assert "Últimas Notícias" in data.decode("latin-1")
    # Portuguese day and month names ("Seg, 24 Set 2018 19:18:49 -0300") are read.
    assert all(e.published is not None for e in feed.entries)
    assert feed.entries[0].published.date().isoformat() == "2018-09-24"


def test_declared_iso_8859_1_is_honoured():
    feed = parse_feed((REAL / "rss" / "rss-parser__encoding_jn_pt_iso-8859-1.rss").read_bytes())
    assert feed.entries[0].title.startswith("Mãe de utente")


def test_truncated_reuters_feed_is_recovered_with_an_error():
    feed = parse_feed((REAL / "rss" / "feed-rs__rss_2.0_invalid_1_reuters.xml").read_bytes())
    assert feed.recovered
    assert "Premature end of data" in feed.error
    assert feed.title is not None and "Reuters" in feed.title
    assert feed.entries == []


def test_truncated_mid_item_keeps_the_complete_items():
    whole = (REAL / "rss" / "rss-parser__guardian.rss").read_bytes()
    cut = whole[: whole.index(b"<item>", whole.index(b"<item>") + 100) + 40]
    feed = parse_feed(cut)
    assert feed.recovered
    assert len(feed.entries) >= 1
    assert feed.entries[0].title.startswith("Trump State of the Union")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>Laughs</title>
<item><title>Safe item</title><link>https://a.example/1</link></item>
<item><title>&lol9;</title><link>https://a.example/2</link></item>
</channel></rss>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>XXE</title>
<item><title>Before &xxe; after</title><link>https://a.example/1</link>
<description>&xxe;</description></item></channel></rss>"""


def test_billion_laughs_is_not_expanded():
    started = time.perf_counter()
    feed = parse_feed(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1.0
    text = " ".join(f"{e.title} {e.summary}" for e in feed.entries)
    assert "lollol" not in text
    assert len(text) < 1000
    assert feed.error is not None or any("entit" in n for n in feed.notes)


def test_external_entities_are_never_resolved():
    feed = parse_feed(XXE)
    assert len(feed.entries) == 1
    entry = feed.entries[0]
    assert "root:" not in entry.title + entry.summary
    assert entry.title == "Before after"
    assert any("entit" in n for n in feed.notes)


def test_unusable_entries_are_reported_not_dropped():
    data = b"""<rss version="2.0"><channel><title>t</title>
    <item><title>No link or guid</title></item>
    <item><link>https://a.example/empty</link></item>
    <item><title>Bad date</title><link>https://a.example/ok</link><pubDate>someday</pubDate></item>
    </channel></rss>"""
    feed = parse_feed(data)
    assert [e.url for e in feed.entries] == ["https://a.example/ok"]
    assert feed.entries[0].published is None
    assert sorted(p.reason for p in feed.problems) == ["bad_date", "no_identity", "no_text"]
    assert all(p.raw.startswith("<item") for p in feed.problems)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"   ", b"\x00\xff\xfe garbage \x89PNG", b"<html><body>Not a feed</body></html>", b"{}"],
)
def test_garbage_raises_a_clear_feed_error(garbage):
    with pytest.raises(FeedError, match="feed"):
        parse_feed(garbage)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Wed, 02 Nov 2011 12:57:36 +0000", datetime(2011, 11, 2, 12, 57, 36, tzinfo=UTC)),
        ("Tue, 15 Nov 2022 20:15:04 Z", datetime(2022, 11, 15, 20, 15, 4, tzinfo=UTC)),
        ("Seg, 24 Set 2018 19:18:49 -0300", datetime(2018, 9, 24, 22, 18, 49, tzinfo=UTC)),
        ("Mo, 03 Dez 2018 10:00:00 CET", datetime(2018, 12, 3, 9, 0, tzinfo=UTC)),
        ("2016-01-28T17:07:00+01:00", datetime(2016, 1, 28, 16, 7, tzinfo=UTC)),
        ("2018-01-30T10:00:13Z", datetime(2018, 1, 30, 10, 0, 13, tzinfo=UTC)),
        ("2018-01-30", datetime(2018, 1, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_dates(raw, expected):
    assert parse_date(raw) == expected
