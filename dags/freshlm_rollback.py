"""
### FreshLM rollback

Move `production` back to an earlier model version in one action, from the UI: trigger this
DAG with the version to serve (empty: the `previous` alias) and why.

The version is checked against the registry first (an unknown id lists the versions there are;
the current production and rejected versions are refused, unless `allow_rejected` is set).
The move is a compare-and-swap on the production it read, so a promotion that lands at the same
moment is never silently overwritten; it is recorded in the audit log (who, when, why) and
announced in Slack and as `freshlm://models/production`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from freshlm.artifacts import PRODUCTION_ASSET, dag_defaults


@dag(
    dag_id="freshlm_rollback",
    schedule=None,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "registry", "rollback"],
    doc_md=__doc__,
    # One retry for a store hiccup; a refused rollback (bad version) fails the same again.
    default_args=dag_defaults(retry_delay=timedelta(seconds=15)),
    params={
        "version": Param(
            None,
            type=["null", "string"],
            pattern="^[0-9a-f]{32}$",
            description="Model version to serve; empty: the previous production version.",
        ),
        "reason": Param(
            "",
            type="string",
            minLength=3,
            maxLength=2000,
            description="Why (required): it goes to the audit log and to Slack.",
        ),
        "allow_rejected": Param(
            False,
            type="boolean",
            description="Allow a version the promotion gate rejected.",
        ),
    },
)
def freshlm_rollback():
    @task(outlets=[PRODUCTION_ASSET])
    def roll_back() -> dict:
        from freshlm.promotion.outcome import roll_back as move_back

        ctx = get_current_context()
        result = move_back(ctx, ctx["params"])
        ctx["outlet_events"][PRODUCTION_ASSET].extra = {
            "version_id": result["to_version"],
            "previous": result["from_version"],
            "rollback": True,
        }
        return result

    roll_back()


freshlm_rollback()
