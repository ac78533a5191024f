"""No SSRF: a feed's host cannot steer the crawler at loopback, link-local or private addresses.

A real ``scrapy crawl news`` against a loopback "news site" (allowed by the allowlist, as the
sandbox world is) whose article links and feed redirect point at another loopback service, the
cloud metadata address and ``localhost``: none of them is fetched, each refusal is counted and
named in the log, and the legitimate article is still crawled.
"""

from __future__ import annotations

import pytest

from crawlers.address_guard import AddressRefused, PublicAddressMiddleware
from freshlm.addresses import AllowList
from tests.crawlers.loopback_http import LoopbackServer

DAY1, DAY2 = "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"

ARTICLE = """<html><head><title>Fine</title></head><body><article><h1>Fine</h1>
<p>The Tessford council approved the new harbour budget after a long debate on Monday.</p>
<p>Members said the plan keeps the ferry running through the winter months.</p>
</article></body></html>"""


def feed(site: str) -> str:
    items = "".join(
        f"<item><title>{name}</title><link>{site}/{name}</link><guid>{name}</guid>"
        f"<description>Summary of {name}.</description>"
        "<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>"
        for name in ("fine", "to-secret", "to-metadata")
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    )


def redirect(to: str):
    return (302, {"Location": to}, b"")


@pytest.fixture
def servers():
    with LoopbackServer({"/": (200, {}, "TOP SECRET admin page")}) as secret:
        secret.routes["/feed.rss"] = (200, {"Content-Type": "application/rss+xml"}, "<rss/>")
        with LoopbackServer() as site:
            site.routes.update(
                {
                    "/feed.rss": (200, {"Content-Type": "application/rss+xml"}, feed(site.url)),
                    "/fine": (200, {"Content-Type": "text/html"}, ARTICLE),
                    "/to-secret": redirect(f"{secret.url}/"),
                    "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
                    "/moved.rss": redirect(f"http://localhost:{secret.port}/feed.rss"),
                }
            )
            yield site, secret


def test_redirects_to_internal_addresses_are_refused_and_counted(servers, crawl):
    site, secret = servers
    result = crawl(
        "news",
        {
            "feeds": f"{site.url}/feed.rss,{site.url}/moved.rss",
            "window_start": DAY1,
            "window_end": DAY2,
        },
        # Only the "news site" itself is allowed, as the sandbox world is by default.
        {"FRESHLM_CRAWL_ALLOW_PRIVATE": f"127.0.0.1:{site.port}", "DOWNLOAD_TIMEOUT": "3"},
    )
    assert secret.requests == []
    assert [r["url"] for r in result.records] == [f"{site.url}/fine"]
    assert all("TOP SECRET" not in r["text"] for r in result.records)
    assert result.stat("freshlm/errors/address_refused") == 3
    assert (
        "refused http://169.254.169.254/latest/meta-data/: 169.254.169.254 is a link-local "
        "address, not in FRESHLM_CRAWL_ALLOW_PRIVATE"
    ) in result.log
    moved = f"refused http://localhost:{secret.port}/feed.rss: localhost resolves to 127.0.0.1"
    assert f"{moved}, a loopback address" in result.log


def test_a_source_on_a_refused_address_fails_with_the_reason(crawl):
    result = crawl(
        "news",
        {"feeds": "http://10.1.2.3/feed.rss,http://[::1]:9/feed.rss", "source": "intranet"},
        {"FRESHLM_CRAWL_ALLOW_PRIVATE": "none", "RETRY_TIMES": "0"},
    )
    assert result.records == []
    assert result.stat("freshlm/errors/address_refused") == 2
    assert "source 'intranet' unreachable" in result.log
    assert "refused http://10.1.2.3/feed.rss: 10.1.2.3 is a private address" in result.log


@pytest.mark.parametrize(
    ("url", "allow", "refused"),
    [
        ("http://127.0.0.1:8766/x", "127.0.0.1:8766", False),
        ("http://127.0.0.1:8767/x", "127.0.0.1:8766", True),
        ("http://[::ffff:127.0.0.1]:80/x", "", True),
        ("http://[fe80::1]/x", "", True),
        ("http://0.0.0.0:8766/x", "127.0.0.1:8766", True),
        ("http://100.64.0.1/x", "", True),
        ("http://8.8.8.8/x", "", False),
        ("file:///etc/passwd", "127.0.0.1", True),
        ("http://world.internal:8766/x", "world.internal:8766", False),
    ],
)
def test_the_address_rules(url, allow, refused):
    import asyncio

    from scrapy.http import Request

    guard = PublicAddressMiddleware(AllowList.parse(allow))
    run = guard.process_request(Request(url))
    if refused:
        with pytest.raises(AddressRefused):
            asyncio.run(run)
    else:
        assert asyncio.run(run) is None
