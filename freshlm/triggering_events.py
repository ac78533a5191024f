"""The extras of the Asset events that triggered a DAG run, oldest first.

Airflow hands a task ``triggering_asset_events`` in no guaranteed order: the execution API loads
the run's consumed events through an unordered many-to-many join, and on SQLite the order changes
from one run to the next. FreshLM's DAGs read "the newest event wins" (a re-crawl supersedes, the
latest candidate is the one to evaluate), so they sort by the event's timestamp first. CI caught
the difference: a curate run consumed four batch events and curated the second-newest night.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol


class _AssetEvent(Protocol):
    extra: Mapping[str, Any]
    timestamp: datetime


def extras_oldest_first(events: Iterable[_AssetEvent]) -> list[dict[str, Any]]:
    """Each event's ``extra`` as a dict, ordered by the event's timestamp (oldest first)."""
    return [dict(e.extra) for e in sorted(events, key=lambda e: e.timestamp)]


def triggering_extras(context: Mapping[str, Any], asset: Any) -> list[dict[str, Any]]:
    """The extras of ``asset``'s events that triggered this run, oldest first; ``[]`` for a
    manual run."""
    return extras_oldest_first(context["triggering_asset_events"].get(asset, []))
