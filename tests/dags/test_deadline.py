"""The nightly deadline and the execution timeout, under a real Airflow: a night still running at
its deadline posts one Slack alert naming the task it is stuck on, and that task, once over its
``execution_timeout``, fails and posts one more.

The deployment runs one small DAG built like FreshLM's (``dag_defaults()`` and
``nightly_deadline()``, with the FreshLM plugin that registers the deadline's reference) whose
only task hangs. The DAG file is written once Airflow is up, with its deadline a few seconds
after the run the test then triggers: the first such time of day after the run is created.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from freshlm.airflow_client import AirflowClient
from freshlm.airflow_local import LocalAirflow, free_port
from freshlm.alerts.embedded import sink_connection_env

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "freshlm_late_night"
TIMEOUT_S = 25
#: From writing the DAG file to the deadline: the DAG processor parses it (every few seconds
#: here) and the test triggers the run well before.
DEADLINE_AFTER_S = 20
LATE_NIGHT_DAG = '''
"""A night that hangs: one task sleeping past its execution_timeout."""
from datetime import UTC, datetime, time, timedelta

from airflow.sdk import dag, task

from freshlm.alerts.deadline import nightly_deadline
from freshlm.artifacts import dag_defaults


@dag(
    dag_id="{dag_id}",
    schedule=None,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    default_args=dag_defaults(retries=0, execution_timeout=timedelta(seconds={timeout_s})),
    deadline=nightly_deadline(time.fromisoformat("{deadline}")),
)
def late_night():
    @task
    def crawl_hangs():
        import time

        time.sleep(600)

    crawl_hangs()


late_night()
'''


@pytest.fixture(scope="module")
def late_airflow(
    tmp_path_factory: pytest.TempPathFactory, world, freshlm_home: Path
) -> Iterator[AirflowClient]:
    dags = tmp_path_factory.mktemp("late-dags")
    deployment = LocalAirflow(
        tmp_path_factory.mktemp("late-airflow"),
        free_port(),
        dags_folder=dags,
        fast_parsing=True,
        extra_env={
            "PYTHONPATH": str(REPO),
            "FRESHLM_HOME": str(freshlm_home),
            "FRESHLM_STORE_URI": (freshlm_home / "store").as_uri(),
            "FRESHLM_CRAWL_SCHEDULE": "none",
            "FRESHLM_MONITOR_SCHEDULE": "none",
            "PYTHONDONTWRITEBYTECODE": "1",
            **sink_connection_env("freshlm_slack", world.url),
        },
    )
    deployment.start()
    try:
        deployment.wait_ready()
        client = AirflowClient(deployment.base_url, deployment.username, deployment.password)
        client.token()
        deadline = datetime.now(UTC) + timedelta(seconds=DEADLINE_AFTER_S)
        (dags / "late_night.py").write_text(
            LATE_NIGHT_DAG.format(
                dag_id=DAG_ID, timeout_s=TIMEOUT_S, deadline=deadline.time().isoformat("seconds")
            )
        )
        yield client
    finally:
        deployment.stop()


def _messages(world) -> list[dict]:
    return requests.get(f"{world.url}/_world/slack/messages", timeout=5).json()


def _wait_for_messages(world, count: int, timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = _messages(world)
        if len(messages) >= count:
            return messages
        time.sleep(1)
    return _messages(world)


def test_a_late_night_alerts_where_it_is_stuck_and_a_timed_out_task_fails_and_alerts(
    late_airflow: AirflowClient, world_at_start
):
    client = late_airflow
    client.wait_for_dags([DAG_ID])
    client.unpause(DAG_ID)
    requests.delete(f"{world_at_start.url}/_world/slack/messages", timeout=5).raise_for_status()
    run_id = "test__late_night"
    client.trigger(DAG_ID, run_id=run_id)

    # The deadline (seconds after the run was created) passes while the task still sleeps.
    late = _wait_for_messages(world_at_start, 1, timeout_s=TIMEOUT_S + 60)
    assert late, "no Slack alert for the missed deadline"
    first = late[0]
    header = first["blocks"][0]["text"]["text"]
    assert "late" in header and DAG_ID in header, first
    shown = first["text"] + str(first["blocks"])
    assert run_id in shown and "`crawl_hangs`: running" in shown
    button_urls = [
        e["url"] for b in first["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert button_urls == [f"{client.base_url.rstrip('/')}/dags/{DAG_ID}/runs/{run_id}"]

    # Past its execution_timeout the task fails, and the failure callback alerts once.
    final = client.wait_for_run(DAG_ID, run_id, timeout_s=TIMEOUT_S + 120)
    assert final["state"] == "failed"
    messages = _wait_for_messages(world_at_start, 2, timeout_s=30)
    time.sleep(5)  # nothing else follows
    messages = _messages(world_at_start)
    assert len(messages) == 2, [m["text"] for m in messages]
    failure = messages[1]
    assert "crawl_hangs" in failure["blocks"][0]["text"]["text"]
    assert "Timeout" in failure["text"], failure["text"]
