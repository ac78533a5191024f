"""What the ``freshlm_forget`` DAG's tasks call, with the task context."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from freshlm.forget.request import ForgetRequest, parse_request
from freshlm.settings import get_settings

log = logging.getLogger("freshlm.forget")


def actor_of(ctx: Mapping[str, Any]) -> str:
    """Who asked: the DAG, and the UI user who triggered the run when Airflow knows it."""
    user = getattr(ctx.get("dag_run"), "triggering_user_name", None)
    return f"dag:{ctx['ti'].dag_id}" + (f"/user:{user}" if user else "") + f"/run:{ctx['run_id']}"


def check_request(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The run's Params as a checked request (ForgetRequestError names a bad Param)."""
    dag_run = ctx.get("dag_run")
    when = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None)
    requested_at = when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else str(ctx["run_id"])
    request = parse_request(
        ctx["params"], actor=actor_of(ctx), run_id=str(ctx["run_id"]), requested_at=requested_at
    )
    log.info(
        "forget request %s by %s: %s %s (%s)",
        request.request_id,
        request.actor,
        request.target.kind,
        request.target.value,
        request.reason,
    )
    return request.to_dict()


def forget_task(store: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    from freshlm.forget.run import forget

    return forget(store, ForgetRequest.from_dict(request))


def retrain_route(result: Mapping[str, Any]) -> list[str]:
    """``["retrain"]`` when production was trained on the item, FRESHLM_FORGET_RETRAIN is on
    and it has an unmarked ancestor to retrain from; otherwise nothing, saying why."""
    plan = result.get("retrain")
    if plan is None:
        log.info("production was not trained on the forgotten item: nothing to retrain")
        return []
    if not get_settings().forget_retrain:
        log.warning(
            "production %s is marked 'trained on forgotten data'; FRESHLM_FORGET_RETRAIN is off,"
            " so it is not retrained (trigger freshlm_train with datasets %s and base_version %s)",
            plan["production"],
            plan["datasets"],
            plan["base_version"],
        )
        return []
    if plan["base_version"] is None or not plan["datasets"]:
        log.warning(
            "production %s has no unmarked ancestor to retrain from: bootstrap a new base",
            plan["production"],
        )
        return []
    return ["retrain"]


def retrain_conf(result: Mapping[str, Any]) -> dict[str, Any]:
    plan = result["retrain"] or {}
    return {"datasets": plan.get("datasets"), "base_version": plan.get("base_version")}
