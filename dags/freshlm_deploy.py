"""
### FreshLM deploy

Makes the model server answer with the version `production` names, right after a promotion or
a rollback announces `freshlm://models/production` (or by hand).

`reload` calls the server's authenticated reload endpoint (`FRESHLM_SERVE_URL`, bearer
`FRESHLM_SERVE_TOKEN`). The server loads the new version beside the old one, warms it, switches
atomically, drains the requests still on the old one and frees it: no request is dropped. The
result (versions before and after, load and drain seconds) is in the task log and XCom, and the
server records the call under `serving/deployments/` in the store.

If the load fails the old version keeps serving and the server alerts Slack; this task then
fails without retrying. If the server is down this task fails with what to do; the server
follows the alias by polling (`FRESHLM_SERVE_POLL_S`) once it is back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from freshlm.artifacts import PRODUCTION_ASSET, dag_defaults


@dag(
    dag_id="freshlm_deploy",
    schedule=[PRODUCTION_ASSET],
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "serve", "deploy"],
    doc_md=__doc__,
    # Retries cover a server that is restarting; a failed load is not retried (see above).
    default_args=dag_defaults(retries=2, retry_delay=timedelta(seconds=20)),
    params={
        "version": Param(
            None,
            type=["null", "string"],
            pattern="^[0-9a-f]{32}$",
            description="Serve this version; empty: what production names.",
        ),
        "reason": Param("", type="string", maxLength=2000, description="Why, for the record."),
        "serve_url": Param(
            None,
            type=["null", "string"],
            pattern="^https?://[^/\\s]+(/\\S*)?$",
            description="Server to reload; empty: FRESHLM_SERVE_URL.",
        ),
    },
)
def freshlm_deploy():
    @task(inlets=[PRODUCTION_ASSET])
    def reload() -> dict:
        from freshlm.serving.deploy import deploy_production

        ctx = get_current_context()
        return deploy_production(ctx, ctx["params"])

    reload()


freshlm_deploy()
