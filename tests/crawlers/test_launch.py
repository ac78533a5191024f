"""The crawl DAG's task logic: planning windows from Params, batching shards, failing clearly."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest

from crawlers import child_process, launch
from crawlers.launch import CrawlFailed, CrawlPlanError, batch_summary, plan

D1 = datetime(2026, 11, 2, tzinfo=UTC)
D2 = datetime(2026, 11, 3, tzinfo=UTC)


def test_plan_uses_the_data_interval_and_all_sources():
    p = plan({"sources": [], "window_start": None, "window_end": None}, D1, D2)
    assert p["window"] == {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
    assert p["sources"] == ["tessford-courier", "tessford-social", "arxiv-cs"]


def test_plan_window_override_and_source_selection():
    p = plan(
        {
            "sources": ["arxiv-cs"],
            "window_start": "2026-11-04T00:00:00+00:00",
            "window_end": "2026-11-05T00:00:00Z",
        },
        D1,
        D2,
    )
    assert p == {
        "window": {"start": "2026-11-04T00:00:00Z", "end": "2026-11-05T00:00:00Z"},
        "sources": ["arxiv-cs"],
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window_start": "2026-11-04T00:00:00Z"}, "give both window_start and window_end"),
        (
            {"window_start": "2026-11-05T00:00:00Z", "window_end": "2026-11-04T00:00:00Z"},
            "is not before window_end",
        ),
        ({"window_start": "yesterday", "window_end": "today"}, "window_start='yesterday'"),
        ({"sources": ["nope"]}, "unknown sources ['nope']"),
    ],
)
def test_plan_refuses_inconsistent_params(params, message):
    with pytest.raises(ValueError) as err:
        plan({"sources": [], **params}, D1, D2)
    assert message in str(err.value)


def test_plan_without_interval_or_override_says_how_to_trigger():
    with pytest.raises(CrawlPlanError, match="trigger it with window_start and window_end"):
        plan({}, None, None)


def test_batch_lists_published_shards_and_failed_sources():
    crawl_plan = {"window": {"start": "a", "end": "b"}, "sources": ["x", "y", "z"]}
    shards = [
        {"source": "x", "shard_uri": "file:///s/raw/x/w", "records": 3, "quarantined": {"a": 1}},
        {"source": "z", "shard_uri": "file:///s/raw/z/w", "records": 4, "quarantined": {}},
    ]
    batch = batch_summary(crawl_plan, shards)
    assert batch["shards"] == ["file:///s/raw/x/w", "file:///s/raw/z/w"]
    assert batch["failed_sources"] == ["y"]
    assert (batch["records"], batch["quarantined"]) == (7, 1)
    with pytest.raises(CrawlFailed, match="every source failed"):
        batch_summary(crawl_plan, [])


def test_subprocess_failure_surfaces_the_crawlers_own_message(monkeypatch):
    """A failing child's 'crawl: ...' line becomes the task's error, not a bare exit code."""
    script = (
        "import sys; print('starting'); print('crawl: source x unreachable: refused'); sys.exit(3)"
    )
    monkeypatch.setattr(launch, "sys", type("S", (), {"executable": sys.executable}))
    real_popen = child_process.subprocess.Popen

    def fake_popen(cmd, **kwargs):
        return real_popen([sys.executable, "-c", script], **kwargs)

    monkeypatch.setattr(child_process.subprocess, "Popen", fake_popen)
    with pytest.raises(CrawlFailed) as err:
        launch.crawl_in_subprocess("x", {"start": "a", "end": "b"}, "run1")
    assert str(err.value) == "crawl of x unreachable: source x unreachable: refused"
