"""Which batch a ``freshlm_curate`` run works on: from the crawl's Asset event or from Params.

A scheduled run is triggered by the crawl's ``freshlm://raw/batch`` event, whose extra lists the
night's shards and window. A manual run names its shards and window in Params. Either way the
batch is validated here, with errors that name the Param, before any work starts.
"""

from __future__ import annotations

import logging
from typing import Any

from freshlm.records import parse_utc

log = logging.getLogger(__name__)


class BatchError(ValueError):
    """The run's batch is missing or inconsistent; the message names the Param."""


def resolve_batch(params: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"shards", "window", "accept"}`` for this run.

    ``events``: the extras of the triggering ``freshlm://raw/batch`` events, oldest first (the
    newest wins: a re-crawl of the same night supersedes). Params win over events.
    """
    shards = list(params.get("shards") or [])
    window = None
    if shards:
        start, end = params.get("window_start"), params.get("window_end")
        if not (start and end):
            raise BatchError("shards were given: also give window_start and window_end")
        if parse_utc("window_start", start, BatchError) >= parse_utc("window_end", end, BatchError):
            raise BatchError(f"window_start {start} is not before window_end {end}")
        window = {"start": start, "end": end}
    elif events:
        latest = events[-1]
        shards, window = list(latest.get("shards") or []), latest.get("window")
        _warn_superseded(events[:-1], window)
    if not shards or not window:
        raise BatchError(
            "no batch to curate: this run was not triggered by a crawl; trigger it with the "
            "Params shards, window_start and window_end"
        )
    accept = None
    if params.get("accept_batch"):
        reason = (params.get("accept_reason") or "").strip()
        if not reason:
            raise BatchError(
                "accept_batch is set: accept_reason must say why the batch is safe to publish"
            )
        accept = {"reason": reason}
    return {"shards": sorted(shards), "window": window, "accept": accept}


def _warn_superseded(older: list[dict[str, Any]], window: Any) -> None:
    """Name each older batch of another window that this run does not curate, with the Params
    that curate it. Airflow folds every event announced since the last run into one run (for
    instance the nights crawled while this DAG was paused); their shards stay in the store."""
    for extra in older:
        other = extra.get("window")
        if not other or other == window:
            continue  # a re-crawl of the same night: the newest event supersedes it
        log.warning(
            "batch %s..%s (%d shards) was announced before this run's batch and is not curated "
            "by it; to curate it, trigger freshlm_curate with Params window_start=%s, "
            "window_end=%s, shards=%s",
            other.get("start"),
            other.get("end"),
            len(extra.get("shards") or []),
            other.get("start"),
            other.get("end"),
            list(extra.get("shards") or []),
        )
