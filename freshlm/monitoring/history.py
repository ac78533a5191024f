"""The monitor's history in the store: one JSON record per check, for the operator page.

``monitoring/history/<checked_at>-<run>.json`` holds the check's figures and findings; a rerun
of the same DAG run overwrites its own record (idempotent). :func:`read_history` returns the
records oldest first, the series a chart draws (lag, canary accuracy, streaks over time).
"""

from __future__ import annotations

import re
from typing import Any

from freshlm.artifacts import MONITOR_HISTORY
from freshlm.store import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def history_key(check: dict[str, Any], run_id: str) -> str:
    stamp = check["checked_at"].replace("-", "").replace(":", "")
    return f"{MONITOR_HISTORY}/{stamp}-{_UNSAFE.sub('_', run_id)[:120]}.json"


def record_check(store: Store, check: dict[str, Any], run_id: str) -> str:
    """Store ``check``; its store URI."""
    key = history_key(check, run_id)
    store.write_json(key, {**check, "run_id": run_id})
    return store.uri_for(key)


def read_history(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    """The stored checks, oldest first (the newest ``limit`` if given)."""
    keys = sorted(k for k in store.list(MONITOR_HISTORY + "/") if k.endswith(".json"))
    if limit is not None:
        keys = keys[-limit:]
    return [store.read_json(k) for k in keys]


def chart_series(history: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Columns for a chart: time, lag hours, canary accuracy, the two rejection streaks."""
    return {
        "checked_at": [h["checked_at"] for h in history],
        "lag_hours": [h["freshness"]["lag_hours"] for h in history],
        "canary_accuracy": [h["canaries"]["accuracy"] for h in history],
        "gate_rejection_streak": [h["freshness"]["gate_rejection_streak"] for h in history],
        "promotion_rejection_streak": [
            h["freshness"]["promotion_rejection_streak"] for h in history
        ],
    }
