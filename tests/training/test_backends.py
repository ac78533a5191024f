"""The kubernetes backend starts no GPU pod for a model version that is already published."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from freshlm.store import open_store
from training.backends import training_pod_needed

REPO = Path(__file__).resolve().parents[2]
STAGED = {"version_id": "v-0123abcd", "prefix": "models/v-0123abcd", "already_published": False}


def test_a_published_version_needs_no_pod_an_unpublished_one_does(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/store")
    assert training_pod_needed(store, STAGED) is True
    with store.publisher(STAGED["prefix"], kind="model") as pub:
        pub.write_bytes("weights.bin", b"w")
    # Published after staging (a pod of an earlier try finished): the store decides, not the flag.
    assert training_pod_needed(store, STAGED) is False


PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags["freshlm_train"]
rule = lambda t: getattr(t.trigger_rule, "value", t.trigger_rule)
tasks = {t.task_id: {"up": sorted(t.upstream_task_ids), "rule": rule(t)} for t in dag.tasks}
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
    # collect_kubernetes runs when the pod was skipped, and not when the pod failed.
    collect = tasks["collect_kubernetes"]
    assert collect["up"] == ["pod_or_published", "stage_kubernetes", "train_on_kubernetes"]
    assert collect["rule"] == "none_failed_min_one_success"
