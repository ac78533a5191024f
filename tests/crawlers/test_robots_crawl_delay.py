"""robots.txt ``Crawl-delay`` is honoured: a real ``scrapy crawl news`` of a loopback site whose
robots.txt asks for 2 s waits at least that long between its requests, with AutoThrottle and
the ±50% jitter of the shipped settings on (both would otherwise shorten the wait)."""

from __future__ import annotations

import itertools

from tests.crawlers.loopback_http import LoopbackServer

DAY1, DAY2 = "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"
CRAWL_DELAY_S = 2.0
ARTICLE = """<html><head><title>{name}</title></head><body><article><h1>{name}</h1>
<p>The Tessford council approved the new harbour budget after a long debate on Monday.</p>
<p>Members said the plan keeps the ferry running through the winter months.</p>
</article></body></html>"""


def feed(site: str) -> str:
    items = "".join(
        f"<item><title>{name}</title><link>{site}/{name}</link><guid>{name}</guid>"
        "<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>"
        for name in ("one", "two")
    )
    channel = f"<channel><title>t</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


def test_the_crawl_waits_the_crawl_delay_between_requests(crawl):
    robots = f"User-agent: *\nCrawl-delay: {CRAWL_DELAY_S:g}\nAllow: /\n"
    with LoopbackServer({"/robots.txt": (200, {"Content-Type": "text/plain"}, robots)}) as site:
        site.routes["/feed.rss"] = (200, {"Content-Type": "application/rss+xml"}, feed(site.url))
        for name in ("one", "two"):
            page = ARTICLE.format(name=name)
            site.routes[f"/{name}"] = (200, {"Content-Type": "text/html"}, page)
        result = crawl(
            "news",
            {"feeds": f"{site.url}/feed.rss", "window_start": DAY1, "window_end": DAY2},
            {"DOWNLOAD_DELAY": "0.1", "AUTOTHROTTLE_ENABLED": "1", "DOWNLOAD_DELAY_JITTER": "0.5"},
        )
    assert sorted(r["url"] for r in result.records) == [f"{site.url}/one", f"{site.url}/two"]
    pages = [r for r in site.requests if r["path"] != "/robots.txt"]
    assert [r["path"] for r in pages][:1] == ["/feed.rss"] and len(pages) == 3
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(pages)]
    assert min(gaps) >= CRAWL_DELAY_S - 0.05, gaps
    assert result.stat("freshlm/robots/crawl_delay") == 1
    assert f"robots.txt of 127.0.0.1 asks for Crawl-delay {CRAWL_DELAY_S:g}s" in result.log
