"""Real ``scrapy crawl arxiv`` runs against the sandbox world's arXiv API."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime

from scrapy.settings import Settings

from crawlers.pipelines import schema_problems
from crawlers.spiders.arxiv import ArxivSpider

DAY1, DAY2 = "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"
CATEGORIES = ("cs.CL", "cs.LG")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def api_requests(world) -> list[dict]:
    log = json.loads(urllib.request.urlopen(world.url + "/_world/requests").read())
    return [e for e in log if e["path"] == "/api/query"]


def test_window_paging_metadata_and_rerun(world_at_start, crawl):
    world = world_at_start
    world.clock.set(world.parse_when(DAY2))
    args = {
        "api_url": world.url + "/api/query",
        "categories": ",".join(CATEGORIES),
        "since": DAY1,
        "until": DAY2,
        "page_size": "2",
    }
    first = crawl("arxiv", args)
    wanted = {
        p.arxiv_id
        for p in world.scenario.papers_at(world.clock.now())
        if when(DAY1) <= p.published_at < when(DAY2) and set(p.categories) & set(CATEGORIES)
    }
    assert wanted
    assert {r["meta"]["arxiv_id"] for r in first.records} == wanted
    for record in first.records:
        assert schema_problems(record) == []
        assert record["kind"] == "paper" and record["title"] and record["text"]
        assert record["meta"]["version"] >= 1 and record["meta"]["categories"]
        assert "/pdf/" not in record["url"]  # metadata only, never the full text
    requests = api_requests(world)
    assert [int(r["query"]["start"]) for r in requests] == list(range(0, 2 * len(requests), 2))
    query = requests[0]["query"]["search_query"]
    assert "cat:cs.CL OR cat:cs.LG" in query
    assert "submittedDate:[202611020000 TO 202611030000]" in query
    assert first.next_cursor == {"done": [{"since": DAY1, "until": DAY2}]}

    urllib.request.urlopen(urllib.request.Request(world.url + "/_world/requests", method="DELETE"))
    again = crawl("arxiv", {**args, "cursor": json.dumps(first.next_cursor)})
    assert again.records == [] and api_requests(world) == []
    assert again.stat("freshlm/skipped/window_already_crawled") == 1


def test_garbage_from_the_api_is_quarantined_and_the_crawl_completes(world_at_start, crawl):
    world = world_at_start
    rule = {
        "path_prefix": "/api/query",
        "status": 200,
        "times": 3,
        "body": "\x00\x01 <<garbage>> \xff",
        "content_type": "application/atom+xml",
    }
    urllib.request.urlopen(
        urllib.request.Request(
            world.url + "/_world/faults",
            json.dumps(rule).encode(),
            {"Content-Type": "application/json"},
        )
    )
    result = crawl(
        "arxiv",
        {"api_url": world.url + "/api/query", "categories": "cs.CL", "since": DAY1, "until": DAY2},
    )
    assert result.returncode == 0
    assert result.records == []
    assert [q["reason"] for q in result.quarantined] == ["api_error"]
    assert "garbage" in result.quarantined[0]["raw"]
    assert result.stat("freshlm/quarantined/api_error") == 1
    assert result.next_cursor == {"done": []}  # not marked crawled: the next run tries again


def test_arxiv_politeness_is_the_default_and_can_be_overridden():
    settings = Settings()
    settings.setmodule("crawlers.settings", priority="project")
    ArxivSpider.update_settings(settings)
    assert settings.getfloat("DOWNLOAD_DELAY") == 3.0
    assert settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") == 1
    assert settings.getbool("AUTOTHROTTLE_ENABLED") is False
    assert settings.getfloat("DOWNLOAD_DELAY_JITTER") == 0.0  # exactly every 3 s
    settings.set("DOWNLOAD_DELAY", 0, priority="cmdline")  # -s DOWNLOAD_DELAY=0
    assert settings.getfloat("DOWNLOAD_DELAY") == 0
