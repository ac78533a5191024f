"""Differential test: FreshLM's feed parser against feedparser, the long-standing reference, over
every real recorded feed (``tests/fixtures/real/rss/``, provenance in its PROVENANCE.md).

For each feed FreshLM must find every entry feedparser finds (matched by link, else id), with
the same publication time where both read one; or, where it finds fewer, say why (the document
recovered as not well-formed, or each missing entry quarantined with its reason).
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from crawlers.parsers.feeds import FeedError, parse_feed

FEEDS = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "rss"
FILES = sorted(p for p in FEEDS.iterdir() if p.suffix in {".xml", ".rss", ".atom"})


def reference(data: bytes) -> dict[str, datetime | None]:
    """feedparser's entries: identity (link, else id) -> publication time (UTC) or None."""
    entries = {}
    for entry in feedparser.parse(data).entries:
        key = entry.get("link") or entry.get("id")
        # dict.get: feedparser's own get() maps updated to published, with a warning.
        stamp = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
        entries[key] = (
            datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp is not None else None
        )
    return entries


def test_every_real_feed_is_compared() -> None:
    assert len(FILES) >= 12, [p.name for p in FILES]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_freshlm_finds_what_feedparser_finds_or_says_why(path: Path) -> None:
    data = path.read_bytes()
    expected = reference(data)
    try:
        feed = parse_feed(data)
    except FeedError as exc:
        pytest.fail(f"{path.name}: feedparser finds {len(expected)} entries, FreshLM: {exc}")
    ours = {entry.url or entry.guid: entry for entry in feed.entries}
    missing = [key for key in expected if key not in ours]
    if missing:
        # Fewer entries is acceptable only with a reason: each one quarantined, or the
        # document recovered as not well-formed (quarantined as malformed_xml by the spider).
        explained = len(feed.problems) >= len(missing) or feed.error is not None
        assert explained, f"{path.name}: FreshLM misses {missing[:5]} without a reason"
    for key, published in expected.items():
        if key in ours and published is not None and ours[key].published is not None:
            assert ours[key].published == published, f"{path.name}: {key}"
