"""The kubernetes backend: its run shape from the Params, no GPU pod for a model version that is
already published, and the DAG's wiring of the pod and the multi-node Job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from freshlm.store import open_store
from training.backends import kubernetes_shape, rank_group_name, training_pod_needed
from training.plan import PlanError

REPO = Path(__file__).resolve().parents[2]
STAGED = {"version_id": "v-0123abcd", "prefix": "models/v-0123abcd", "already_published": False}


def test_a_published_version_needs_no_pod_an_unpublished_one_does(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/store")
    assert training_pod_needed(store, STAGED) is True
    with store.publisher(STAGED["prefix"], kind="model") as pub:
        pub.write_bytes("weights.bin", b"w")
    # Published after staging (a pod of an earlier try finished): the store decides, not the flag.
    assert training_pod_needed(store, STAGED) is False


def test_the_shape_defaults_to_one_node_with_the_runs_gpus() -> None:
    assert kubernetes_shape({}, 4) == {"nodes": 1, "gpus_per_node": 4}
    assert kubernetes_shape({"nodes": None, "gpus_per_node": None}, 2) == {
        "nodes": 1,
        "gpus_per_node": 2,
    }
    assert kubernetes_shape({"nodes": 4, "gpus_per_node": 8}, 1) == {"nodes": 4, "gpus_per_node": 8}
    # JSON numbers from the UI may arrive as floats; a whole one is an integer.
    assert kubernetes_shape({"nodes": 2.0}, 1)["nodes"] == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"nodes": 0}, "nodes: 0 must be an integer >= 1"),
        ({"nodes": -2}, "nodes: -2 must be an integer >= 1"),
        ({"nodes": 1.5}, "nodes: 1.5 must be an integer >= 1"),
        ({"nodes": "2"}, "nodes: '2' must be an integer >= 1"),
        ({"nodes": True}, "nodes: True must be an integer >= 1"),
        ({"gpus_per_node": 0}, "gpus_per_node: 0 must be an integer >= 1"),
        ({"gpus_per_node": "8"}, "gpus_per_node: '8' must be an integer >= 1"),
    ],
)
def test_a_bad_shape_is_refused_naming_the_param(params: dict, message: str) -> None:
    with pytest.raises(PlanError) as exc:
        kubernetes_shape(params, 1)
    assert str(exc.value) == message


def test_the_rank_group_name_is_one_per_run_key_and_a_dns_label() -> None:
    from training.k8s_specs import MAX_NAME_LENGTH

    a, b = rank_group_name("freshlm-train", "run-a"), rank_group_name("freshlm-train", "run-b")
    assert a == rank_group_name("freshlm-train", "run-a") and a != b
    assert a.startswith("freshlm-train-") and len(a) <= MAX_NAME_LENGTH


PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags["freshlm_train"]
rule = lambda t: getattr(t.trigger_rule, "value", t.trigger_rule)
tasks = {t.task_id: {"up": sorted(t.upstream_task_ids), "rule": rule(t)} for t in dag.tasks}
tasks["delete_rank_service"]["teardown"] = dag.task_dict["delete_rank_service"].is_teardown
for task_id in ("train_on_kubernetes", "train_job_on_kubernetes"):
    op = dag.task_dict[task_id]
    tasks[task_id].update(deferrable=op.deferrable, retries=op.retries)
print(json.dumps(tasks))
"""


def test_the_pod_runs_only_behind_the_published_check(tmp_path: Path) -> None:
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "dags" / "freshlm_train.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tasks = json.loads(proc.stdout.strip().splitlines()[-1])
    assert tasks["train_on_kubernetes"]["up"] == ["pod_or_published"]
    # Several nodes: the Job runs between its Service's creation and its deletion, which
    # happens whatever the Job's outcome (a teardown).
    assert tasks["create_rank_service"]["up"] == ["pod_or_published"]
    assert tasks["train_job_on_kubernetes"]["up"] == ["create_rank_service"]
    delete = tasks["delete_rank_service"]
    assert delete["up"] == ["create_rank_service", "train_job_on_kubernetes"]
    assert delete["teardown"] is True
    for task_id in ("train_on_kubernetes", "train_job_on_kubernetes"):
        assert tasks[task_id]["deferrable"] is True and tasks[task_id]["retries"] >= 1
    # collect_kubernetes runs when the pod or the Job was skipped, and not when one failed.
    collect = tasks["collect_kubernetes"]
    assert collect["up"] == [
        "pod_or_published",
        "stage_kubernetes",
        "train_job_on_kubernetes",
        "train_on_kubernetes",
    ]
    assert collect["rule"] == "none_failed_min_one_success"
