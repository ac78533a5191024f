"""``freshlm_crawl`` run by a real Airflow against the sandbox world, night after night."""

from __future__ import annotations

import pytest
import requests

from freshlm.store import open_store
from tests.support.airflow_server import dump_failure

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "freshlm_crawl"
SOURCES = ["arxiv-cs", "tessford-courier", "tessford-social"]
NIGHT1 = {"window_start": "2026-11-02T00:00:00Z", "window_end": "2026-11-03T00:00:00Z"}
NIGHT2 = {"window_start": "2026-11-03T00:00:00Z", "window_end": "2026-11-04T00:00:00Z"}


def _run(client, run_id: str, conf: dict) -> dict:
    client.trigger(DAG_ID, conf=conf, run_id=run_id)
    final = client.wait_for_run(DAG_ID, run_id, timeout_s=420)
    assert final["state"] == "success", dump_failure(client, DAG_ID, run_id)
    return client.xcom(DAG_ID, run_id, "announce_batch")


def _records(store, shard_uri: str) -> list[dict]:
    prefix = shard_uri.removeprefix(store.root_uri + "/")
    manifest = store.read_manifest(prefix, verify=True)
    assert manifest is not None, f"{shard_uri} has no manifest"
    return list(store.read_jsonl(manifest.key("records.jsonl.gz")))


def test_two_nights_fetch_each_item_once_and_announce_assets(
    airflow_client, world_at_start, freshlm_home
):
    store = open_store((freshlm_home / "store").as_uri())
    airflow_client.wait_for_dags([DAG_ID])
    airflow_client.unpause(DAG_ID)

    requests.post(f"{world_at_start.url}/_world/clock", json={"now": "day:1"}).raise_for_status()
    night1 = _run(airflow_client, "test__crawl__night1", NIGHT1)
    assert night1["sources"] == SOURCES and night1["failed_sources"] == []
    first = {uri: _records(store, uri) for uri in night1["shards"]}
    assert all(first.values()), {u: len(r) for u, r in first.items()}
    seen_ids = {r["id"] for recs in first.values() for r in recs}
    for recs in first.values():
        assert all(NIGHT1["window_start"] <= r["published_at"] < NIGHT1["window_end"] for r in recs)

    # Night 2: the world moved a day; only the new day's items are fetched.
    requests.post(f"{world_at_start.url}/_world/clock", json={"now": "day:2"}).raise_for_status()
    night2 = _run(airflow_client, "test__crawl__night2", NIGHT2)
    second = {uri: _records(store, uri) for uri in night2["shards"]}
    assert sum(map(len, second.values())) > 0
    for recs in second.values():
        assert all(NIGHT2["window_start"] <= r["published_at"] < NIGHT2["window_end"] for r in recs)
        assert not {r["id"] for r in recs} & seen_ids, "night 2 re-fetched night-1 items"
    # The bad day's malformed feed was quarantined and counted, not fatal.
    news2 = store.read_manifest(
        next(u for u in night2["shards"] if "/tessford-courier/" in u).removeprefix(
            store.root_uri + "/"
        )
    )
    assert sum(news2.fields["quarantined"].values()) > 0, news2.fields

    # Re-running night 1 publishes nothing new and fetches nothing.
    rerun = _run(airflow_client, "test__crawl__night1_again", NIGHT1)
    assert rerun["shards"] == night1["shards"]

    # Each source's shard is an Asset whose events carry the counts.
    for source in SOURCES:
        events = airflow_client.asset_events(f"freshlm://raw/{source}")
        assert len(events) >= 2, source
        assert events[0]["extra"]["source"] == source
        assert isinstance(events[0]["extra"]["records"], int)
    batch_events = airflow_client.asset_events("freshlm://raw/batch")
    assert batch_events[-1]["extra"]["shards"] == night1["shards"]
