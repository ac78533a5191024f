"""``python -m crawlers.run``: one source, one window, one atomically published raw shard."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import requests

from crawlers.run import cursor_key, shard_prefix
from freshlm.airflow_local import free_port
from freshlm.records import RECORD_SCHEMA, parse_utc
from freshlm.store import open_store

REPO = Path(__file__).resolve().parents[2]
DAY1 = ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")
DAY2 = ("2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z")
DAY4 = ("2026-11-05T00:00:00Z", "2026-11-06T00:00:00Z")
CATEGORIES = {"cs.CL", "cs.LG", "cs.AI"}  # the "papers" source's

SOURCES = """
defaults: {politeness: {download_delay_s: 0, autothrottle: false, concurrency_per_domain: 4}}
sources:
  - name: courier
    spider: news
    args:
      feeds:
        - ${FRESHLM_WORLD_URL}/news/feeds/tech.rss
        - ${FRESHLM_WORLD_URL}/news/feeds/local.rss
  - name: social
    spider: mastodon
    args: {instance: "${FRESHLM_WORLD_URL}", hashtags: [OrrinPulse]}
  - name: papers
    spider: arxiv
    args: {api_url: "${FRESHLM_WORLD_URL}/api/query", categories: [cs.CL, cs.LG, cs.AI]}
  - name: papers-hurried
    spider: arxiv
    args:
      api_url: "${FRESHLM_WORLD_URL}/api/query"
      categories: [cs.CL, cs.LG, cs.AI]
      page_size: 2
    politeness: {download_delay_s: 0.1, concurrency_per_domain: 4}
  - name: gone
    spider: news
    args: {feeds: ["http://127.0.0.1:${DEAD_PORT}/feed.rss"]}
    politeness: {timeout_s: 3}
"""


@pytest.fixture
def env(tmp_path: Path, world_at_start) -> dict[str, str]:
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES)
    dead_port = str(free_port())
    return dict(
        os.environ,
        FRESHLM_HOME=str(tmp_path / "home"),
        FRESHLM_WORLD_URL=world_at_start.url,
        FRESHLM_SOURCES_FILE=str(sources),
        DEAD_PORT=dead_port,
        FRESHLM_CRAWL_ALLOW_PRIVATE=f"{world_at_start.url.split('//')[1]},127.0.0.1:{dead_port}",
    )


def crawl(
    env: dict[str, str], source: str, window=DAY1, *extra: str
) -> tuple[int, dict | None, str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "crawlers.run",
            "--source",
            source,
            "--window-start",
            window[0],
            "--window-end",
            window[1],
            "--run-id",
            "test",
            *extra,
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FRESHLM-SHARD ")]
    summary = json.loads(lines[-1].removeprefix("FRESHLM-SHARD ")) if lines else None
    return proc.returncode, summary, proc.stderr


def when(text: str) -> datetime:
    return parse_utc("time", text)


def _night_papers(world, window) -> set[str]:
    start, end = when(window[0]), when(window[1])
    return {
        p.arxiv_id
        for p in world.scenario.papers_at(world.clock.now())
        if start <= p.published_at < end and set(p.categories) & CATEGORIES
    }


def requests_seen(world) -> int:
    return len(requests.get(f"{world.url}/_world/requests", timeout=5).json())


@pytest.mark.parametrize("source", ["courier", "social", "papers"])
def test_shard_is_published_with_counts_and_the_cursor_moves_after(env, world_at_start, source):
    requests.post(f"{world_at_start.url}/_world/clock", json={"now": "day:1"}).raise_for_status()
    rc, summary, stderr = crawl(env, source)
    assert rc == 0, stderr[-3000:]
    store = open_store((Path(env["FRESHLM_HOME"]) / "store").as_uri())
    prefix = shard_prefix(source, parse_utc("s", DAY1[0]), parse_utc("e", DAY1[1]))
    manifest = store.read_manifest(prefix, verify=True)
    assert manifest is not None and manifest.kind == "raw-shard"
    records = list(store.read_jsonl(manifest.key("records.jsonl.gz")))
    assert len(records) == manifest.fields["records"] == summary["records"] > 0
    assert set(records[0]) == set(RECORD_SCHEMA["required"])
    assert all(DAY1[0] <= r["published_at"] < DAY1[1] for r in records)
    fields = manifest.fields
    assert fields["window"] == {"start": DAY1[0], "end": DAY1[1]}
    assert fields["pages"] > 0 and fields["pages_per_s"] > 0 and fields["duration_s"] > 0
    assert fields["cursor_before"] == {} and fields["cursor_after"]
    assert store.read_json(cursor_key(source))["cursor"] == fields["cursor_after"]

    # A rerun of the same window finds the published shard and fetches nothing.
    before = requests_seen(world_at_start)
    rc, again, stderr = crawl(env, source)
    assert rc == 0, stderr[-3000:]
    assert again["already_published"] is True and again["records"] == summary["records"]
    assert requests_seen(world_at_start) == before


def test_unreachable_source_fails_with_the_spiders_error_and_publishes_nothing(env):
    rc, summary, stderr = crawl(env, "gone")
    assert rc == 3 and summary is None
    assert "crawl: source 'gone' unreachable" in stderr
    assert "connection refused" in stderr
    store = open_store((Path(env["FRESHLM_HOME"]) / "store").as_uri())
    assert list(store.list_published("raw/")) == []
    assert not store.exists(cursor_key("gone"))


def test_garbage_from_a_source_is_quarantined_and_counted(env, world_at_start):
    requests.post(f"{world_at_start.url}/_world/clock", json={"now": "day:1"}).raise_for_status()
    requests.post(
        f"{world_at_start.url}/_world/faults",
        json={
            "path_prefix": "/news/feeds/tech.rss",
            "status": 200,
            "times": 10,
            "body": "\x00\x13garbage<<<not xml at all",
            "content_type": "application/rss+xml",
        },
    ).raise_for_status()
    rc, summary, stderr = crawl(env, "courier")
    assert rc == 0, stderr[-3000:]
    assert sum(summary["quarantined"].values()) >= 1, summary
    assert summary["records"] > 0  # the local feed still delivered its items
    store = open_store((Path(env["FRESHLM_HOME"]) / "store").as_uri())
    prefix = shard_prefix("courier", parse_utc("s", DAY1[0]), parse_utc("e", DAY1[1]))
    kept = list(store.read_jsonl(store.read_manifest(prefix).key("quarantine.jsonl.gz")))
    assert any("garbage" in q["raw"] for q in kept), kept


def test_bad_arguments_are_named(env):
    rc, _, stderr = crawl(env, "courier", window=("2026-11-03", "2026-11-02"))
    assert rc == 2 and "is not before --window-end" in stderr
    rc, _, stderr = crawl(env, "bluesky")
    assert rc == 2 and "unknown sources ['bluesky']" in stderr


def test_a_forced_recrawl_that_fails_keeps_the_published_shard(env, world_at_start):
    requests.post(f"{world_at_start.url}/_world/clock", json={"now": "day:1"}).raise_for_status()
    rc, first, stderr = crawl(env, "courier")
    assert rc == 0, stderr[-3000:]
    store = open_store((Path(env["FRESHLM_HOME"]) / "store").as_uri())
    prefix = shard_prefix("courier", parse_utc("s", DAY1[0]), parse_utc("e", DAY1[1]))
    before = store.read_manifest(prefix, verify=True)

    requests.post(
        f"{world_at_start.url}/_world/faults",
        json={"path_prefix": "/news/", "status": 503, "times": 100},
    ).raise_for_status()
    rc, _, stderr = crawl(env, "courier", DAY1, "--force")
    assert rc == 3, stderr[-3000:]
    after = store.read_manifest(prefix, verify=True)
    assert after is not None and after.content_sha256 == before.content_sha256

    # Once the source is back, --force replaces the shard with the window fetched again.
    requests.delete(f"{world_at_start.url}/_world/faults").raise_for_status()
    rc, again, stderr = crawl(env, "courier", DAY1, "--force")
    assert rc == 0, stderr[-3000:]
    assert again["records"] == first["records"]
    assert store.read_manifest(prefix, verify=True).fields["records"] == first["records"]


def test_a_sources_file_cannot_make_the_arxiv_crawl_faster_than_its_terms(env, world_at_start):
    """arXiv asks for one request every 3 seconds: a source's shorter delay does not apply."""
    requests.post(f"{world_at_start.url}/_world/clock", json={"now": "day:1"}).raise_for_status()
    rc, _, stderr = crawl(env, "papers-hurried")
    assert rc == 0, stderr[-3000:]
    log = requests.get(f"{world_at_start.url}/_world/requests", timeout=5).json()
    times = [datetime.fromisoformat(e["at"]) for e in log if e["path"] == "/api/query"]
    assert len(times) >= 2, "too few pages to see the delay"
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 2.9, gaps


def test_nights_the_scheduler_missed_are_fetched_by_the_next_arxiv_crawl(env, world_at_start):
    """``catchup=False``: nights 2 and 3 never ran, so night 4's arXiv crawl starts where the
    cursor says night 1's ended and no paper of the missed nights is lost."""
    world = world_at_start
    requests.post(f"{world.url}/_world/clock", json={"now": "day:1"}).raise_for_status()
    rc, _, stderr = crawl(env, "papers")
    assert rc == 0, stderr[-3000:]
    requests.post(f"{world.url}/_world/clock", json={"now": "day:4"}).raise_for_status()
    rc, summary, stderr = crawl(env, "papers", DAY4)
    assert rc == 0, stderr[-3000:]

    store = open_store((Path(env["FRESHLM_HOME"]) / "store").as_uri())
    manifest = store.read_manifest(shard_prefix("papers", *map(when, DAY4)), verify=True)
    # The shard stays the night's (reruns find it); what it also covers is recorded.
    assert manifest.fields["window"] == {"start": DAY4[0], "end": DAY4[1]}
    assert manifest.fields["folded"] == summary["folded"] == {"start": DAY1[1], "end": DAY4[0]}
    got = {r["meta"]["arxiv_id"] for r in store.read_jsonl(manifest.key("records.jsonl.gz"))}
    missed_and_tonight = _night_papers(world, (DAY1[1], DAY4[1]))
    assert got == missed_and_tonight and summary["records"] == len(got)
    assert got > _night_papers(world, DAY4)  # more than tonight's papers alone
    done = store.read_json(cursor_key("papers"))["cursor"]["done"]
    assert {"since": DAY1[1], "until": DAY4[1]} in done

    # A backfill of a missed night afterwards finds it fetched and asks the API nothing.
    before = requests_seen(world)
    rc, backfill, stderr = crawl(env, "papers", DAY2)
    assert rc == 0, stderr[-3000:]
    assert backfill["records"] == 0 and backfill["skipped"] == {"window_already_crawled": 1}
    assert "folded" not in backfill
    assert requests_seen(world) == before
