"""Freshness: how current production is, as charts over time.

* lag (hours between the newest crawled document and the newest data production was trained
  on) and canary accuracy, from the monitor's history (:mod:`freshlm.monitoring.history`);
* facts learned per night (new fact questions a candidate answers that its baseline did not)
  and retention, from every evaluation report in the store.

Route: :func:`freshlm.alerts.links.freshness_url`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from freshlm.artifacts import REPORT_JSON, REPORT_KIND, REPORTS
from freshlm.console.auth import Reader
from freshlm.console.charts import Series, line_chart
from freshlm.console.context import store_of
from freshlm.console.rendering import render
from freshlm.monitoring.history import read_history
from freshlm.store import Store

#: The monitor's newest checks the page charts.
HISTORY_LIMIT = 180

router = APIRouter()


def evaluations(store: Store) -> list[dict[str, Any]]:
    """One row per published evaluation report, oldest first: when, the pair, facts learned
    (``comparison.gained``) and both sides' retention and new-knowledge accuracy."""
    rows = []
    for prefix in store.list_published(REPORTS + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is None or manifest.kind != REPORT_KIND or "/_attempts/" in prefix:
            continue
        report = store.read_json(manifest.key(REPORT_JSON))
        cand = report.get("candidate") or {}
        base = report.get("baseline") or {}
        comparison = report.get("comparison") or {}
        rows.append(
            {
                "created_at": str(report.get("created_at") or ""),
                "candidate": cand.get("version_id"),
                "baseline": base.get("version_id"),
                "facts_learned": comparison.get("gained"),
                "facts_forgotten": comparison.get("forgotten"),
                "candidate_retention": (cand.get("metrics") or {}).get("retention_acc"),
                "baseline_retention": (base.get("metrics") or {}).get("retention_acc"),
                "candidate_new": (cand.get("metrics") or {}).get("world_new_acc"),
            }
        )
    return sorted(rows, key=lambda r: r["created_at"])


def _day(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


@router.get("/freshness", name="freshness")
def freshness_page(request: Request, caller: Reader):
    store = store_of(request)
    history = read_history(store, limit=HISTORY_LIMIT)
    checks = [
        {
            "checked_at": h.get("checked_at", ""),
            "lag_hours": (h.get("freshness") or {}).get("lag_hours"),
            "canary_accuracy": (h.get("canaries") or {}).get("accuracy"),
            "production": (h.get("freshness") or {}).get("production"),
            "findings": h.get("findings") or [],
        }
        for h in history
    ]
    evals = evaluations(store)
    check_x = [_day(c["checked_at"]) for c in checks]
    eval_x = [_day(e["created_at"]) for e in evals]
    charts = {
        "lag": line_chart(
            "Freshness lag", check_x, [Series("lag", [c["lag_hours"] for c in checks])], unit=" h"
        ),
        "canaries": line_chart(
            "Canary accuracy",
            check_x,
            [Series("canary accuracy", [c["canary_accuracy"] for c in checks])],
        ),
        "facts": line_chart(
            "Facts learned per night",
            eval_x,
            [
                Series("learned", [e["facts_learned"] for e in evals]),
                Series("forgotten", [e["facts_forgotten"] for e in evals]),
            ],
        ),
        "retention": line_chart(
            "Retention",
            eval_x,
            [
                Series("candidate", [e["candidate_retention"] for e in evals]),
                Series("baseline", [e["baseline_retention"] for e in evals]),
            ],
        ),
    }
    return render(
        request,
        "freshness.html.j2",
        caller=caller,
        checks=list(reversed(checks)),
        evaluations=list(reversed(evals)),
        charts=charts,
    )
