"""Crawl → curate → gate under a real Airflow: a good night publishes, the bad night is refused."""

from __future__ import annotations

import time

import pytest
import requests

from freshlm.store import open_store
from tests.support.airflow_server import dump_failure

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CRAWL, CURATE = "freshlm_crawl", "freshlm_curate"
NIGHTS = {
    1: {"window_start": "2026-11-02T00:00:00Z", "window_end": "2026-11-03T00:00:00Z"},
    2: {"window_start": "2026-11-03T00:00:00Z", "window_end": "2026-11-04T00:00:00Z"},
}


def _crawl_then_curate(client, world, night: int, tag: str) -> dict:
    """Run a night's crawl; return the curate run its batch Asset event triggered."""
    requests.post(f"{world.url}/_world/clock", json={"now": f"day:{night}"}).raise_for_status()
    before = {r["dag_run_id"] for r in _runs(client, CURATE)}
    run_id = f"test__{tag}__night{night}"
    client.trigger(CRAWL, conf=NIGHTS[night], run_id=run_id)
    final = client.wait_for_run(CRAWL, run_id, timeout_s=420)
    assert final["state"] == "success", dump_failure(client, CRAWL, run_id)
    # Earlier tests' crawls may have queued batch events for this DAG too: find the run that
    # curates this night's window.
    deadline = time.monotonic() + 900
    seen: set[str] = set(before)
    curated: dict[str, object] = {}  # run id -> its window, or why it has none
    while time.monotonic() < deadline:
        for run in _runs(client, CURATE):
            if run["dag_run_id"] in seen:
                continue
            seen.add(run["dag_run_id"])
            final = client.wait_for_run(CURATE, run["dag_run_id"], timeout_s=420)
            try:
                window = client.xcom(CURATE, run["dag_run_id"], "resolve")["window"]
            except Exception as exc:
                curated[run["dag_run_id"]] = f"{final['state']}, no resolve XCom: {exc}"
                continue
            curated[run["dag_run_id"]] = window
            if window["start"] == NIGHTS[night]["window_start"]:
                return final
        time.sleep(1)
    raise AssertionError(f"no freshlm_curate run curated night {night}; runs seen: {curated}")


def _runs(client, dag_id: str) -> list[dict]:
    return client.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]


def test_good_night_publishes_and_bad_night_is_quarantined_with_a_slack_alert(
    airflow_client, world_at_start, freshlm_home
):
    client = airflow_client
    client.wait_for_dags([CRAWL, CURATE])
    # Crawl runs of other tests announced batches while this DAG was paused; drop them so the
    # runs below are exactly this test's nights.
    client.clear_queued_asset_events(CURATE)
    client.unpause(CRAWL)
    client.unpause(CURATE)
    store = open_store((freshlm_home / "store").as_uri())

    good = _crawl_then_curate(client, world_at_start, 1, "curate")
    assert good["state"] == "success", dump_failure(client, CURATE, good["dag_run_id"])
    published = client.xcom(CURATE, good["dag_run_id"], "publish_dataset")
    manifest = store.read_manifest(f"datasets/{published['dataset_id']}", verify=True)
    assert manifest.fields["window"] == {
        "start": NIGHTS[1]["window_start"],
        "end": NIGHTS[1]["window_end"],
    }
    assert {s["source"] for s in manifest.fields["shards"]} == {
        "tessford-courier",
        "tessford-social",
        "arxiv-cs",
    }
    assert store.exists(manifest.fields["gate"]["data_docs"].removeprefix(store.root_uri + "/"))
    events = client.asset_events("freshlm://datasets")
    assert events and events[-1]["extra"]["dataset_id"] == published["dataset_id"]

    requests.delete(f"{world_at_start.url}/_world/slack/messages").raise_for_status()
    bad = _crawl_then_curate(client, world_at_start, 2, "curate")
    assert bad["state"] == "failed"
    states = client.task_states(CURATE, bad["dag_run_id"])
    assert states["quarantine_batch"] == "failed" and states["publish_dataset"] == "skipped"
    assert len(client.asset_events("freshlm://datasets")) == len(events)  # nothing published

    messages = requests.get(f"{world_at_start.url}/_world/slack/messages").json()
    assert len(messages) == 1, messages  # the gate's alert, not a second task-failure alert
    text = messages[0]["text"] + str(messages[0]["blocks"])
    assert "CRITICAL" in text and "duplicate_ratio" in text
    assert "observed" in text.lower() and "expected" in text.lower()
    assert bad["dag_run_id"] in text and "2026-11-03T00:00:00Z" in text
    assert "/tasks/gate_batch" in text and "data_docs/index.html" in text
    assert "accept_reason" in text
    quarantined = list(store.list_published("quarantine/batches/"))
    assert len(quarantined) == 1
