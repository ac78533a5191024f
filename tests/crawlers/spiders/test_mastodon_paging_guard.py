"""The Mastodon spider pages only its own instance and never sends its token over plain http."""

from __future__ import annotations

import json

import pytest

from tests.crawlers.loopback_http import LoopbackServer

DAY1, DAY2 = "2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"


def status(ident: int, text: str) -> dict:
    return {
        "id": str(ident),
        "uri": f"https://social.example/statuses/{ident}",
        "url": f"https://social.example/@ann/{ident}",
        "created_at": "2026-11-02T10:00:00.000Z",
        "content": f"<p>{text}</p>",
        "language": "en",
        "account": {"acct": "ann", "username": "ann"},
    }


def test_a_next_page_on_another_host_is_not_followed(crawl):
    with LoopbackServer() as elsewhere, LoopbackServer() as instance:
        elsewhere.routes["/api/v1/timelines/public"] = (200, {}, json.dumps([status(9, "x")]))
        page = json.dumps([status(1, "The harbour ferry runs all winter this year.")])
        link = f'<{elsewhere.url}/api/v1/timelines/public?min_id=1>; rel="prev"'
        instance.routes["/api/v1/timelines/public"] = (
            200,
            {"Content-Type": "application/json", "Link": link},
            page,
        )
        result = crawl(
            "mastodon",
            {"instance": instance.url, "window_start": DAY1, "window_end": DAY2},
        )
    assert elsewhere.requests == []
    assert [r["meta"]["status_id"] for r in result.records] == ["1"]
    assert result.stat("freshlm/skipped/offsite_link") == 1
    assert f"not following the next page {elsewhere.url}" in result.log


def test_the_token_goes_over_https_to_the_instance_only(monkeypatch):
    from crawlers.spiders.base import SpiderArgumentError
    from crawlers.spiders.mastodon import MastodonSpider

    monkeypatch.setenv("FRESHLM_TEST_MASTODON_TOKEN", "s3cret-token")
    with pytest.raises(SpiderArgumentError, match="the token is only sent over https"):
        MastodonSpider(
            instance="http://social.example", access_token_env="FRESHLM_TEST_MASTODON_TOKEN"
        )
    spider = MastodonSpider(
        instance="https://social.example", access_token_env="FRESHLM_TEST_MASTODON_TOKEN"
    )
    own = spider._request("https://social.example/api/v1/timelines/public", "public", 1)
    assert own.headers.get("Authorization") == b"Bearer s3cret-token"
    for url in ("https://evil.example/api/v1/timelines/public", "http://social.example/x"):
        assert "Authorization" not in spider._request(url, "public", 2).headers


def test_a_timeline_nested_too_deeply_is_quarantined_and_the_crawl_goes_on(crawl):
    deep = "[" * 100_000 + "]" * 100_000
    with LoopbackServer() as instance:
        instance.routes["/api/v1/timelines/public"] = (200, {}, deep)
        instance.routes["/api/v1/timelines/tag/ok"] = (
            200,
            {},
            json.dumps([status(2, "Fine post about the winter ferry plan.")]),
        )
        result = crawl(
            "mastodon",
            {"instance": instance.url, "hashtags": "ok", "window_start": DAY1, "window_end": DAY2},
        )
    assert result.returncode == 0
    assert [q["reason"] for q in result.quarantined] == ["bad_json"]
    assert "nested too deeply" in result.quarantined[0]["detail"]
    assert [r["meta"]["status_id"] for r in result.records] == ["2"]
