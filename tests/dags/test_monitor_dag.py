"""freshlm_monitor under a real Airflow, on the session's sandbox store with a missed night
added: the check reports the gap and the window never curated, alerts Slack with what to do,
asks the canaries of a real model server, keeps its history, and, the lag being past the
threshold, triggers the retraining path."""

from __future__ import annotations

import contextlib

import pytest
import requests

from freshlm.monitoring.history import read_history
from freshlm.store import open_store
from sandbox.base_model import bootstrap_demo_base
from tests.dags.base_model import SMALL_BASE
from tests.serving.inprocess import serving
from tests.support.airflow_server import dump_failure

pytestmark = [pytest.mark.airflow]

MONITOR = "freshlm_monitor"
RETRAIN_DAGS = ("freshlm_train", "freshlm_curate")
# Nights after every other test's: 2026-12-01 crawled, 2026-12-02 missed, 2026-12-03 crawled
# but never curated.
NIGHTS = {
    "2026-12-01": "2026-12-01T18:00:00Z",
    "2026-12-03": "2026-12-03T20:00:00Z",
}
MISSED = {"start": "2026-12-02T00:00:00Z", "end": "2026-12-03T00:00:00Z"}


def _crawl(store) -> None:
    for date, newest in NIGHTS.items():
        year, month, day = (int(p) for p in date.split("-"))
        window = {
            "start": f"{date}T00:00:00Z",
            "end": f"{year}-{month:02d}-{day + 1:02d}T00:00:00Z",
        }
        record = {"id": f"{day:032x}", "published_at": newest, "text": "monitor test"}
        with store.publisher(f"raw/monitor-test/{date}", kind="raw-shard") as pub:
            pub.write_jsonl("records.jsonl.gz", [record])
            pub.set_manifest_fields(source="monitor-test", window=window, records=1)


def test_monitor_reports_a_missed_night_alerts_and_triggers_retraining(
    airflow_client, freshlm_home, world, tmp_path
):
    client = airflow_client
    client.wait_for_dags([MONITOR, *RETRAIN_DAGS])
    store = open_store((freshlm_home / "store").as_uri())
    bootstrap_demo_base(store, config=SMALL_BASE)
    _crawl(store)
    paused = {d: client.request("GET", f"/dags/{d}")["is_paused"] for d in RETRAIN_DAGS}
    for dag_id in RETRAIN_DAGS:  # the triggered run is inspected, not run
        client.pause(dag_id)
    requests.delete(f"{world.url}/_world/slack/messages", timeout=5).raise_for_status()
    run = "test__monitor"
    client.unpause(MONITOR)
    try:
        with serving(store.root_uri, tmp_path) as url:
            client.trigger(MONITOR, conf={"serve_url": url}, run_id=run)
            final = client.wait_for_run(MONITOR, run, timeout_s=300)
        assert final["state"] == "success", dump_failure(client, MONITOR, run)
        check = client.xcom(MONITOR, run, "check")
        fresh = check["freshness"]
        assert MISSED in fresh["gaps"]
        assert any(u["window"]["start"] == "2026-12-03T00:00:00Z" for u in fresh["uncurated"])
        assert fresh["newest_document"] == "2026-12-03T20:00:00Z"
        assert fresh["lag_hours"] > check["thresholds"]["max_lag_hours"]
        assert check["canaries"]["error"] is None, check["canaries"]
        assert check["canaries"]["versions"] in ([], [fresh["production"]])
        log = client.task_log(MONITOR, run, "check")
        assert "missed-crawl" in log and "missed-curation" in log

        messages = requests.get(f"{world.url}/_world/slack/messages", timeout=5).json()
        alerts = [m for m in messages if "FreshLM monitor" in m["text"]]
        mine = [m for m in alerts if f"/runs/{run}/" in str(m["blocks"])]
        assert len(mine) == 1, alerts
        text = mine[0]["text"] + str(mine[0]["blocks"])
        assert "never crawled" in text and "freshlm_crawl" in text
        assert "never curated" in text and "freshlm_curate" in text

        history = read_history(store)
        assert history[-1]["run_id"] == run and history[-1]["freshness"] == fresh

        plan = check["retrain"]
        assert plan["dag_id"] in RETRAIN_DAGS
        assert client.task_states(MONITOR, run)["retrain"] == "success"
        triggered = client.run(plan["dag_id"], f"{MONITOR}__{run}")
        assert triggered["conf"] == plan["conf"]
    finally:
        _clean_up(client, paused)


def _clean_up(client, paused: dict[str, bool]) -> None:
    """Leave no monitor run behind, nor a retraining run it triggered: unpausing the DAG also
    starts a scheduled run for the latest interval (FRESHLM_MONITOR_SCHEDULE), which triggers
    retraining too; later tests must find the retraining DAGs as they were."""
    for other in client.request("GET", f"/dags/{MONITOR}/dagRuns")["dag_runs"]:
        client.wait_for_run(MONITOR, other["dag_run_id"], timeout_s=300)
    client.pause(MONITOR)
    for dag_id in RETRAIN_DAGS:
        for triggered in client.request("GET", f"/dags/{dag_id}/dagRuns")["dag_runs"]:
            if triggered["dag_run_id"].startswith(f"{MONITOR}__"):
                # The client cannot decode the empty body of a successful delete (204).
                with contextlib.suppress(ValueError):
                    client.request("DELETE", f"/dags/{dag_id}/dagRuns/{triggered['dag_run_id']}")
        if not paused[dag_id]:
            client.unpause(dag_id)
