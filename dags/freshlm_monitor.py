"""
### FreshLM monitor

Daily (`FRESHLM_MONITOR_SCHEDULE`, UTC) or by hand: is production fresh, and does the served
model answer the latest facts?

1. `check` — from the store: the **freshness lag** (newest crawled document vs the newest crawl
   window production was trained on), stretches never crawled, windows **crawled but never
   curated** or **published but never trained**, nights folded into a later run, and the
   **rejection streaks** of the gate and of promotion; then the **canary questions** (the new
   facts of the newest evaluation report) asked of the model server over HTTP. Every finding
   is in the task log with what to do; the check goes to `monitoring/history/` in the store.
2. `alert` — one Slack message with each problem and what to do (none when all is well).
3. `route` → `retrain` — past `FRESHLM_MONITOR_MAX_LAG_HOURS`, triggers the retraining path:
   `freshlm_train` on the datasets no version was trained on, or `freshlm_curate` on the newest
   window never curated (its dataset then schedules training and evaluation).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, get_current_context, task

from freshlm.artifacts import dag_defaults
from freshlm.settings import get_settings

PLAN = "ti.xcom_pull(task_ids='check')['retrain']"


@dag(
    dag_id="freshlm_monitor",
    schedule=get_settings().monitor_schedule,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "monitor"],
    doc_md=__doc__,
    # The retraining run's conf travels as a dict from XCom into the trigger.
    render_template_as_native_obj=True,
    default_args=dag_defaults(),
    params={
        "serve_url": Param(
            None,
            type=["null", "string"],
            pattern="^https?://[^/\\s]+(/\\S*)?$",
            description="Model server to ask the canaries; empty: FRESHLM_SERVE_URL.",
        ),
    },
)
def freshlm_monitor():
    @task
    def check() -> dict:
        from freshlm.monitoring.nightly import check_task
        from freshlm.store import open_store

        return check_task(get_current_context(), open_store())

    @task
    def alert(result: dict) -> bool:
        from freshlm.monitoring.nightly import alert_task

        return alert_task(get_current_context(), result)

    @task.branch(retries=0)
    def route(result: dict) -> list[str]:
        return ["retrain"] if result["retrain"] else []

    retrain = TriggerDagRunOperator(
        task_id="retrain",
        trigger_dag_id="{{ " + PLAN + "['dag_id'] }}",
        conf="{{ " + PLAN + "['conf'] }}",
        # One retraining run per monitor run, whatever the retries.
        trigger_run_id="freshlm_monitor__{{ run_id }}",
        skip_when_already_exists=True,
    )

    result = check()
    alert(result)
    route(result) >> retrain


freshlm_monitor()
