"""No task can hang forever: every task of every DAG has an execution_timeout, and the crawl
task's comes after the crawl's own close and kill (so the crawl gets to say why it stopped)."""

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
"""


def test_every_task_has_an_execution_timeout(tmp_path: Path) -> None:
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"), FRESHLM_CRAWL_TIMEOUT_S="600")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "dags")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    timeouts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(timeouts) >= 6
    missing = [f"{d}.{t}" for d, tasks in timeouts.items() for t, s in tasks.items() if not s]
    assert missing == []
    crawl = timeouts["freshlm_crawl"]["crawl"]
    assert crawl > 600 + 60  # after CLOSESPIDER_TIMEOUT and the process-group kill
    assert timeouts["freshlm_evaluate"]["await_approval"] > 12 * 3600  # a person may take 12 h
