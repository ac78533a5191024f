"""One monitoring check: figures, findings with what to do, and the retraining to trigger.

A finding is ``{"kind", "severity", "what", "action"}``: ``warning`` findings are alerted,
``info`` ones only recorded. When the freshness lag passes ``FRESHLM_MONITOR_MAX_LAG_HOURS``
the check names the retraining to trigger: ``freshlm_train`` on the datasets no version was
trained on, or, when every dataset was trained, ``freshlm_curate`` on the newest window that
was crawled but never curated (its dataset then schedules training). With neither, there is
nothing new to train on and the finding says where to look instead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from freshlm.monitoring.canaries import ask_canaries, canary_set
from freshlm.monitoring.freshness import Freshness, measure
from freshlm.monitoring.timeline import iso, read_timeline
from freshlm.settings import Settings
from freshlm.store import Store

TRAIN_DAG = "freshlm_train"
CURATE_DAG = "freshlm_curate"
MAX_LISTED = 8


def _finding(kind: str, severity: str, what: str, action: str) -> dict[str, str]:
    return {"kind": kind, "severity": severity, "what": what, "action": action}


def _windows(items: list[dict[str, Any]]) -> str:
    shown = [f"{w['window']['start']}..{w['window']['end']}" for w in items[:MAX_LISTED]]
    more = f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return ", ".join(shown) + more


def retrain_plan(fresh: Freshness, max_lag_hours: float) -> dict[str, Any] | None:
    """The DAG run that closes the lag (see the module doc), or None."""
    if fresh.lag_hours is None or fresh.lag_hours <= max_lag_hours:
        return None
    if fresh.untrained:
        return {
            "dag_id": TRAIN_DAG,
            "conf": {"datasets": [d["dataset_id"] for d in fresh.untrained]},
        }
    if fresh.uncurated:
        newest = fresh.uncurated[-1]
        return {
            "dag_id": CURATE_DAG,
            "conf": {
                "shards": newest["shards"],
                "window_start": newest["window"]["start"],
                "window_end": newest["window"]["end"],
            },
        }
    return None


def findings(
    fresh: Freshness, canaries: dict[str, Any], plan: dict[str, Any] | None, settings: Settings
) -> list[dict[str, str]]:
    """What is wrong, each with what to do."""
    found = []
    if fresh.production is None:
        found.append(
            _finding(
                "no-production",
                "warning",
                "No model version is in production.",
                "Bootstrap a base (`python -m training.bootstrap --promote`) or promote one.",
            )
        )
    if fresh.lag_hours is not None and fresh.lag_hours > settings.monitor_max_lag_hours:
        if plan is not None:
            action = f"Triggering `{plan['dag_id']}` with {plan['conf']} to catch up."
        else:
            action = (
                "Nothing new to train on: every crawled window was trained or refused. See the "
                "rejection findings and the latest evaluation reports."
            )
        found.append(
            _finding(
                "freshness-lag",
                "warning",
                f"Production ({fresh.production}) is {fresh.lag_hours:g} h behind the newest "
                f"crawled document ({fresh.newest_document}); threshold "
                f"{settings.monitor_max_lag_hours:g} h.",
                action,
            )
        )
    if fresh.gaps:
        found.append(
            _finding(
                "missed-crawl",
                "warning",
                f"{len(fresh.gaps)} stretch(es) never crawled: "
                + _windows([{"window": g} for g in fresh.gaps])
                + ".",
                "Trigger `freshlm_crawl` with each stretch as window_start/window_end (crawls "
                "are incremental and idempotent).",
            )
        )
    if fresh.uncurated:
        found.append(
            _finding(
                "missed-curation",
                "warning",
                f"{len(fresh.uncurated)} crawled window(s) never curated: "
                f"{_windows(fresh.uncurated)}.",
                "Trigger `freshlm_curate` with the window's shards, window_start and window_end "
                "(the shards are listed in this check's record in the store).",
            )
        )
    if fresh.untrained:
        ids = ", ".join(d["dataset_id"] for d in fresh.untrained[:MAX_LISTED])
        found.append(
            _finding(
                "missed-training",
                "warning",
                f"{len(fresh.untrained)} published dataset(s) never trained on: {ids}.",
                f"Trigger `freshlm_train` with datasets [{ids}] (done automatically past the lag "
                "threshold).",
            )
        )
    found += _folded_crawl_findings(fresh)
    if fresh.folded:
        found.append(
            _finding(
                "folded",
                "info",
                f"{len(fresh.folded)} night(s) trained only in a later run: "
                f"{_windows(fresh.folded)}.",
                "None needed; their nightly run was missed and a later one caught up.",
            )
        )
    found += _rejection_findings(fresh, settings.monitor_rejection_streak)
    found += _canary_findings(fresh, canaries)
    return found


def _folded_crawl_findings(fresh: Freshness) -> list[dict[str, str]]:
    """Nights the scheduler missed and a later crawl fetched: alerted while that crawl's window
    stays uncurated, since until then their documents are in no dataset."""
    left = [f for f in fresh.folded_crawls if not f["curated"]]
    done = [f for f in fresh.folded_crawls if f["curated"]]
    found = []
    if left:
        later = ", ".join(
            sorted({f"{f['crawled_in']['start']}..{f['crawled_in']['end']}" for f in left})
        )
        found.append(
            _finding(
                "folded-uncurated",
                "warning",
                f"Missed nights fetched by a later crawl were never curated: {_windows(left)} "
                f"(fetched with {later}).",
                "Trigger `freshlm_curate` with that later window's shards, window_start and "
                "window_end (listed in this check's record): its batch holds the missed "
                "nights' documents, which the gate takes as late arrivals.",
            )
        )
    if done:
        found.append(
            _finding(
                "folded-crawl",
                "info",
                f"Missed nights fetched by a later crawl and curated with it: {_windows(done)}.",
                "None needed; the scheduler missed them and the next crawl caught up.",
            )
        )
    return found


def _rejection_findings(fresh: Freshness, streak: int) -> list[dict[str, str]]:
    found = []
    if fresh.gate_rejection_streak >= streak:
        found.append(
            _finding(
                "gate-rejections",
                "warning",
                f"The gate refused the last {fresh.gate_rejection_streak} crawled nights.",
                "Read the gate alerts and Data Docs: a source may be broken or spammed. If the "
                "gate is wrong, publish a batch with `freshlm_curate` accept_batch and a reason.",
            )
        )
    if fresh.promotion_rejection_streak >= streak:
        found.append(
            _finding(
                "promotion-rejections",
                "warning",
                f"The last {fresh.promotion_rejection_streak} candidates were all rejected.",
                "Read their evaluation reports (failed rules): the recipe (epochs, learning "
                "rate, replay) may need changing before the next run.",
            )
        )
    return found


def _canary_findings(fresh: Freshness, canaries: dict[str, Any]) -> list[dict[str, str]]:
    if canaries.get("error"):
        return [
            _finding(
                "server-unreachable",
                "warning",
                f"The model server could not be asked: {canaries['error']}.",
                "Start `python -m freshlm.serving` (or check the freshlm-serve Deployment); "
                "users get no answers meanwhile.",
            )
        ]
    stale = [v for v in canaries.get("versions", []) if v != fresh.production]
    if stale and fresh.production is not None:
        return [
            _finding(
                "stale-server",
                "warning",
                f"The server answered with {', '.join(stale)}, not production "
                f"({fresh.production}).",
                "Trigger `freshlm_deploy` (its log says why a reload failed).",
            )
        ]
    return []


def run_check(
    store: Store, settings: Settings, *, serve_url: str, checked_at: dt.datetime
) -> dict[str, Any]:
    """The whole check (see the module doc) as JSON."""
    fresh = measure(store, read_timeline(store))
    questions, report = canary_set(store)
    canaries = ask_canaries(serve_url, questions).to_dict()
    canaries["report"] = report
    plan = retrain_plan(fresh, settings.monitor_max_lag_hours)
    return {
        "checked_at": iso(checked_at),
        "freshness": fresh.to_dict(),
        "canaries": canaries,
        "thresholds": {
            "max_lag_hours": settings.monitor_max_lag_hours,
            "rejection_streak": settings.monitor_rejection_streak,
        },
        "findings": findings(fresh, canaries, plan, settings),
        "retrain": plan,
    }
