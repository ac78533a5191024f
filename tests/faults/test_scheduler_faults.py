"""The Airflow scheduler SIGKILLed mid-run and restarted, under the session's real Airflow.

A ``freshlm_crawl`` run of one source is triggered against the sandbox world with slow feeds;
while its crawl task is running, the scheduler and every process under it (the LocalExecutor's
workers, the task and its Scrapy process) are SIGKILLed, as when the scheduler's container dies.
A new scheduler finds the orphaned task, resets it, and the run completes: one shard holding
every item of the night once, one Asset event for it, one batch, no process of the killed tree
left.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
import requests

from crawlers.run import shard_prefix
from freshlm.records import parse_utc
from freshlm.store import MANIFEST_NAME, open_store
from sandbox.records import day_records
from sandbox.scenario import load_scenario
from tests.support.airflow_server import dump_failure, kill_scheduler, restart_scheduler

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CRAWL, CURATE = "freshlm_crawl", "freshlm_curate"
SOURCE = "tessford-courier"
# Day 3 of the scenario: the DAG tests crawl days 1 and 2 in the same Airflow session.
DAY = 3
WINDOW = {"window_start": "2026-11-04T00:00:00Z", "window_end": "2026-11-05T00:00:00Z"}
RUN_ID = "test__scheduler_killed__night3"
# The new scheduler looks for tasks of dead schedulers every 5 s instead of every 5 minutes;
# a scheduler counts as dead once its heartbeat is older than scheduler_health_check_threshold
# (30 s, Airflow's default, kept), so the orphaned task is reset about 30 s after the kill.
RESTART_ENV = {"AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5"}


def _crawl_ti(client) -> dict | None:
    return next(
        (ti for ti in client.task_instances(CRAWL, RUN_ID) if ti["task_id"] == "crawl"), None
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_scheduler_restarts_and_the_run_completes_without_duplicates(
    airflow, airflow_client, world_at_start, freshlm_home
):
    client, world = airflow_client, world_at_start
    client.wait_for_dags([CRAWL, CURATE])
    curate_paused = next(d for d in client.dags() if d["dag_id"] == CURATE)["is_paused"]
    # The night's batch would schedule curation; this test is about the crawl run alone.
    client.pause(CURATE)
    client.unpause(CRAWL)
    store = open_store((freshlm_home / "store").as_uri())
    prefix = shard_prefix(
        SOURCE,
        parse_utc("window_start", WINDOW["window_start"]),
        parse_utc("window_end", WINDOW["window_end"]),
    )
    assert store.read_manifest(prefix) is None, "the night was crawled before this test"
    # Other tests of the session may have published shards of this source (under names of
    # their own): this run's are the ones that appear from here on.
    shards_before = set(store.list_published(f"raw/{SOURCE}/"))
    events_before = len(client.asset_events(f"freshlm://raw/{SOURCE}"))
    try:
        requests.post(f"{world.url}/_world/clock", json={"now": f"day:{DAY}"}).raise_for_status()
        # Slow feeds: the first four answers take 4 s each, so the crawl is mid-way when the
        # scheduler dies (the retry gets whatever delays are left).
        requests.post(
            f"{world.url}/_world/faults",
            json={"path_prefix": "/news/feeds/", "delay_s": 4, "times": 4},
        ).raise_for_status()
        client.trigger(CRAWL, conf={"sources": [SOURCE], **WINDOW}, run_id=RUN_ID)

        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            ti = _crawl_ti(client)
            spider_started = any(r["path"] == "/robots.txt" for r in world.requests_log())
            if ti is not None and ti["state"] == "running" and spider_started:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the crawl task never started:\n" + dump_failure(client, CRAWL, RUN_ID))
        first_try = ti["try_number"]

        killed = kill_scheduler(airflow)
        assert len(killed) > 1, "the scheduler had no worker or task process to kill"
        restart_scheduler(airflow, RESTART_ENV)

        final = client.wait_for_run(CRAWL, RUN_ID, timeout_s=300)
        assert final["state"] == "success", dump_failure(client, CRAWL, RUN_ID)
    finally:
        # A test that failed between the kill and the restart must not leave the session's
        # Airflow without a scheduler (restart_scheduler refuses while one is running).
        with contextlib.suppress(RuntimeError):
            restart_scheduler(airflow, RESTART_ENV)
        client.clear_queued_asset_events(CURATE)
        if not curate_paused:
            client.unpause(CURATE)

    # The task was run again, not found finished: the killed try did not complete.
    assert _crawl_ti(client)["try_number"] > first_try
    assert not [pid for pid in killed if _alive(pid)], "a process of the killed scheduler lives"
    assert not [
        pid
        for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
        if _alive(pid) and RUN_ID.encode() in _cmdline(pid) and pid not in killed
    ], "a crawl of this run is still running"

    # One new shard for the night, holding every item once, and nothing else under its prefix.
    shards = [p for p in store.list_published(f"raw/{SOURCE}/") if p not in shards_before]
    assert shards == [prefix]
    manifest = store.read_manifest(prefix, verify=True)
    assert sorted(store.list(prefix + "/")) == sorted(
        [manifest.key(f.name) for f in manifest.files] + [f"{prefix}/{MANIFEST_NAME}"]
    ), "the killed try left files beside the published shard"
    records = list(store.read_jsonl(manifest.key("records.jsonl.gz")))
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "an item was stored twice"
    scenario = load_scenario()
    expected = {
        r["title"]
        for r in day_records(scenario, scenario.days[DAY - 1].date)
        if r["source"] == SOURCE
    }
    # Nothing of the night lost (the session's world may also serve a later item in the feed).
    assert expected <= {r["title"] for r in records}

    # One Asset event for the shard and one batch, both from the try that completed.
    events = client.asset_events(f"freshlm://raw/{SOURCE}")[events_before:]
    assert [e["extra"]["shard_uri"] for e in events] == [store.uri_for(prefix)]
    batches = [
        e for e in client.asset_events("freshlm://raw/batch") if e.get("source_run_id") == RUN_ID
    ]
    assert len(batches) == 1 and batches[0]["extra"]["shards"] == [store.uri_for(prefix)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
