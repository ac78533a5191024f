"""
### FreshLM retention

Daily (`FRESHLM_RETENTION_SCHEDULE`, UTC) or by hand: deletes raw shards older than
`FRESHLM_RETAIN_RAW_DAYS` and quarantined data (refused batches, curation's candidates with
their dropped documents) older than `FRESHLM_RETAIN_QUARANTINE_DAYS`, counted from the end of
their crawl window — except what a live model's lineage needs (the shards and candidates behind
the datasets the versions an alias points at, or their ancestors, were trained on). It also
deletes the checkpoints of training runs whose model version is published (they serve only a
resume; training deletes its own when it publishes).

With `dry_run` nothing is deleted: the task's result (and log) lists what would be. A real run
also publishes its report under `retention/reports/<run id>.json`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Param, dag, get_current_context, task

from freshlm.artifacts import dag_defaults
from freshlm.settings import get_settings


@dag(
    dag_id="freshlm_retention",
    schedule=get_settings().retention_schedule,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "retention", "privacy"],
    doc_md=__doc__,
    default_args=dag_defaults(),
    params={
        "dry_run": Param(False, type="boolean", description="Only report what would be deleted."),
    },
)
def freshlm_retention():
    @task
    def sweep() -> dict:
        from freshlm.retention.tasks import sweep_task
        from freshlm.store import open_store

        return sweep_task(get_current_context(), open_store())

    sweep()


freshlm_retention()
