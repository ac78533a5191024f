"""
### FreshLM forget

Remove one item from everything FreshLM keeps, on request, from the UI: trigger this DAG with
the item — a document's **URL**, its **document id** (32 hex) or an **author handle** (every
document by that author) — and the **reason**.

1. `check_request` — the Params are checked (a bad one fails here, naming it).
2. `forget_item` — the request is audited (who asked, when, why) and the item goes on the
   deny list, so crawls never collect it again; the lineage index finds every raw shard,
   candidate (kept and quarantined documents) and dataset holding it, and each gets a new
   version without it (old versions are deleted only once the new ones are in place);
   training sets built on them are deleted, model versions trained on them are marked
   "trained on forgotten data" in the registry and their cards say so. What was touched goes
   to the audit log (`audit/forget/<request>/`).
3. `route` / `retrain` — if production is marked and `FRESHLM_FORGET_RETRAIN` is on,
   `freshlm_train` is triggered on the new datasets from production's newest unmarked
   ancestor; evaluation and promotion follow as every night.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Param, dag, get_current_context, task

from freshlm.artifacts import dag_defaults


@dag(
    dag_id="freshlm_forget",
    schedule=None,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    # One request at a time: two rewrites of the same shard would race.
    max_active_runs=1,
    tags=["freshlm", "forget", "privacy"],
    doc_md=__doc__,
    render_template_as_native_obj=True,
    default_args=dag_defaults(),
    params={
        "item": Param(
            "",
            type="string",
            minLength=1,
            maxLength=2000,
            description="What to forget: a URL (https://…), a document id (32 hex) or an "
            "author handle (@user@instance, or a byline).",
        ),
        "item_kind": Param(
            "auto",
            enum=["auto", "url", "document_id", "author"],
            description="How to read item; auto tells it from its form.",
        ),
        "reason": Param(
            "",
            type="string",
            minLength=3,
            maxLength=2000,
            description="Why (required): it goes to the audit log and the model cards.",
        ),
    },
)
def freshlm_forget():
    @task(retries=0)
    def check_request() -> dict:
        from freshlm.forget.tasks import check_request as check

        return check(get_current_context())

    @task
    def forget_item(request: dict) -> dict:
        from freshlm.forget.tasks import forget_task
        from freshlm.store import open_store

        return forget_task(open_store(), request)

    @task.branch(retries=0)
    def route(result: dict) -> list[str]:
        from freshlm.forget.tasks import retrain_route

        return retrain_route(result)

    @task
    def retrain_conf(result: dict) -> dict:
        from freshlm.forget.tasks import retrain_conf as conf

        return conf(result)

    retrain = TriggerDagRunOperator(
        task_id="retrain",
        trigger_dag_id="freshlm_train",
        conf="{{ ti.xcom_pull(task_ids='retrain_conf') }}",
        trigger_run_id="freshlm_forget__{{ run_id }}",
        skip_when_already_exists=True,
    )

    result = forget_item(check_request())
    route(result) >> retrain
    retrain_conf(result) >> retrain


freshlm_forget()
