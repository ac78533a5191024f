"""Real ``scrapy crawl news`` runs against the sandbox world's news site."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from crawlers.pipelines import schema_problems

DAY1 = "2026-11-02T00:00:00Z"
DAY2 = "2026-11-03T00:00:00Z"
DAY3 = "2026-11-04T00:00:00Z"
GOOD_FEEDS = ("/news/feeds/all.rss", "/news/feeds/business.atom", "/news/feeds/local.rss")
TECH = "/news/feeds/tech.rss"


def post(world, path: str, payload) -> None:
    request = urllib.request.Request(
        world.url + path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request).read()


def world_log(world) -> list[dict]:
    return json.loads(urllib.request.urlopen(world.url + "/_world/requests").read())


def expected_articles(world, paths, start: str, end: str) -> set[str]:
    """URLs of the articles the world's feeds list that were published in [start, end)."""
    now = world.clock.now()
    low, high = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (start, end))
    feeds = [f for f in world.scenario.feeds if f.path in paths]
    return {
        world.news.url(world.news.article_path(a))
        for feed in feeds
        for a in world.news.feed_items(feed, now)
        if low <= a.published_at < high
    }


def test_incremental_crawl_conditional_get_and_the_next_day(world_at_start, crawl):
    world = world_at_start
    world.clock.set(world.parse_when(DAY2))  # the nightly run after day 1
    all_feeds = (*GOOD_FEEDS, TECH)
    feeds = ",".join(world.url + p for p in all_feeds)
    args = {"feeds": feeds, "window_start": DAY1, "window_end": DAY2, "source": "courier"}

    first = crawl("news", args)
    assert first.returncode == 0
    wanted = expected_articles(world, all_feeds, DAY1, DAY2)
    assert len(wanted) >= 5
    assert {r["url"] for r in first.records} == wanted
    assert len(first.records) == len(wanted) == first.stat("freshlm/records_valid")
    for record in first.records:
        assert schema_problems(record) == []
        assert record["kind"] == "news" and record["source"] == "courier"
        assert DAY1 <= record["published_at"] < DAY2
        assert record["meta"]["text_source"] == "article"
        assert record["author"] and record["title"]
        assert "Advertisement" not in record["text"] and "cookies" not in record["text"]
    assert first.quarantined == []
    log = world_log(world)
    assert {e["user_agent"] for e in log} == {first_agent(log)}
    assert first_agent(log).startswith("FreshLM/")
    assert any(e["path"] == "/robots.txt" for e in log)
    cursor = first.next_cursor
    assert set(cursor["validators"]) == {world.url + p for p in all_feeds}

    # Same window again with the saved cursor: conditional GETs, nothing fetched twice.
    clear_log(world)
    again = crawl("news", {**args, "cursor": json.dumps(cursor)})
    assert again.records == []
    statuses = {e["path"]: e["status"] for e in world_log(world)}
    assert all(statuses[p] == 304 for p in all_feeds)
    assert again.stat("freshlm/feeds/not_modified") == len(all_feeds)
    assert not any(p.endswith(".html") for p in statuses)

    # A day later (day 2, the bad batch: the tech feed is served truncated): only the new
    # day's articles; the broken feed is quarantined with the reason and the crawl goes on.
    world.clock.advance(days=1)
    clear_log(world)
    next_day = crawl(
        "news",
        {**args, "window_start": DAY2, "window_end": DAY3, "cursor": json.dumps(again.next_cursor)},
    )
    new = expected_articles(world, GOOD_FEEDS, DAY2, DAY3)
    assert new and {r["url"] for r in next_day.records} == new
    fetched = {e["path"] for e in world_log(world) if e["path"].endswith(".html")}
    assert fetched == {urlsplit(u).path for u in new}
    assert [q["reason"] for q in next_day.quarantined] == ["malformed_xml"]
    assert next_day.quarantined[0]["url"].endswith(TECH)
    assert "Exception rendering module" in next_day.quarantined[0]["raw"]
    assert next_day.stat("freshlm/quarantined/malformed_xml") == 1
    # The broken feed keeps no validators: the next run reads it in full again.
    assert world.url + TECH not in next_day.next_cursor["validators"]


def clear_log(world) -> None:
    urllib.request.urlopen(urllib.request.Request(world.url + "/_world/requests", method="DELETE"))


def first_agent(log: list[dict]) -> str:
    return log[0]["user_agent"]


RANDOM_GARBAGE = "\x00\x13\x7f ÿþ PK\x03\x04 garbage <<<>>> &&& ]]> \x1b[31m"


def custom_feed(world) -> str:
    """An RSS feed with one normal item, one on a robots-disallowed path, one on another host."""
    port = urlsplit(world.url).port
    article = world.news.article_path(world.scenario.articles[0])
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Custom</title><link>{world.url}/</link>
<item><title>Normal</title><link>{world.url}{article}</link>
  <pubDate>Mon, 02 Nov 2026 09:00:00 GMT</pubDate></item>
<item><title>Staff only</title><link>{world.url}/private/staff-memo.html</link>
  <description>Private memo text</description>
  <pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Elsewhere</title><link>http://localhost:{port}/news/offsite-only.html</link>
  <description>A summary from the feed itself.</description>
  <pubDate>Mon, 02 Nov 2026 11:00:00 GMT</pubDate></item>
</channel></rss>"""


def test_hostile_feeds_robots_offsite_garbage_oversize_and_timeouts(world_at_start, crawl):
    world = world_at_start
    world.clock.set(world.parse_when(DAY2))
    post(
        world,
        "/_world/faults",
        [
            {
                "path_prefix": "/feeds/custom.rss",
                "status": 200,
                "times": 5,
                "body": custom_feed(world),
                "content_type": "application/rss+xml",
            },
            {
                "path_prefix": "/feeds/garbage.rss",
                "status": 200,
                "times": 5,
                "body": RANDOM_GARBAGE,
                "content_type": "application/rss+xml",
            },
            {
                "path_prefix": "/feeds/huge.rss",
                "status": 200,
                "times": 5,
                "body": "<rss>" + "x" * 300_000,
                "content_type": "application/rss+xml",
            },
            {"path_prefix": "/feeds/slow.rss", "delay_s": 2.5, "times": 5},
        ],
    )
    feeds = ",".join(
        world.url + p
        for p in ("/feeds/custom.rss", "/feeds/garbage.rss", "/feeds/huge.rss", "/feeds/slow.rss")
    )
    result = crawl(
        "news",
        {"feeds": feeds, "window_start": DAY1, "window_end": DAY2},
        {"DOWNLOAD_MAXSIZE": "200000", "DOWNLOAD_TIMEOUT": "1", "RETRY_TIMES": "1"},
    )
    assert result.returncode == 0
    log = world_log(world)
    paths = [e["path"] for e in log]
    # robots.txt disallows /private/: never fetched, counted as skipped.
    assert "/private/staff-memo.html" not in paths
    assert result.stat("freshlm/skipped/robots_txt") == 1
    # The other host's link is not followed; the feed's own summary is kept instead.
    assert "/news/offsite-only.html" not in paths
    assert result.stat("freshlm/skipped/offsite_article") == 1
    by_title = {r["title"]: r for r in result.records}
    assert by_title["Elsewhere"]["meta"]["text_source"] == "feed"
    assert by_title["Elsewhere"]["text"] == "A summary from the feed itself."
    assert by_title["Normal"]["meta"]["text_source"] == "article"
    # Garbage and oversize: quarantined with the reason and counted; the timeout counted.
    reasons = sorted(q["reason"] for q in result.quarantined)
    assert reasons == ["not_a_feed", "too_large"]
    garbage = next(q for q in result.quarantined if q["reason"] == "not_a_feed")
    assert "garbage" in garbage["raw"]
    assert result.stat("freshlm/quarantined/not_a_feed") == 1
    assert result.stat("freshlm/errors/too_large") == 1
    assert result.stat("freshlm/errors/timeout") == 1
    # The slow feed: retried once (RETRY_TIMES=1), then given up: bounded.
    assert result.stat("retry/count") == 1
    assert result.stat("retry/max_reached") == 1


def test_5xx_then_success_and_429_with_retry_after(world_at_start, crawl):
    world = world_at_start
    world.clock.set(world.parse_when(DAY2))
    post(
        world,
        "/_world/faults",
        [
            {"path_prefix": "/news/feeds/local.rss", "status": 503, "times": 2},
            {
                "path_prefix": "/news/feeds/business.atom",
                "status": 429,
                "times": 1,
                "retry_after": 2,
            },
        ],
    )
    feeds = f"{world.url}/news/feeds/local.rss,{world.url}/news/feeds/business.atom"
    result = crawl("news", {"feeds": feeds, "window_start": DAY1, "window_end": DAY2})
    wanted = expected_articles(
        world, ("/news/feeds/local.rss", "/news/feeds/business.atom"), DAY1, DAY2
    )
    assert {r["url"] for r in result.records} == wanted
    assert result.stat("retry/count") == 3
    assert result.stat("freshlm/retry_after") == 1
    hits = [e for e in world_log(world) if e["path"] == "/news/feeds/business.atom"]
    assert [e["status"] for e in hits] == [429, 200]
    waited = datetime.fromisoformat(hits[1]["at"]) - datetime.fromisoformat(hits[0]["at"])
    assert waited >= timedelta(seconds=2)
    local = [e["status"] for e in world_log(world) if e["path"] == "/news/feeds/local.rss"]
    assert local == [503, 503, 200]


def test_unreachable_source_is_fatal_with_a_clear_message(crawl, tmp_path):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = crawl(
        "news",
        {"feeds": f"http://127.0.0.1:{port}/feed.rss", "source": "gone"},
        {"RETRY_TIMES": "0"},
    )
    assert result.records == []
    assert result.stat("freshlm/errors/connection_refused") == 1
    assert "source 'gone' unreachable: no request succeeded" in result.log
    assert f"connection refused by http://127.0.0.1:{port}/feed.rss" in result.log
