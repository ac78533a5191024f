"""Behaviour of the emulated Mastodon API over HTTP: paging, Link, rate limits, entities."""

from __future__ import annotations

import re

import pytest
import requests

from sandbox.mastodon_api import RateLimit
from sandbox.server import WorldServer
from tests.sandbox import tiny_scenario

PUBLIC = "/api/v1/timelines/public"


def _get(world: WorldServer, path: str, **params):
    response = requests.get(world.url + path, params=params, timeout=5)
    return response


def _links(response: requests.Response) -> dict[str, str]:
    return {
        rel: url
        for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.headers.get("Link", ""))
    }


def _visible_ids(world: WorldServer) -> list[str]:
    posts = world.scenario.posts_at(world.clock.now())
    return [p.id for p in posts if p.reblog_of is None and p.visible_at(world.clock.now())]


def test_public_timeline_defaults_to_20_newest_first(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    response = _get(tiny, PUBLIC)
    statuses = response.json()
    assert response.status_code == 200
    assert len(statuses) == 20
    ids = [int(s["id"]) for s in statuses]
    assert ids == sorted(ids, reverse=True)
    assert [s["id"] for s in statuses] == _visible_ids(tiny)[:20]


def test_following_next_links_returns_every_post_exactly_once(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    expected = _visible_ids(tiny)
    seen: list[str] = []
    url = f"{tiny.url}{PUBLIC}?limit=7"
    while True:
        response = requests.get(url, timeout=5)
        page = response.json()
        if not page:
            assert "Link" not in response.headers  # Mastodon sends no Link for an empty page
            break
        seen += [s["id"] for s in page]
        url = _links(response)["next"]
        assert "limit=7" in url  # paging parameters are carried along
    assert seen == expected


def test_min_id_pages_forward_and_since_id_jumps_to_newest(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    ids = _visible_ids(tiny)  # newest first
    oldest = ids[-1]
    forward = _get(tiny, PUBLIC, min_id=oldest, limit=5).json()
    # The page immediately newer than min_id, still newest first.
    assert [s["id"] for s in forward] == ids[-6:-1]
    since = _get(tiny, PUBLIC, since_id=oldest, limit=5).json()
    assert [s["id"] for s in since] == ids[:5]
    # Walking prev links from the oldest page reaches the newest post, each post once.
    seen = []
    url = f"{tiny.url}{PUBLIC}?min_id={oldest}&limit=4"
    while True:
        response = requests.get(url, timeout=5)
        page = response.json()
        if not page:
            break
        seen = [s["id"] for s in page] + seen
        url = _links(response)["prev"]
    assert seen == ids[:-1]


def test_new_posts_appear_above_since_id_when_the_clock_moves(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    newest = _get(tiny, PUBLIC, limit=1).json()[0]["id"]
    assert _get(tiny, PUBLIC, since_id=newest).json() == []
    requests.post(f"{tiny.url}/_world/clock", json={"advance": "1d"}, timeout=5)
    fresh = _get(tiny, PUBLIC, since_id=newest, limit=40).json()
    assert len(fresh) == tiny_scenario.DAY2_POSTS
    assert all(s["content"].startswith("<p>Day two post") for s in fresh)


def test_local_and_remote_filters(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    local = _get(tiny, PUBLIC, local="true", limit=40).json()
    remote = _get(tiny, PUBLIC, remote="1", limit=40).json()
    assert local and all("@" not in s["account"]["acct"] for s in local)
    assert remote and all(s["account"]["acct"] == "dave@remote.example" for s in remote)
    assert remote[0]["url"].startswith("https://remote.example/@dave/")


def test_hashtag_timeline_and_html(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    statuses = _get(tiny, "/api/v1/timelines/tag/tessford", limit=40).json()
    assert len(statuses) == tiny_scenario.TAGGED_DAY1
    status = statuses[0]
    assert status["tags"] == [{"name": "tessford", "url": f"{tiny.url}/tags/tessford"}]
    assert (
        f'<a href="{tiny.url}/tags/tessford" class="mention hashtag" rel="tag">'
        "#<span>Tessford</span></a>"
    ) in status["content"]
    link = _links(_get(tiny, "/api/v1/timelines/tag/tessford", limit=3))["next"]
    assert link.startswith(f"{tiny.url}/api/v1/timelines/tag/tessford?limit=3&max_id=")


def test_mentions_links_and_paragraphs_render_like_mastodon(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    post = tiny.scenario.post("mention")
    status = _get(tiny, f"/api/v1/statuses/{post.id}").json()
    content = status["content"]
    assert (
        f'<span class="h-card" translate="no"><a href="{tiny.url}/@bob" class="u-url mention">'
        "@<span>bob</span></a></span>"
    ) in content
    assert 'href="https://remote.example/@dave" class="u-url mention"' in content
    assert '<span class="invisible">https://</span><span class="ellipsis">' in content
    assert "</p><p>Second paragraph&#39;s here.</p>" in content
    bob = tiny.scenario.account("bob")
    assert status["mentions"] == [
        {"id": bob.id, "username": "bob", "url": f"{tiny.url}/@bob", "acct": "bob"},
        {
            "id": tiny.scenario.account("dave").id,
            "username": "dave",
            "url": "https://remote.example/@dave",
            "acct": "dave@remote.example",
        },
    ]
    assert [t["name"] for t in status["tags"]] == ["lanternfest"]


def test_consent_fields_are_served_and_opted_out_posts_still_listed(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY2)
    statuses = _get(tiny, PUBLIC, limit=40).json()
    assert len(statuses) == len(_visible_ids(tiny))  # one page holds the whole day
    accounts = {s["account"]["username"]: s["account"] for s in statuses}
    assert accounts["alice"]["indexable"] is True and accounts["alice"]["noindex"] is False
    assert accounts["bob"]["indexable"] is False  # opted out, yet listed (as on Mastodon)
    assert accounts["carol"]["noindex"] is True
    assert accounts["carol"]["discoverable"] is False


def test_edits_boosts_and_deletions(tiny: WorldServer) -> None:
    scenario = tiny.scenario
    edited, boost, deleted = (scenario.post(k) for k in ("edited", "boost", "deleted"))
    tiny.clock.set(tiny_scenario._at(tiny_scenario.DAY1, 11.5))
    before = _get(tiny, f"/api/v1/statuses/{edited.id}").json()
    assert before["edited_at"] is None and "$549" in before["content"]

    tiny.clock.set(tiny_scenario._at(tiny_scenario.DAY1, 16))
    after = _get(tiny, f"/api/v1/statuses/{edited.id}").json()
    assert after["edited_at"] == "2026-11-02T12:00:00.000Z" and "$649" in after["content"]
    assert after["replies_count"] == 1 and after["reblogs_count"] == 1
    # Public timelines leave boosts out (Mastodon's PublicFeed); account timelines show them.
    public_ids = {s["id"] for s in _get(tiny, PUBLIC, limit=40).json()}
    assert boost.id not in public_ids
    bob = scenario.account("bob")
    wrapper = next(
        s
        for s in _get(tiny, f"/api/v1/accounts/{bob.id}/statuses", limit=40).json()
        if s["id"] == boost.id
    )
    assert wrapper["content"] == "" and wrapper["reblog"]["id"] == edited.id
    assert wrapper["reblog"]["content"] == after["content"]
    assert wrapper["url"].endswith(f"/statuses/{boost.id}/activity")
    reply = _get(tiny, f"/api/v1/statuses/{scenario.post('reply').id}").json()
    assert reply["in_reply_to_id"] == edited.id
    assert reply["in_reply_to_account_id"] == scenario.account("alice").id

    assert _get(tiny, f"/api/v1/statuses/{deleted.id}").status_code == 200
    tiny.clock.set(tiny_scenario.DAY2 + (tiny_scenario.DAY2 - tiny_scenario.DAY1) / 24)
    gone = _get(tiny, f"/api/v1/statuses/{deleted.id}")
    assert gone.status_code == 404 and gone.json() == {"error": "Record not found"}
    assert deleted.id not in {s["id"] for s in _get(tiny, PUBLIC, limit=40).json()}


def test_account_lookup(tiny: WorldServer) -> None:
    alice = tiny.scenario.account("alice")
    assert _get(tiny, "/api/v1/accounts/lookup", acct="alice").json()["id"] == alice.id
    assert _get(tiny, f"/api/v1/accounts/{alice.id}").json()["acct"] == "alice"
    assert (
        _get(tiny, "/api/v1/accounts/lookup", acct="dave@remote.example").json()["username"]
        == "dave"
    )
    assert _get(tiny, "/api/v1/accounts/lookup", acct="nobody").status_code == 404


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "many"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"max_id": "abc"}, "max_id"),
        ({"min_id": "-1"}, "min_id"),
        ({"local": "maybe"}, "local"),
    ],
)
def test_invalid_parameters_answer_400_naming_them(
    tiny: WorldServer, params: dict[str, str], named: str
) -> None:
    response = _get(tiny, PUBLIC, **params)
    assert response.status_code == 400
    assert response.json()["error"].startswith(named)


def test_limit_above_40_is_clamped(tiny: WorldServer) -> None:
    tiny.clock.set(tiny_scenario.DAY3)
    assert len(_get(tiny, PUBLIC, limit=500).json()) == 40


def test_rate_limit_counts_down_per_client_then_429() -> None:
    with WorldServer(tiny_scenario.build(), rate_limit=RateLimit(limit=3, period_s=300)) as world:
        remaining = []
        for _ in range(3):
            response = _get(world, PUBLIC)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "3"
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == [2, 1, 0]
        limited = _get(world, PUBLIC)
        assert limited.status_code == 429
        assert limited.json() == {"error": "Too many requests"}
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        # A different client (another token) has its own budget.
        other = requests.get(
            world.url + PUBLIC, headers={"Authorization": "Bearer other"}, timeout=5
        )
        assert other.status_code == 200
        # Other services on the port are not Mastodon's budget.
        assert requests.get(world.url + "/robots.txt", timeout=5).status_code == 200
        world.reset()
        assert _get(world, PUBLIC).status_code == 200
