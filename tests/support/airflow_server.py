"""Pytest fixtures: one real Airflow 3 per test session, and a REST client for it.

The deployment is the same :class:`freshlm.airflow_local.LocalAirflow` that ``make demo`` runs:
API server, scheduler, DAG processor and triggerer as separate processes, LocalExecutor,
SQLite, a temporary ``AIRFLOW_HOME`` and free ports. Tasks run with ``FRESHLM_HOME`` in the
session's temporary folder and the sandbox world (the ``world`` fixture) as their sources.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshlm.airflow_client import AirflowClient
from freshlm.airflow_local import LocalAirflow, free_port
from freshlm.alerts.embedded import sink_connection_env


@pytest.fixture(scope="session")
def freshlm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``FRESHLM_HOME`` for everything the session's Airflow tasks write."""
    return tmp_path_factory.mktemp("freshlm-home")


@pytest.fixture(scope="session")
def airflow(
    tmp_path_factory: pytest.TempPathFactory, freshlm_home: Path, world
) -> Iterator[LocalAirflow]:
    """A running local Airflow, started once per session (about 10 s) and stopped after."""
    home = tmp_path_factory.mktemp("airflow-home")
    deployment = LocalAirflow(
        home,
        free_port(),
        fast_parsing=True,
        extra_env={
            "FRESHLM_HOME": str(freshlm_home),
            "FRESHLM_WORLD_URL": world.url,
            # The executor's workers inherit this; keep tests from writing into the checkout.
            "FRESHLM_STORE_URI": (freshlm_home / "store").as_uri(),
            # Tests move the sandbox world's clock and trigger each night themselves; a
            # scheduled run for today's real date would crawl the world out of order.
            "FRESHLM_CRAWL_SCHEDULE": "none",
            # The monitor runs when a test triggers it, not on its daily schedule.
            "FRESHLM_MONITOR_SCHEDULE": "none",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The shipped rules with the limits that timing and model size make noisy here
            # widened; see the file.
            "FRESHLM_PROMOTION_RULES": str(Path(__file__).with_name("promotion_rules.yaml")),
            # Slack alerts land in the sandbox world's sink, through the real provider hook.
            **sink_connection_env("freshlm_slack", world.url),
        },
    )
    deployment.start()
    try:
        deployment.wait_ready()
        yield deployment
    finally:
        deployment.stop()
        if os.environ.get("FRESHLM_KEEP_AIRFLOW_LOGS") is None:
            pass  # the tmp folder (and the component logs) is pruned by pytest itself


@pytest.fixture(scope="session")
def airflow_client(airflow: LocalAirflow) -> AirflowClient:
    """A REST API v2 client logged in as the deployment's admin."""
    client = AirflowClient(airflow.base_url, airflow.username, airflow.password)
    client.token()
    return client


def dump_failure(client: AirflowClient, dag_id: str, run_id: str) -> str:
    """Every task's state and log of a run, for assertion messages."""
    parts = []
    for ti in client.task_instances(dag_id, run_id):
        parts.append(f"== {ti['task_id']} [{ti['state']}] ==")
        if ti["state"] not in (None, "skipped", "upstream_failed"):
            parts.append(
                client.task_log(
                    dag_id, run_id, ti["task_id"], max(ti["try_number"], 1), ti["map_index"]
                )
            )
    return "\n".join(parts)
