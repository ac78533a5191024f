"""Where an arXiv crawl starts, so that nights the scheduler missed are not lost.

``freshlm_crawl`` runs with ``catchup=False``: after the scheduler was down for some nights, the
next run's window is only the latest night, and the arXiv API (unlike a feed or a timeline,
which the other spiders' cursors walk forward from where they stopped) answers only for the
submission window it is asked about. So a crawl asks from the end of the newest window its
cursor says was fetched completely, when that lies before the run's window: the missed nights
are *folded* into this night's shard (its manifest records the stretch as ``folded``).

The look-back is bounded by :data:`MAX_CATCH_UP`: the gate accepts documents published at most
``late_arrival_days`` (7) before the batch's window (``expectations.config.GateConfig``), so
reaching further back would only make the whole batch fail ``published_in_window``. A longer
outage leaves the older stretch uncrawled: the crawl logs it, ``freshlm_monitor`` reports it as
a stretch never crawled, and a ``freshlm_crawl`` run with that stretch as its window fetches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from freshlm.records import parse_utc

MAX_CATCH_UP = timedelta(days=7)


def last_fetched_end(done: Iterable[Mapping[str, Any]]) -> datetime | None:
    """The end of the newest window in the cursor's ``done`` list (unreadable ones skipped)."""
    ends = []
    for window in done:
        try:
            ends.append(parse_utc("done.until", str(window["until"]), ValueError))
        except (KeyError, TypeError, ValueError):
            continue
    return max(ends, default=None)


def catch_up_start(done: Iterable[Mapping[str, Any]], window_start: datetime) -> datetime:
    """Where to start fetching for a window starting at ``window_start``: the end of the newest
    window fetched when it lies before (nights were missed), at most :data:`MAX_CATCH_UP` back.

    The first crawl (an empty cursor) and a backfill of an older window start at the window.
    """
    end = last_fetched_end(done)
    if end is None or end >= window_start:
        return window_start
    return max(end, window_start - MAX_CATCH_UP)
