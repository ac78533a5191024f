"""The world's wire formats compared with real recorded responses (``tests/fixtures/real``).

How the comparison works:

* JSON (Mastodon): every key a real entity has must be in ours, ours has no key the real
  server never sends, and each of our values has a JSON type the real samples have for that
  key (null is also allowed where Mastodon documents the key as nullable). Strings whose real
  values all share a format (ISO time with milliseconds, date, decimal id, URL) must have it
  in ours too. Nested entities (account, reblog, mentions, tags) are compared recursively.
  The real samples are the anonymous public timeline plus a boost, a reply and a hashtag
  timeline (those were fetched with a token, so viewer-only keys such as ``favourited`` are
  dropped from them).
* XML (arXiv, RSS, Atom): the element names (with namespaces) that every real entry/item has
  must be in each of ours; ours must not use elements the real responses never use; root
  namespaces, link/category attributes and date formats must match.
* Headers: ``Link`` and ``X-RateLimit-*`` must match the shapes in the recorded cassette.
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from lxml import etree

from sandbox.server import WorldServer
from tests.sandbox import tiny_scenario

# Real recorded responses, copied from the project's shared fixture set with their provenance
# (tests/fixtures/real/PROVENANCE.md), so this comparison never depends on a folder outside
# the repository.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real"

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
VIEWER_KEYS = {"favourited", "reblogged", "muted", "bookmarked", "pinned", "filtered"}
# Keys Mastodon's API documentation marks nullable (a sample may just not show the null).
NULLABLE = {
    "in_reply_to_id",
    "in_reply_to_account_id",
    "language",
    "edited_at",
    "reblog",
    "application",
    "poll",
    "card",
    "quote",
    "url",
    "last_status_at",
    "hide_collections",
    "discoverable",
    "website",
}
STRING_FORMATS = {
    "iso-millis": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"),
    "date": re.compile(r"\d{4}-\d\d-\d\d"),
    "decimal-id": re.compile(r"\d+"),
    "url": re.compile(r"https?://\S+"),
}


# --- JSON structure ----------------------------------------------------------------------------


def _type(value: Any) -> str:
    return {
        type(None): "null",
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        list: "list",
        dict: "object",
    }[type(value)]


class Shape:
    """What real samples of one entity look like: keys, value types, formats, nested shapes."""

    def __init__(self, samples: list[dict[str, Any]], required: set[str] | None = None):
        self.keys = set().union(*(s.keys() for s in samples)) - VIEWER_KEYS
        self.required = required if required is not None else self.keys
        self.types: dict[str, set[str]] = {}
        self.values: dict[str, list[Any]] = {}
        for sample in samples:
            for key, value in sample.items():
                self.types.setdefault(key, set()).add(_type(value))
                self.values.setdefault(key, []).append(value)

    def format_of(self, key: str) -> str | None:
        strings = [v for v in self.values.get(key, []) if isinstance(v, str) and v]
        if not strings:
            return None
        for name, pattern in STRING_FORMATS.items():
            if all(pattern.fullmatch(v) for v in strings):
                return name
        return None

    def problems(self, ours: dict[str, Any], where: str) -> list[str]:
        found = []
        missing = self.required - ours.keys()
        extra = ours.keys() - self.keys
        if missing:
            found.append(f"{where}: missing keys {sorted(missing)}")
        if extra:
            found.append(f"{where}: keys the real server never sends {sorted(extra)}")
        for key in ours.keys() & self.keys:
            allowed = set(self.types[key]) | ({"null"} if key in NULLABLE else set())
            if _type(ours[key]) not in allowed:
                found.append(f"{where}.{key}: {_type(ours[key])}, real has {sorted(allowed)}")
            fmt = self.format_of(key)
            value = ours[key]
            if (
                fmt
                and isinstance(value, str)
                and value
                and not STRING_FORMATS[fmt].fullmatch(value)
            ):
                found.append(f"{where}.{key}: {ours[key]!r} is not {fmt} like the real one")
        return found


def _mastodon_json(name: str) -> Any:
    return json.loads((FIXTURES / "mastodon" / "json" / name).read_text())


@pytest.fixture(scope="module")
def real_statuses() -> list[dict[str, Any]]:
    public = _mastodon_json("test_public_tl_anonymous__02_GET_v1_timelines_public_200.json")
    boost = _mastodon_json("test_status_reblog_unreblog__01_POST_v1_statuses_ID_reblog_200.json")
    hashtag = _mastodon_json("test_hashtag_tl__02_GET_v1_timelines_tag_hoot_200.json")
    reply = _mastodon_json("test_status_reply__02_POST_v1_statuses_200.json")
    return [*public, boost, boost["reblog"], reply, *hashtag]


def _status_problems(ours: dict, real: list[dict], where: str) -> list[str]:
    anonymous_keys = set(real[0])  # the anonymous public timeline's keys: all must be present
    found = Shape(real, anonymous_keys).problems(ours, where)
    accounts = [s["account"] for s in real]
    found += Shape(accounts).problems(ours["account"], f"{where}.account")
    for nested in ("quote_approval",):
        found += Shape([s[nested] for s in real]).problems(ours[nested], f"{where}.{nested}")
    found += Shape([a["feature_approval"] for a in accounts]).problems(
        ours["account"]["feature_approval"], f"{where}.account.feature_approval"
    )
    mentions = [m for s in real for m in s["mentions"]]
    tags = [t for s in real for t in s["tags"]]
    for i, mention in enumerate(ours["mentions"]):
        found += Shape(mentions).problems(mention, f"{where}.mentions[{i}]")
    for i, tag in enumerate(ours["tags"]):
        found += Shape(tags).problems(tag, f"{where}.tags[{i}]")
    if ours["application"] is not None:
        apps = [s["application"] for s in real if s["application"]]
        found += Shape(apps).problems(ours["application"], f"{where}.application")
    if ours["reblog"] is not None:
        found += _status_problems(ours["reblog"], real, f"{where}.reblog")
    return found


def test_mastodon_statuses_have_the_real_keys_and_types(
    tiny: WorldServer, real_statuses: list[dict[str, Any]]
) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    ours = requests.get(f"{tiny.url}/api/v1/timelines/public?limit=40", timeout=5).json()
    bob = tiny.scenario.account("bob")
    ours += requests.get(f"{tiny.url}/api/v1/accounts/{bob.id}/statuses", timeout=5).json()
    kinds = {
        "mention": any(s["mentions"] for s in ours),
        "tag": any(s["tags"] for s in ours),
        "boost": any(s["reblog"] for s in ours),
        "reply": any(s["in_reply_to_id"] for s in ours),
        "edited": any(s["edited_at"] for s in ours),
        "remote": any("@" in s["account"]["acct"] for s in ours),
    }
    assert all(kinds.values()), kinds  # the sample covers every kind of status
    problems = [p for i, s in enumerate(ours) for p in _status_problems(s, real_statuses, f"[{i}]")]
    assert problems == []


def test_mastodon_account_lookup_matches_real_account(tiny: WorldServer) -> None:
    real = _mastodon_json("test_account_lookup__02_GET_v1_accounts_lookup_200.json")
    real_public = _mastodon_json("test_public_tl_anonymous__02_GET_v1_timelines_public_200.json")
    ours = requests.get(f"{tiny.url}/api/v1/accounts/lookup?acct=alice", timeout=5).json()
    # The lookup fixture was fetched with a token: compare with the keys anonymous calls get.
    shape = Shape([s["account"] for s in real_public] + [real], set(real_public[0]["account"]))
    assert shape.problems(ours, "account") == []


def _cassette_response(cassette: str, uri_part: str) -> dict[str, Any]:
    data = yaml.safe_load((FIXTURES / "mastodon" / "cassettes" / cassette).read_text())
    for interaction in data["interactions"]:
        if uri_part in interaction["request"]["uri"]:
            return interaction["response"]
    raise AssertionError(f"{uri_part} not in {cassette}")


LINK = re.compile(
    r'<(?P<next>https?://[^>]+\?(?:[^>]*&)?max_id=\d+[^>]*)>; rel="next", '
    r'<(?P<prev>https?://[^>]+\?(?:[^>]*&)?min_id=\d+[^>]*)>; rel="prev"'
)


def test_mastodon_headers_match_the_recorded_ones(tiny: WorldServer) -> None:
    real = _cassette_response("test_public_tl_anonymous.yaml", "/api/v1/timelines/public")
    real_headers = {k.lower(): v[0] for k, v in real["headers"].items()}
    tiny.clock.set(tiny_scenario.DAY2)
    ours = requests.get(f"{tiny.url}/api/v1/timelines/public", timeout=5)
    for name in ("link",):
        assert LINK.fullmatch(real_headers[name]), real_headers[name]
        assert LINK.fullmatch(ours.headers[name]), ours.headers[name]
    real_next = LINK.fullmatch(real_headers["link"])["next"]
    ours_next = LINK.fullmatch(ours.headers["link"])["next"]
    assert real_next.split("?")[0].endswith("/api/v1/timelines/public")
    assert ours_next.split("?")[0] == f"{tiny.url}/api/v1/timelines/public"
    assert ours.json()[-1]["id"] in ours_next  # next = the page's oldest id, like the real one
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining"):
        assert real_headers[name].isdigit() and ours.headers[name].isdigit()
    reset = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
    assert reset.fullmatch(real_headers["x-ratelimit-reset"])
    assert reset.fullmatch(ours.headers["x-ratelimit-reset"])
    assert ours.headers["content-type"] == real_headers["content-type"]


# --- XML structure -----------------------------------------------------------------------------


def _entries_tags(root: etree._Element, entry_tag: str) -> list[set[str]]:
    return [{c.tag for c in entry if isinstance(c.tag, str)} for entry in root.iter(entry_tag)]


def _real_arxiv(name: str) -> etree._Element:
    return etree.fromstring((FIXTURES / "arxiv" / name).read_bytes())


def test_arxiv_entries_have_the_real_elements_and_namespaces(tiny: WorldServer) -> None:
    real = _real_arxiv("arxiv.py__q_testing_s0_m100_cfe7536492ca.xml")
    real_entries = _entries_tags(real, f"{ATOM}entry")
    always = set.intersection(*real_entries)
    ever = set.union(*real_entries)
    tiny.clock.set(tiny_scenario.DAY3)
    response = requests.get(
        f"{tiny.url}/api/query", params={"search_query": "cat:cs.CL", "max_results": 50}, timeout=5
    )
    ours = etree.fromstring(response.content)
    assert response.headers["content-type"].startswith("application/atom+xml")
    assert ours.nsmap == real.nsmap
    our_entries = _entries_tags(ours, f"{ATOM}entry")
    assert our_entries
    for tags in our_entries:
        assert always <= tags, always - tags
        assert tags <= ever, tags - ever
    # The paper with comment, journal ref and DOI renders all of arXiv's optional elements.
    assert {f"{ARXIV}comment", f"{ARXIV}journal_ref", f"{ARXIV}doi"} <= set.union(*our_entries)
    feed_children = lambda root: {c.tag for c in root if c.tag != f"{ATOM}entry"}  # noqa: E731
    assert feed_children(ours) == feed_children(real)

    def link_kinds(root):
        return {
            (link.get("rel"), link.get("type"), link.get("title"))
            for link in root.iter(f"{ATOM}link")
            if link.getparent().tag == f"{ATOM}entry"
        }

    assert link_kinds(ours) <= link_kinds(real)
    assert {c.get("scheme") for c in ours.iter(f"{ATOM}category")} == {
        c.get("scheme") for c in real.iter(f"{ATOM}category")
    }
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    for tag in ("published", "updated"):
        assert all(stamp.fullmatch(e.text) for e in ours.iter(f"{ATOM}{tag}"))
        assert all(stamp.fullmatch(e.text) for e in real.iter(f"{ATOM}{tag}"))


def _shape(root: etree._Element) -> list[tuple[str, tuple[str, ...]]]:
    return [(e.tag, tuple(sorted(e.attrib))) for e in root.iter() if isinstance(e.tag, str)]


def test_arxiv_error_feed_matches_the_real_one(tiny: WorldServer) -> None:
    real_body = _real_arxiv("arxiv.py__id_abc_s0_m100_b79c8dcf6bc3.xml")
    golden = json.loads(
        (FIXTURES / "arxiv" / "arxiv.py-golden" / "id_abc_s0_m100_b79c8dcf6bc3.json").read_text()
    )
    response = requests.get(f"{tiny.url}/api/query", params={"id_list": "abc"}, timeout=5)
    assert response.status_code == golden["status_code"] == 400
    ours = etree.fromstring(response.content)
    assert _shape(ours) == _shape(real_body)
    assert ours.findtext(f"{ATOM}entry/{ATOM}summary") == real_body.findtext(
        f"{ATOM}entry/{ATOM}summary"
    )


def test_arxiv_empty_result_matches_the_real_one(tiny: WorldServer) -> None:
    real = _real_arxiv("arxiv.py__id_0000.0000_s0_m100_8b51d9633a68.xml")
    response = requests.get(
        f"{tiny.url}/api/query", params={"id_list": "0000.0000", "max_results": 100}, timeout=5
    )
    ours = etree.fromstring(response.content)
    assert _shape(ours) == _shape(real)
    assert ours.findtext(f"{ATOM}title") == real.findtext(f"{ATOM}title")


def _real_feed(name: str) -> etree._Element:
    # TechCrunch's file starts with a blank line, which strict parsers reject; strip it here.
    return etree.fromstring((FIXTURES / "rss" / name).read_bytes().lstrip())


def test_rss_items_have_what_real_rss_items_have(tiny: WorldServer) -> None:
    real = [_real_feed("rss-parser__guardian.rss"), _real_feed("feedjira__TechCrunch.xml")]
    media = "{http://search.yahoo.com/mrss/}"
    always = set.intersection(*(t for r in real for t in _entries_tags(r, "item")))
    always = {t for t in always if not t.startswith(media)}  # the world has no images
    always.add("{http://purl.org/rss/1.0/modules/content/}encoded")  # WordPress-style body
    channel_always = set.intersection(
        *({c.tag for c in r.find("channel") if c.tag != "item"} for r in real)
    )
    tiny.clock.set(tiny_scenario.DAY2)
    ours = etree.fromstring(requests.get(f"{tiny.url}/news/feeds/all.rss", timeout=5).content)
    assert ours.tag == "rss" and ours.get("version") == real[0].get("version") == "2.0"
    assert channel_always <= {c.tag for c in ours.find("channel")}
    items = _entries_tags(ours, "item")
    assert len(items) == 4  # the archive story and the three published on day 1
    for tags in items:
        assert always <= tags, always - tags
    for root in (*real, ours):
        for pub in root.iter("pubDate"):
            assert parsedate_to_datetime(pub.text).tzinfo is not None


def test_atom_entries_have_what_real_atom_entries_have(tiny: WorldServer) -> None:
    real = [_real_feed("rss-parser__heise.atom"), _real_feed("feedjira__google_alerts_atom.xml")]
    always = set.intersection(*(t for r in real for t in _entries_tags(r, f"{ATOM}entry")))
    feed_always = set.intersection(*({c.tag for c in r if c.tag != f"{ATOM}entry"} for r in real))
    tiny.clock.set(tiny_scenario.DAY3)
    ours = etree.fromstring(requests.get(f"{tiny.url}/news/feeds/local.atom", timeout=5).content)
    assert ours.tag == f"{ATOM}feed"
    assert feed_always <= {c.tag for c in ours}
    entries = _entries_tags(ours, f"{ATOM}entry")
    assert len(entries) == 2
    for tags in entries:
        assert always <= tags, always - tags
        assert f"{ATOM}author" in tags and f"{ATOM}summary" in tags


def test_malformed_feed_breaks_like_the_real_reuters_failure(tiny: WorldServer) -> None:
    real = (FIXTURES / "rss" / "feed-rs__rss_2.0_invalid_1_reuters.xml").read_bytes()
    tiny.clock.set(tiny_scenario._at(tiny_scenario.DAY2, 12))  # day 2: tech.rss is broken
    ours = requests.get(f"{tiny.url}/news/feeds/tech.rss", timeout=5)
    assert ours.status_code == 200
    for body in (real, ours.content):
        with pytest.raises(etree.XMLSyntaxError):
            etree.fromstring(body.lstrip())
        assert b"<!-- Exception rendering module on server  -->" in body
    # The other feeds are fine that day; the tech feed stays broken through the night (the
    # nightly crawl sees it) and is fixed with the next day's first story.
    etree.fromstring(requests.get(f"{tiny.url}/news/feeds/all.rss", timeout=5).content)
    tiny.clock.set(tiny_scenario.DAY3)
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(requests.get(f"{tiny.url}/news/feeds/tech.rss", timeout=5).content)
    tiny.clock.set(tiny_scenario._at(tiny_scenario.DAY3, 9))
    etree.fromstring(requests.get(f"{tiny.url}/news/feeds/tech.rss", timeout=5).content)
