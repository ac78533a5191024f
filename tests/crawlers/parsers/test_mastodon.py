"""Mastodon JSON parsing on every recorded status, timeline and account."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from crawlers.parsers.mastodon import (
    MastodonFormatError,
    account_handle,
    link_param,
    opted_out,
    parse_link_header,
    parse_rate_limit,
    parse_status,
    parse_timeline,
)
from tests.crawlers.conftest import REAL

JSON = REAL / "mastodon" / "json"
INSTANCE = "http://localhost:3000"


def load(name):
    return json.loads((JSON / name).read_text())


def is_status(obj) -> bool:
    return isinstance(obj, dict) and "account" in obj and "id" in obj and "created_at" in obj


def statuses_in(data):
    """Every status entity in a response (a status, a timeline, search or context results)."""
    if is_status(data):
        return [data]
    if isinstance(data, list):
        return [s for s in data if is_status(s)]
    if isinstance(data, dict):
        return [s for key in ("statuses", "ancestors", "descendants") for s in data.get(key, [])]
    return []


STATUS_FILES = sorted(p for p in JSON.iterdir() if statuses_in(json.loads(p.read_text())))
TIMELINES = sorted(p for p in JSON.iterdir() if "_timelines_" in p.name)
ACCOUNT_FILES = sorted(
    p for p in JSON.iterdir() if isinstance(load(p.name), dict) and "acct" in load(p.name)
)


def test_the_recorded_set_is_covered():
    assert len(STATUS_FILES) >= 25
    assert len(TIMELINES) == 3
    assert len(ACCOUNT_FILES) >= 5


@pytest.mark.parametrize("path", STATUS_FILES, ids=lambda p: p.name)
def test_every_recorded_status_parses(path):
    for status in statuses_in(json.loads(path.read_text())):
        post = parse_status(status, INSTANCE)
        assert post.id == str((status.get("reblog") or status)["id"])
        assert post.uri.startswith("http")
        assert post.created_at.tzinfo is not None
        assert post.author.startswith("@") and post.author.count("@") == 2
        assert post.text and "<p>" not in post.text and "<span" not in post.text


@pytest.mark.parametrize("path", TIMELINES, ids=lambda p: p.name)
def test_timelines_yield_one_post_per_status(path):
    body = path.read_bytes()
    posts, problems = parse_timeline(body, INSTANCE)
    assert len(posts) == len(json.loads(body)) == body.count(b'"visibility":')
    assert problems == []
    ids = [int(p.id) for p in posts]
    assert ids == sorted(ids, reverse=True)  # newest first, as served


def test_public_timeline_values():
    posts, _ = parse_timeline(
        (JSON / "test_public_tl__02_GET_v1_timelines_public_200.json").read_bytes(), INSTANCE
    )
    assert len(posts) == 8
    first = posts[0]
    assert first.text == "Toot, finally!"
    assert first.author == "@mastodonpy_test_2@localhost"
    assert first.language == "ja"
    edited = [p for p in posts if p.edited_at]
    assert edited and edited[0].edited_at.tzinfo is not None


def test_hashtag_link_text_is_kept():
    (post,) = parse_timeline(
        (JSON / "test_hashtag_tl__02_GET_v1_timelines_tag_hoot_200.json").read_bytes(), INSTANCE
    )[0]
    assert post.text == "#hoot (hashtag toot)"
    assert post.tags == ("hoot",)


def test_mention_and_links_are_text():
    reply = parse_status(load("test_status_reply__02_POST_v1_statuses_200.json"), INSTANCE)
    assert reply.text == "@mastodonpy_test_2 same!"
    assert reply.in_reply_to_id
    card = parse_status(load("test_status_card__01_GET_v1_statuses_ID_200.json"), INSTANCE)
    assert card.text == "http://example.org/"


def test_boost_is_unwrapped_to_the_original():
    raw = load("test_status_reblog_unreblog__01_POST_v1_statuses_ID_reblog_200.json")
    post = parse_status(raw, INSTANCE)
    assert raw["content"] == "" and raw["reblog"]["content"]
    assert post.id == raw["reblog"]["id"] and post.uri == raw["reblog"]["uri"]
    assert post.boosted_by == "@mastodonpy_test@localhost"
    assert post.boost_id == raw["id"]
    assert post.text == "Toot!"


def test_edited_status_has_its_current_text_and_edit_time():
    post = parse_status(load("test_status_edit__03_GET_v1_statuses_ID_200.json"), INSTANCE)
    assert post.edited_at == datetime(2026, 8, 1, 13, 54, 0, 695000, tzinfo=UTC)
    assert "KDE Advanced Text" in post.text


def test_deleted_status_response_uses_its_source_text():
    raw = load("test_status__02_DELETE_v1_statuses_ID_200.json")
    assert "content" not in raw
    assert parse_status(raw, INSTANCE).text == "Toot!"


def test_content_warning_is_kept_apart():
    post = parse_status(
        load("test_status_post_content_warning_public__00_POST_v1_statuses_200.json"), INSTANCE
    )
    assert post.spoiler_text and post.sensitive


def test_pleroma_status_with_custom_emoji_and_remote_style_ids():
    post = parse_status(
        load("tootsdk__pleroma_post_with_emojis_and_attachments.json"), "https://m.iamkonstantin.eu"
    )
    assert post.id == "AQetOIEp6Z2GZ4UiI4"
    assert post.text.startswith("I just #love #coffee :heart_cup:")
    assert post.author == "@konstantin@m.iamkonstantin.eu"


@pytest.mark.parametrize("path", ACCOUNT_FILES, ids=lambda p: p.name)
def test_consent_of_every_recorded_account(path):
    account = json.loads(path.read_text())
    expected = (
        account.get("noindex") is True
        or account.get("indexable") is False
        or account.get("discoverable") is False
        or any(tag in (account.get("note") or "").lower() for tag in ("#nobot", "#noai"))
    )
    assert opted_out(account) is expected


def test_consent_rule():
    assert opted_out({"indexable": False, "noindex": False})
    assert opted_out({"indexable": True, "noindex": True})
    assert not opted_out({"indexable": True, "noindex": False})
    assert not opted_out({})  # older servers: no opt-out stated
    assert opted_out({"indexable": True, "discoverable": False})
    assert opted_out(
        {"note": '<p>Painter. <a href="x" class="hashtag">#<span>NoBot</span></a></p>'}
    )
    assert opted_out({"note": "<p>no scraping please #noai</p>"})
    assert not opted_out({"note": "<p>I build #nobotics kits; see issue#nobot-7</p>"})
    official = load("tootsdk__account_mastodon_official.json")
    assert official["indexable"] is False and opted_out(official)


def test_handles():
    assert account_handle({"acct": "mira"}, "https://tessford.social") == "@mira@tessford.social"
    assert account_handle({"acct": "jiwoo@haeon.example"}, "https://x.y") == "@jiwoo@haeon.example"


def test_link_header_and_rate_limits():
    header = (
        '<https://i.example/api/v1/timelines/public?limit=40&max_id=10>; rel="next", '
        '<https://i.example/api/v1/timelines/public?limit=40&min_id=20>; rel="prev"'
    )
    links = parse_link_header(header)
    assert link_param(links["prev"], "min_id") == "20"
    assert link_param(links["next"], "max_id") == "10"
    assert parse_link_header(None) == {}
    limits = parse_rate_limit(
        {
            "X-RateLimit-Limit": "300",
            "x-ratelimit-remaining": "0",
            "X-RateLimit-Reset": "2026-11-02T00:05:00.000000Z",
        }
    )
    assert (limits.limit, limits.remaining) == (300, 0)
    assert limits.reset == datetime(2026, 11, 2, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize("body", [b"", b"not json", b'{"error": "Too many requests"}', b'{"a": 1}'])
def test_bad_timeline_bodies_raise(body):
    with pytest.raises(MastodonFormatError):
        parse_timeline(body, INSTANCE)


def test_a_bad_item_is_reported_and_the_rest_kept():
    good = load("test_status__01_GET_v1_statuses_ID_200.json")
    posts, problems = parse_timeline(json.dumps([good, {"id": "1"}, 42]), INSTANCE)
    assert len(posts) == 1
    assert [p.index for p in problems] == [1, 2]


def test_a_timeline_nested_too_deeply_is_a_format_error_not_a_crash():
    body = "[" * 100_000 + "]" * 100_000
    with pytest.raises(MastodonFormatError, match="nested too deeply"):
        parse_timeline(body, "https://i.example")
