"""The nightly deadline and the execution timeout, under a real Airflow: a night still running at
its deadline posts one Slack alert naming the task it is stuck on, and that task, once over its
``execution_timeout``, fails and posts one more; a night that failed before its deadline posts
its failure only.

The deployment runs two small DAGs built like FreshLM's (``dag_defaults()`` and
``nightly_deadline()``, with the FreshLM plugin that registers the deadline's reference): one
whose only task hangs, one whose only task fails at once. The DAG file is written once Airflow
is up, with their deadlines a few seconds after the runs the test then triggers: the first
such time of day after each run is created.
"""

from __future__ import annotations

import dataclasses
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
FAILED_DAG_ID = "freshlm_failed_night"
TIMEOUT_S = 25
#: From writing the DAG file to the deadline: the DAG processor parses it (every few seconds
#: here) and the test triggers the run well before.
DEADLINE_AFTER_S = 20
#: The failing night's deadline comes later, so its run has surely failed by then.
FAILED_DEADLINE_AFTER_S = 45
LATE_NIGHT_DAG = '''
"""A night that hangs: one task sleeping past its execution_timeout; and a night that fails."""
from datetime import UTC, datetime, time, timedelta

from airflow.sdk import dag, task

from freshlm.alerts.deadline import nightly_deadline
from freshlm.artifacts import dag_defaults


@dag(
    dag_id="{failed_dag_id}",
    schedule=None,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    default_args=dag_defaults(retries=0),
    deadline=nightly_deadline(time.fromisoformat("{failed_deadline}")),
)
def failed_night():
    @task
    def crawl_fails():
        raise RuntimeError("the feed is down")

    crawl_fails()


failed_night()


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


@dataclasses.dataclass(frozen=True)
class Deployment:
    client: AirflowClient
    deadline: datetime  # the hanging night's
    failed_deadline: datetime  # the failing night's


@pytest.fixture(scope="module")
def late_airflow(
    tmp_path_factory: pytest.TempPathFactory, world, freshlm_home: Path
) -> Iterator[Deployment]:
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
        written = datetime.now(UTC)
        deadline = written + timedelta(seconds=DEADLINE_AFTER_S)
        failed_deadline = written + timedelta(seconds=FAILED_DEADLINE_AFTER_S)
        (dags / "late_night.py").write_text(
            LATE_NIGHT_DAG.format(
                dag_id=DAG_ID,
                timeout_s=TIMEOUT_S,
                deadline=deadline.time().isoformat("seconds"),
                failed_dag_id=FAILED_DAG_ID,
                failed_deadline=failed_deadline.time().isoformat("seconds"),
            )
        )
        yield Deployment(client, deadline, failed_deadline)
    finally:
        deployment.stop()


def _messages(world) -> list[dict]:
    return requests.get(f"{world.url}/_world/slack/messages", timeout=5).json()


def _header(message: dict) -> str:
    return message["blocks"][0]["text"]["text"]


def _headers(messages: list[dict]) -> list[str]:
    return [_header(m) for m in messages]


def _wait_for_header(world, *words: str, timeout_s: float) -> dict | None:
    """The first Slack message whose header holds every one of ``words``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in _messages(world):
            if all(w in _header(message) for w in words):
                return message
        time.sleep(1)
    return None


def test_a_late_night_alerts_where_it_is_stuck_and_a_timed_out_task_fails_and_alerts(
    late_airflow: Deployment, world_at_start
):
    client = late_airflow.client
    client.wait_for_dags([DAG_ID, FAILED_DAG_ID])
    client.unpause(DAG_ID)
    client.unpause(FAILED_DAG_ID)
    requests.delete(f"{world_at_start.url}/_world/slack/messages", timeout=5).raise_for_status()
    run_id, failed_run_id = "test__late_night", "test__failed_night"
    client.trigger(FAILED_DAG_ID, run_id=failed_run_id)
    client.trigger(DAG_ID, run_id=run_id)
    failed = client.wait_for_run(FAILED_DAG_ID, failed_run_id, timeout_s=60)
    assert failed["state"] == "failed"
    assert datetime.now(UTC) < late_airflow.failed_deadline, "it ended after its deadline"

    # The deadline (seconds after the run was created) passes while the task still sleeps.
    first = _wait_for_header(world_at_start, "is late", DAG_ID, timeout_s=TIMEOUT_S + 60)
    assert first, f"no Slack alert for the missed deadline: {_headers(_messages(world_at_start))}"
    latency = (datetime.now(UTC) - late_airflow.deadline).total_seconds()
    shown = first["text"] + str(first["blocks"])
    assert run_id in shown and "`crawl_hangs`: running" in shown
    button_urls = [
        e["url"] for b in first["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert button_urls == [f"{client.base_url.rstrip('/')}/dags/{DAG_ID}/runs/{run_id}"]

    # Past its execution_timeout the task fails, and the failure callback alerts once.
    final = client.wait_for_run(DAG_ID, run_id, timeout_s=TIMEOUT_S + 120)
    assert final["state"] == "failed"
    assert _wait_for_header(world_at_start, "crawl_hangs", timeout_s=30)

    # The night that failed before its deadline alerted its failure, and nothing at the
    # deadline: wait past it twice as long as the late night's alert took after its own.
    remaining = (late_airflow.failed_deadline - datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, remaining) + 2 * latency + 10)
    messages = _messages(world_at_start)
    headers = _headers(messages)
    assert len(messages) == 3, [m["text"] for m in messages]
    (failure,) = [m for m, h in zip(messages, headers, strict=True) if "crawl_hangs" in h]
    assert "Timeout" in failure["text"], failure["text"]
    assert any("crawl_fails" in h for h in headers), headers
    assert not any("is late" in h and FAILED_DAG_ID in h for h in headers), headers
