"""Where an arXiv crawl starts when nights were missed: at the end of the last window its cursor
says was fetched, never further back than :data:`MAX_CATCH_UP`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from crawlers.spiders.arxiv import ArxivSpider
from crawlers.spiders.arxiv_catch_up import MAX_CATCH_UP, catch_up_start

NIGHT = datetime(2026, 11, 20, tzinfo=UTC)


def done(*ends: datetime) -> list[dict[str, str]]:
    """Cursor windows of one day each, ending at ``ends``."""
    return [
        {
            "since": (end - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "until": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for end in ends
    ]


@pytest.mark.parametrize(
    ("cursor", "start"),
    [
        pytest.param([], NIGHT, id="first crawl: the window only"),
        pytest.param(done(NIGHT), NIGHT, id="last night was fetched: nothing missed"),
        pytest.param(
            done(NIGHT - timedelta(days=4), NIGHT - timedelta(days=3)),
            NIGHT - timedelta(days=3),
            id="two nights missed: from the end of the newest window fetched",
        ),
        pytest.param(
            done(NIGHT + timedelta(days=5)), NIGHT, id="a backfill of an older night: as given"
        ),
        pytest.param(
            done(NIGHT - timedelta(days=30)),
            NIGHT - MAX_CATCH_UP,
            id="missed longer than the look-back: bounded",
        ),
        pytest.param(
            [{"since": "garbage"}, {"until": 3}, *done(NIGHT - timedelta(days=2))],
            NIGHT - timedelta(days=2),
            id="unreadable cursor entries are ignored",
        ),
    ],
)
def test_catch_up_starts_where_the_cursor_ends(cursor, start):
    assert catch_up_start(cursor, NIGHT) == start


def test_the_look_back_stays_within_what_the_gate_accepts():
    # The gate takes documents published up to late_arrival_days before the window: a paper
    # caught up from further back would make the whole batch fail published_in_window.
    from expectations.config import GateConfig

    assert timedelta(days=GateConfig().late_arrival_days) >= MAX_CATCH_UP


def _spider(cursor: list[dict[str, str]], **args: str) -> ArxivSpider:
    return ArxivSpider(
        api_url="https://export.arxiv.org/api/query",
        categories="cs.CL",
        source="papers",
        cursor=json.dumps({"done": cursor}),
        window_start="2026-11-20T00:00:00Z",
        window_end="2026-11-21T00:00:00Z",
        **args,
    )


def test_the_spider_fetches_the_missed_nights_with_its_window_and_says_so():
    spider = _spider(done(NIGHT - timedelta(days=2)))
    assert spider.since == NIGHT - timedelta(days=2)
    assert spider.folded == {"start": "2026-11-18T00:00:00Z", "end": "2026-11-20T00:00:00Z"}
    assert "submittedDate:[202611180000 TO 202611210000]" in spider.search_query()


def test_an_explicit_since_is_taken_as_given():
    spider = _spider(done(NIGHT - timedelta(days=2)), since="2026-11-20T00:00:00Z")
    assert spider.since == NIGHT and spider.folded is None
