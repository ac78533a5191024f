"""Real ``scrapy crawl mastodon`` runs against the sandbox world's Mastodon instance."""

from __future__ import annotations

import json
from datetime import datetime

from crawlers.pipelines import schema_problems
from sandbox.mastodon_api import RateLimit
from sandbox.server import WorldServer
from tests.sandbox import tiny_scenario

DAY1, DAY2, DAY3 = "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def public_posts(world, start: str, end: str):
    """(kept, opted-out) posts the public timeline shows that were created in [start, end)."""
    now = world.clock.now()
    kept, opted = [], []
    for post in world.scenario.posts_at(now):
        if post.reblog_of is not None or not (when(start) <= post.created_at < when(end)):
            continue
        account = world.scenario.account(post.account)
        (opted if account.noindex or not account.indexable else kept).append(post)
    return kept, opted


def test_window_consent_rerun_and_next_day(world_at_start, crawl):
    world = world_at_start
    world.clock.set(world.parse_when(DAY2))
    args = {
        "instance": world.url,
        "hashtags": "Tessford,OrrinPulse,신조어",
        "window_start": DAY1,
        "window_end": DAY2,
        "page_size": "20",
    }
    first = crawl("mastodon", args)
    kept, opted = public_posts(world, DAY1, DAY2)
    assert kept and opted
    assert sorted(r["meta"]["status_id"] for r in first.records) == sorted(p.id for p in kept)
    for record in first.records:
        assert schema_problems(record) == []
        assert record["kind"] == "sns" and record["title"] is None
        assert DAY1 <= record["published_at"] < DAY2
        assert record["author"].startswith("@") and record["author"].count("@") == 2
        assert "<p>" not in record["text"]
    authors = {r["author"].split("@")[1] for r in first.records}
    assert not authors & {"quiet_reader", "private_pete"}
    assert first.stat("freshlm/skipped/opted_out") >= len(opted)
    assert first.quarantined == []
    edited = [r for r in first.records if r["meta"]["edited_at"]]
    assert edited, "the edited launch post keeps its edit time"
    assert set(first.next_cursor["timelines"]) == {
        "public",
        "tag:tessford",
        "tag:orrinpulse",
        "tag:신조어",
    }

    again = crawl("mastodon", {**args, "cursor": json.dumps(first.next_cursor)})
    assert again.records == []

    world.clock.advance(days=1)
    next_day = crawl(
        "mastodon",
        {**args, "window_start": DAY2, "window_end": DAY3, "cursor": json.dumps(again.next_cursor)},
    )
    new, _ = public_posts(world, DAY2, DAY3)
    assert sorted(r["meta"]["status_id"] for r in next_day.records) == sorted(p.id for p in new)


def test_rate_limit_is_honoured_and_nothing_is_lost(crawl):
    # A budget of 4 requests per 2 s: paging 5 posts at a time through ~33 posts hits 429s.
    # No Crawl-delay in robots.txt: honoured, its 1 s would keep the crawl under the budget.
    with WorldServer(
        tiny_scenario.build(),
        start=DAY2,
        rate_limit=RateLimit(limit=4, period_s=2.0),
        crawl_delay=0,
    ) as world:
        result = crawl(
            "mastodon",
            {"instance": world.url, "window_start": DAY1, "window_end": DAY2, "page_size": "5"},
            {"FRESHLM_RETRY_AFTER_MAX": "3", "RETRY_TIMES": "3"},
        )
        kept, opted = public_posts(world, DAY1, DAY2)
        statuses = [e["status"] for e in world.requests_log() if e["path"].startswith("/api/")]
    assert sorted(r["meta"]["status_id"] for r in result.records) == sorted(p.id for p in kept)
    assert result.stat("freshlm/skipped/opted_out") == len(opted)
    assert 429 in statuses or result.stat("freshlm/rate_limit_waits") > 0
    assert result.stat("freshlm/rate_limit_waits") + result.stat("freshlm/retry_after") > 0
    assert result.stat("freshlm/errors/http_429") == 0
