"""A night of the whole loop on a distributed Airflow, and a worker lost in the middle of it.

Airflow runs with the CeleryExecutor on PostgreSQL (metadata DB and Celery results) and Redis
(the broker), all on loopback, with two Celery workers of one slot each. The sandbox world's
first day is crawled, curated, trained on and evaluated, each DAG scheduled on the Asset the
one before announces, as in production. While ``train_local`` runs, the worker running it is
killed with everything below it (the task, its DeepSpeed ranks). Its Celery message was never
acknowledged; Airflow sees the task's heartbeat stop, fails that try and queues the retry, which
the other worker runs. The night must still end in a promotion, with each of its artifacts in
the store exactly once.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from freshlm.airflow_client import AirflowClient
from freshlm.airflow_local import LocalAirflow
from freshlm.registry import PRODUCTION, read_alias, read_audit
from freshlm.store import Store, open_store
from sandbox import demo_nights
from sandbox.scenario import load_scenario
from tests.distributed.celery_workers import CeleryWorker
from tests.distributed.conftest import install_small_base
from tests.support.airflow_server import airflow_deployment, celery_executor_env, dump_failure
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.airflow, pytest.mark.distributed, pytest.mark.slow]

WORKERS = ("worker-a", "worker-b")
TRAIN, TRAIN_TASK = demo_nights.TRAIN, "train_local"
#: The worker is killed once a process below it has this argument: a DeepSpeed rank, started by
#: the launcher once training is under way.
RANK_MARKER = "--local_rank="
RUN_TIMEOUT_S = 600.0


@dataclasses.dataclass
class Cluster:
    airflow: LocalAirflow
    workers: dict[str, CeleryWorker]
    client: AirflowClient
    store: Store
    broker_url: str


@pytest.fixture
def cluster(tmp_path: Path, world_at_start) -> Iterator[Cluster]:
    """Postgres, Redis, Airflow on the CeleryExecutor and two workers; all stopped after."""
    freshlm_home = tmp_path / "freshlm-home"
    with (
        PostgresServer(tmp_path / "postgres.log") as postgres,
        RedisServer(tmp_path / "redis") as broker,
    ):
        executor = celery_executor_env(
            postgres.sqlalchemy_url, broker.url(), postgres.celery_result_backend
        )
        airflow = airflow_deployment(
            tmp_path / "airflow-home",
            freshlm_home,
            world_at_start.url,
            env=executor,
        )
        workers = {name: CeleryWorker(airflow, name) for name in WORKERS}
        try:
            airflow.start()
            for worker in workers.values():
                worker.start()
            airflow.wait_ready()
            for worker in workers.values():
                worker.wait_ready()
            client = AirflowClient(airflow.base_url, airflow.username, airflow.password)
            store = open_store((freshlm_home / "store").as_uri())
            yield Cluster(airflow, workers, client, store, broker.url())
        finally:
            for worker in workers.values():
                worker.stop()
            airflow.stop()


def _running_on_worker(client: AirflowClient, seen_runs: set[str]) -> tuple[str, dict]:
    """The new ``freshlm_train`` run and its ``train_local`` task instance once it runs on a
    worker (its hostname is the worker's name)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = client.request("GET", f"/dags/{TRAIN}/dagRuns", params={"limit": 100})
        for run in runs["dag_runs"]:
            if run["dag_run_id"] in seen_runs:
                continue
            for ti in client.task_instances(TRAIN, run["dag_run_id"]):
                on_worker = ti["state"] == "running" and ti["hostname"] in WORKERS
                if ti["task_id"] == TRAIN_TASK and on_worker:
                    return run["dag_run_id"], ti
        time.sleep(1.0)
    raise AssertionError(f"{TRAIN}.{TRAIN_TASK} never ran on a worker")


def _tries(client: AirflowClient, run_id: str) -> list[dict]:
    path = f"/dags/{TRAIN}/dagRuns/{run_id}/taskInstances/{TRAIN_TASK}/tries"
    return sorted(client.request("GET", path)["task_instances"], key=lambda t: t["try_number"])


def _unacknowledged(broker_url: str, settle_s: float = 60.0) -> list[str]:
    """The bodies of the messages the broker delivered and never had acknowledged: kombu's
    Redis transport keeps each in the hash ``unacked`` until then. A worker acknowledges a
    message when its Celery task returns, a moment after Airflow shows the task's state; a
    message still unacknowledged after ``settle_s`` was lost with its worker."""
    broker = redis.Redis.from_url(broker_url)
    try:
        deadline = time.monotonic() + settle_s
        while broker.hlen("unacked") > 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        return [
            base64.b64decode(json.loads(raw)[0]["body"]).decode() for raw in broker.hvals("unacked")
        ]
    finally:
        broker.close()


def _assert_each_artifact_once(store: Store, night: demo_nights.Night, base: str) -> None:
    """The night's raw shards (one per source), dataset, training set, model version, gate
    report and evaluation report are each published once, however many tries it took."""
    published = list(store.list_published(""))
    kinds = collections.Counter(prefix.split("/")[0] for prefix in published)
    raw = [prefix for prefix in published if prefix.startswith("raw/")]
    assert len({prefix.split("/")[1] for prefix in raw}) == len(raw) > 0, raw
    assert {p for p in published if p.startswith("models/")} == {
        f"models/{base}",
        f"models/{night.candidate}",
    }, published
    assert f"datasets/{night.dataset_id}" in published
    # The night's dataset beside the base corpus, and one of each artifact built from it.
    assert kinds["datasets"] == 2, published
    for kind in ("candidates", "gate-reports", "trainsets", "reports"):
        assert kinds[kind] == 1, (kind, published)


def test_a_night_survives_a_killed_worker_and_promotes_with_every_artifact_once(
    cluster, world_at_start, small_base
):
    client, store = cluster.client, cluster.store
    base = install_small_base(store, small_base)
    demo_nights.prepare_airflow(client)
    day = load_scenario().days[0].date
    night_run = demo_nights.start_night(
        client, world_at_start.url, 1, day, run_timeout_s=RUN_TIMEOUT_S
    )

    # --- the worker that trains dies -----------------------------------------------------------
    train_run, ti = _running_on_worker(client, night_run.seen[TRAIN])
    victim = ti["hostname"]
    survivor = next(name for name in WORKERS if name != victim)
    cluster.workers[victim].wait_for_descendant(RANK_MARKER, timeout_s=RUN_TIMEOUT_S)
    killed = cluster.workers[victim].kill()
    # The worker, its pool process, the task's supervisor and process, the launcher, the ranks.
    assert killed >= 6, f"{victim}'s tree had only {killed} processes"

    night = night_run.finish()
    runs = "\n".join(f"{dag}: {run}" for dag, run in night.runs.items())
    assert night.decision == "PROMOTED", f"{night.decision}\n{runs}\n" + dump_failure(
        client, TRAIN, train_run
    )

    # --- the lost try failed on the killed worker; its retry succeeded on the other ------------
    tries = _tries(client, train_run)
    assert (tries[0]["hostname"], tries[0]["state"]) == (victim, "failed"), tries
    assert (tries[-1]["hostname"], tries[-1]["state"]) == (survivor, "success"), tries
    assert cluster.workers[survivor].process.poll() is None
    # Celery's side: the killed try's message was never acknowledged, so the broker still
    # holds it for redelivery (after the visibility timeout); every other task's was.
    unacked = _unacknowledged(cluster.broker_url)
    assert len(unacked) == 1 and ti["id"] in unacked[0], unacked

    # --- production moved to the night's candidate, once ---------------------------------------
    assert night.candidate not in (None, base) and night.production_before == base
    assert read_alias(store, PRODUCTION).version_id == night.candidate
    moves = [(m.from_version_id, m.version_id) for m in read_audit(store, PRODUCTION)]
    assert moves[1:] == [(base, night.candidate)], moves
    candidates = client.asset_events("freshlm://models/candidates")
    assert [e["extra"]["version_id"] for e in candidates] == [night.candidate], candidates

    _assert_each_artifact_once(store, night, base)
