"""No task can hang forever: every task of every DAG has an execution_timeout, and the crawl
task's comes after the crawl's own close and kill (so the crawl gets to say why it stopped);
every task alerts Slack when it fails for good, and the night's crawl carries the nightly
deadline. That a task over its timeout fails and alerts, and a missed deadline alerts, is
shown under a real Airflow in tests/dags/test_deadline.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(json.dumps({
    dag_id: {
        t.task_id: t.execution_timeout.total_seconds() if t.execution_timeout else None
        for t in dag.tasks
    }
    for dag_id, dag in bag.dags.items()
}))
print(json.dumps({
    "alerting": {
        dag_id: sorted(
            t.task_id for t in dag.tasks
            if not any(
                getattr(cb, "__name__", "") == "on_task_failure"
                for cb in (
                    t.on_failure_callback if isinstance(t.on_failure_callback, list)
                    else [t.on_failure_callback]
                )
            )
        )
        for dag_id, dag in bag.dags.items()
    },
    "deadlines": {
        dag_id: [
            [type(d.reference).__name__, d.interval.total_seconds(), d.callback.path]
            for d in (dag.deadline or [])
        ]
        for dag_id, dag in bag.dags.items()
    },
}))
"""


def _probe(tmp_path: Path, **settings: str) -> list[dict]:
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"), **settings)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "dags")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.strip().splitlines()[-2:]]


def test_every_task_has_an_execution_timeout(tmp_path: Path) -> None:
    timeouts, _ = _probe(tmp_path, FRESHLM_CRAWL_TIMEOUT_S="600")
    assert len(timeouts) >= 6
    missing = [f"{d}.{t}" for d, tasks in timeouts.items() for t, s in tasks.items() if not s]
    assert missing == []
    crawl = timeouts["freshlm_crawl"]["crawl"]
    assert crawl > 600 + 60  # after CLOSESPIDER_TIMEOUT and the process-group kill
    assert timeouts["freshlm_evaluate"]["await_approval"] > 12 * 3600  # a person may take 12 h


def test_every_task_alerts_when_it_fails_and_every_dag_of_the_night_has_its_deadline(
    tmp_path: Path,
) -> None:
    _, wiring = _probe(tmp_path, FRESHLM_CRAWL_SCHEDULE="0 2 * * *")
    assert {dag: tasks for dag, tasks in wiring["alerting"].items() if tasks} == {}
    nightly = ["NightlyDeadline", 0.0, "freshlm.alerts.deadline.on_deadline_missed"]
    chain = ("freshlm_crawl", "freshlm_curate", "freshlm_train", "freshlm_evaluate")
    assert {dag: wiring["deadlines"][dag] for dag in chain} == {dag: [nightly] for dag in chain}
