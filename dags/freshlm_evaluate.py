"""
### FreshLM evaluate and promote

Stage 5 of the loop: a **candidate model** in, a **decision** out. Runs when `freshlm_train`
announces `freshlm://models/candidates`, or by hand with Params.

1. `resolve` — the candidate (the event's, or the Param's) and the baseline it is compared with
   (the production version its training started from, or the Param's).
2. `evaluate` — both models on the same items: new-knowledge probes from the newest dataset,
   retention probes carried forward from earlier ones, the sandbox world's fact questions,
   held-out perplexity (new and old text), the forgetting ratio, CrowS-Pairs bias and
   generation latency. The report (JSON, an HTML page and a chart across versions) is stored
   under `reports/<candidate>/`.
3. `decide` — the promotion rules (one YAML file; `FRESHLM_PROMOTION_RULES`), each with its
   observed value, in the task log.
4. `promote` — `production` moves to the candidate (compare-and-swap on the evaluated
   baseline; the previous model stays as `previous`), audited, with a Slack summary; with the
   Param `require_approval`, only after a person approves in `await_approval` (only the users
   in `FRESHLM_APPROVERS`, when set); the approver is recorded with the promotion.
   `reject` — the candidate is recorded as rejected with its reasons, Slack gets the metric
   table and the failed rules, and the run fails.

Roll back with `freshlm_rollback`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, dag, get_current_context, task

from freshlm.alerts.deadline import nightly_deadline
from freshlm.artifacts import CANDIDATE_MODELS_ASSET, PRODUCTION_ASSET, dag_defaults
from freshlm.promotion.outcome import approval_assignees
from freshlm.task_links import EvaluationReportLink, ModelCardLink, attach

VERSION = {"type": ["null", "string"], "pattern": "^[0-9a-f]{32}$"}


@dag(
    dag_id="freshlm_evaluate",
    schedule=[CANDIDATE_MODELS_ASSET],
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "evaluate", "promote"],
    doc_md=__doc__,
    default_args=dag_defaults(),
    deadline=nightly_deadline(),
    params={
        "candidate": Param(None, **VERSION, description="Model version to evaluate."),
        "baseline": Param(
            None, **VERSION, description="Version to compare with; empty: production."
        ),
        "require_approval": Param(
            False,
            type="boolean",
            description="Wait for a person to approve a passing candidate before promoting.",
        ),
    },
)
def freshlm_evaluate():
    @task(retries=0, inlets=[CANDIDATE_MODELS_ASSET])
    def resolve() -> dict:
        from freshlm.evaluation.nightly import resolve_evaluation
        from freshlm.store import open_store
        from freshlm.triggering_events import triggering_extras

        ctx = get_current_context()
        events = triggering_extras(ctx, CANDIDATE_MODELS_ASSET)
        return resolve_evaluation(ctx["params"], events, store=open_store())

    @task
    def evaluate(request: dict) -> dict:
        from freshlm.evaluation.nightly import report_summary, run_evaluation
        from freshlm.store import open_store

        ctx = get_current_context()
        report = run_evaluation(
            open_store(), request, created_by={"dag": "freshlm_evaluate", "run_id": ctx["run_id"]}
        )
        return report_summary(report)

    @task
    def decide(report: dict) -> dict:
        from freshlm.promotion.outcome import decide_on, load_report
        from freshlm.store import open_store

        return decide_on(load_report(open_store(), report))

    @task.branch
    def route(decision: dict) -> str:
        if not decision["passed"]:
            return "reject"
        if get_current_context()["params"]["require_approval"]:
            return "await_approval"
        return "promote"

    await_approval = ApprovalOperator(
        task_id="await_approval",
        subject="Promote FreshLM candidate {{ ti.xcom_pull(task_ids='resolve')['candidate'] }}?",
        body="{{ ti.xcom_pull(task_ids='decide')['summary'] }}",
        # FRESHLM_APPROVERS; None: any user allowed to act on this DAG.
        assigned_users=approval_assignees(),
        response_timeout=timedelta(hours=12),
        # Waiting for a person is no hang: the task's limit is past the response timeout.
        execution_timeout=timedelta(hours=13),
        retries=0,
    )

    @task(outlets=[PRODUCTION_ASSET], trigger_rule="none_failed_min_one_success")
    def promote(report: dict, decision: dict) -> dict:
        from freshlm.promotion.outcome import promote_candidate

        ctx = get_current_context()
        # What the approval step returned (who, when), or None when no approval was asked.
        approval = ctx["ti"].xcom_pull(task_ids="await_approval")
        result = promote_candidate(ctx, report, decision, approval)
        ctx["outlet_events"][PRODUCTION_ASSET].extra = {
            "version_id": report["candidate"]["version_id"],
            "previous": report["baseline"]["version_id"],
        }
        return result

    @task(retries=0)
    def reject(report: dict, decision: dict) -> dict:
        from freshlm.promotion.outcome import reject_candidate

        return reject_candidate(get_current_context(), report, decision)

    request = resolve()
    report = attach(evaluate(request), EvaluationReportLink())
    decision = decide(report)
    promoted = attach(promote(report, decision), ModelCardLink())
    route(decision) >> [await_approval, promoted, reject(report, decision)]
    await_approval >> promoted


freshlm_evaluate()
