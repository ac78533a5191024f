"""A failed night of ``freshlm_crawl`` reaches on-call as exactly one Slack alert, under a real
Airflow: the failed task's, naming it and its error, with a button to its log."""

from __future__ import annotations

import time

import pytest
import requests

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAG_ID = "freshlm_crawl"


def test_a_refused_crawl_plan_fails_the_run_and_posts_one_alert_naming_the_task_and_its_error(
    airflow_client, world_at_start
):
    client = airflow_client
    client.wait_for_dags([DAG_ID])
    client.unpause(DAG_ID)
    requests.delete(f"{world_at_start.url}/_world/slack/messages", timeout=5).raise_for_status()
    run_id = "test__crawl__alerts_once"
    # A window that ends before it starts: plan_crawl refuses it (no retries), nothing crawls.
    client.trigger(
        DAG_ID,
        conf={"window_start": "2026-11-03T00:00:00Z", "window_end": "2026-11-02T00:00:00Z"},
        run_id=run_id,
    )
    final = client.wait_for_run(DAG_ID, run_id, timeout_s=180)
    assert final["state"] == "failed"
    assert "is not before window_end" in client.task_log(DAG_ID, run_id, "plan_crawl")
    time.sleep(5)  # a second, later alert (a downstream task failing too) would land by now
    messages = requests.get(f"{world_at_start.url}/_world/slack/messages", timeout=5).json()
    assert len(messages) == 1, [m["text"] for m in messages]
    message = messages[0]
    header = message["blocks"][0]["text"]["text"]
    assert header.startswith(":red_circle:") and f"{DAG_ID}.plan_crawl" in header
    assert run_id in message["text"] and "is not before window_end" in message["text"]
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Open log"]
    assert buttons[0]["url"].startswith(client.base_url + f"/dags/{DAG_ID}/runs/{run_id}/tasks/")
    assert "s3://" not in str(message) and "file://" not in str(message)
