"""Pytest fixtures: one real Airflow 3 per test session, and a REST client for it.

The deployment is the same :class:`freshlm.airflow_local.LocalAirflow` that ``make demo`` runs:
API server, scheduler, DAG processor and triggerer as separate processes, LocalExecutor,
SQLite, a temporary ``AIRFLOW_HOME`` and free ports. Tasks run with ``FRESHLM_HOME`` in the
session's temporary folder and the sandbox world (the ``world`` fixture) as their sources.

:func:`airflow_deployment` builds such a deployment for any test; with
:func:`celery_executor_env` it runs the CeleryExecutor on Postgres and Redis instead (its workers
are started by the test: ``tests/distributed/``).
"""

from __future__ import annotations

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


def airflow_deployment(
    home: Path,
    freshlm_home: Path,
    world_url: str,
    *,
    env: dict[str, str] | None = None,
    parallelism: int = 2,
) -> LocalAirflow:
    """A test deployment (not started) whose tasks write under ``freshlm_home`` and crawl the
    sandbox world at ``world_url``. ``env`` adds or replaces settings: another executor
    (:func:`celery_executor_env` instead of the LocalExecutor on SQLite), FreshLM's settings."""
    return LocalAirflow(
        home,
        free_port(),
        fast_parsing=True,
        parallelism=parallelism,
        extra_env={
            "FRESHLM_HOME": str(freshlm_home),
            "FRESHLM_WORLD_URL": world_url,
            # The executor's workers inherit this; keep tests from writing into the checkout.
            "FRESHLM_STORE_URI": (freshlm_home / "store").as_uri(),
            # Tests move the sandbox world's clock and trigger each night themselves; a
            # scheduled run for today's real date would crawl the world out of order.
            "FRESHLM_CRAWL_SCHEDULE": "none",
            # The monitor runs when a test triggers it, not on its daily schedule.
            "FRESHLM_MONITOR_SCHEDULE": "none",
            # No deadline at a time of day: every run a test left unfinished before 08:00 UTC
            # would alert Slack at 08:00, into the sink other tests count messages in.
            # tests/dags/test_deadline.py gives its own DAGs deadlines seconds away.
            "FRESHLM_NIGHTLY_DEADLINE": "none",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The shipped rules with the limits that timing and model size make noisy here
            # widened; see the file.
            "FRESHLM_PROMOTION_RULES": str(Path(__file__).with_name("promotion_rules.yaml")),
            # A failed try is retried after 5 s rather than 30: the tests wait for retries.
            "FRESHLM_TASK_RETRY_DELAY_S": "5",
            # Slack alerts land in the sandbox world's sink, through the real provider hook.
            **sink_connection_env("freshlm_slack", world_url),
            **(env or {}),
        },
    )


def celery_executor_env(
    database_url: str, broker_url: str, result_backend: str, *, heartbeat_timeout_s: int = 15
) -> dict[str, str]:
    """Airflow's settings for the CeleryExecutor with its metadata DB at ``database_url``
    (Postgres), its broker at ``broker_url`` (Redis) and Celery's results in ``result_backend``.

    A worker that dies takes its tasks' heartbeats with it: after ``heartbeat_timeout_s`` the
    scheduler fails the lost try, and a task with retries left is queued again for any worker.
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        # A message is acknowledged when its task ends, so one held by a worker that dies is
        # not lost (the broker gives it back after the visibility timeout, Airflow's default
        # of a day); with a prefetch of one a worker never holds a second task it cannot start.
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(heartbeat_timeout_s),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    }


@pytest.fixture(scope="session")
def airflow(
    tmp_path_factory: pytest.TempPathFactory, freshlm_home: Path, world
) -> Iterator[LocalAirflow]:
    """A running local Airflow, started once per session (about 10 s) and stopped after."""
    deployment = airflow_deployment(
        tmp_path_factory.mktemp("airflow-home"), freshlm_home, world.url
    )
    deployment.start()
    try:
        deployment.wait_ready()
        yield deployment
    finally:
        deployment.stop()


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


# --- scheduler faults: kill and restart the scheduler of a running deployment ---------------


def _process_tree(root: int) -> list[int]:
    """``root`` and every live descendant of it, whatever process group or session it is in."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command may hold spaces and parentheses; the fields after the last ")" do not.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def kill_scheduler(deployment: LocalAirflow) -> list[int]:
    """SIGKILL the scheduler and every process under it (the LocalExecutor's workers, their
    task supervisors and whatever the tasks started, in any process group), as when the
    scheduler's container or host dies. Returns the pids killed. The API server, DAG processor
    and triggerer keep running; :func:`restart_scheduler` starts a new scheduler."""
    import contextlib
    import os
    import signal

    scheduler = deployment._procs["scheduler"]
    # Stop the tree first and walk it again until it stops growing: a stopped process cannot
    # fork, and nothing is reparented away from the walk before the kill.
    stopped: set[int] = set()
    while new := set(_process_tree(scheduler.pid)) - stopped:
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= new
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    scheduler.wait()
    return sorted(stopped)


def restart_scheduler(
    deployment: LocalAirflow, extra_env: dict[str, str] | None = None, timeout_s: float = 180.0
) -> None:
    """Start a new scheduler in place of a killed one, with the deployment's environment plus
    ``extra_env``, appending to the same log; returns once it has heartbeated (the API's health
    shows a scheduler heartbeat newer than this call)."""
    import json
    import subprocess
    import time
    import urllib.request
    from datetime import UTC, datetime

    scheduler = deployment._procs["scheduler"]
    if scheduler.poll() is None:
        raise RuntimeError(f"the scheduler (pid {scheduler.pid}) is still running; kill it first")
    called = datetime.now(UTC)
    log_path = deployment.logs_dir / "scheduler.log"
    old_log = deployment._log_files.pop("scheduler", None)
    if old_log is not None:
        old_log.close()
    out = log_path.open("a")
    deployment._log_files["scheduler"] = out
    # env() picks fresh free ports for the log servers; every component reads task logs from
    # the shared logs folder of this one machine, so nothing else needs them.
    env = {**deployment.env(), **(extra_env or {})}
    deployment._procs["scheduler"] = subprocess.Popen(
        [deployment._airflow(), "scheduler"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # as LocalAirflow.start: stop() signals its whole group
    )
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        deployment._check_alive()
        try:
            with urllib.request.urlopen(
                f"{deployment.base_url}/api/v2/monitor/health", timeout=5
            ) as resp:
                beat = (json.load(resp).get("scheduler") or {}).get("latest_scheduler_heartbeat")
            if beat and datetime.fromisoformat(beat.replace("Z", "+00:00")) > called:
                return
            last = f"latest scheduler heartbeat {beat}"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(1.0)
    raise RuntimeError(
        f"the restarted scheduler did not heartbeat within {timeout_s:.0f}s ({last}):\n"
        + deployment.log_tails()
    )
