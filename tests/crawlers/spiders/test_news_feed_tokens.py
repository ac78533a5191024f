"""A feed URL's query string (often a token) never lands in a record or quarantine item.

A real ``scrapy crawl news`` of a loopback feed reached with ``?token=...``: the record's
``meta.feed`` and the quarantined feed entry name the feed with the value masked.
"""

from __future__ import annotations

import json

from tests.crawlers.loopback_http import LoopbackServer

DAY1, DAY2 = "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"
TOKEN = "s3cretFeedToken42"

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Harbour</title><link>https://elsewhere.example/harbour</link><guid>harbour</guid>
<description>The Tessford council approved the harbour budget on Monday after a debate.
</description><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>No date</title><guid>undated</guid><description>Text without a date.</description>
</item></channel></rss>"""


def test_a_token_in_the_feed_url_is_masked_in_records_and_quarantine(crawl):
    routes = {
        "/feed.rss": (200, {"Content-Type": "application/rss+xml"}, FEED),
        "/gone.rss": (200, {"Content-Type": "text/html"}, "<html><body>moved</body></html>"),
    }
    with LoopbackServer(routes) as s:
        feeds = f"{s.url}/feed.rss?token={TOKEN},{s.url}/gone.rss?key={TOKEN}&lang=en"
        result = crawl("news", {"feeds": feeds, "window_start": DAY1, "window_end": DAY2})
        assert [r["query"] for r in s.requests if r["path"] == "/feed.rss"] == [f"token={TOKEN}"]
    assert [r["meta"]["feed"] for r in result.records] == [f"{s.url}/feed.rss?token=REDACTED"]
    not_a_feed = [q for q in result.quarantined if q["reason"] == "not_a_feed"]
    assert [q["url"] for q in not_a_feed] == [f"{s.url}/gone.rss?key=REDACTED&lang=REDACTED"]
    stored = json.dumps(result.records) + json.dumps(result.quarantined)
    assert TOKEN not in stored
