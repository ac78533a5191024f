"""What the ``freshlm_retention`` DAG's task calls, with the task context."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from freshlm import lineage_index
from freshlm.retention.sweep import RetentionError, sweep
from freshlm.store import Store


def sweep_task(ctx: Mapping[str, Any], store: Store) -> dict[str, Any]:
    dry_run = ctx["params"].get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise RetentionError(f"dry_run={dry_run!r}: expected true or false")
    report = sweep(store, now=datetime.now(UTC), dry_run=dry_run, run_id=str(ctx["run_id"]))
    if not dry_run:
        lineage_index.refresh(store)  # drop the deleted artifacts' entries
    return report
