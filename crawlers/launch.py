"""What the ``freshlm_crawl`` DAG's tasks do, importable and testable without Airflow.

* :func:`plan` turns the run's Params and data interval into the crawl window and the list of
  sources, validating both (the Param schema has already checked types and formats).
* :func:`crawl_in_subprocess` runs :mod:`crawlers.run` for one source in its own process —
  Scrapy's reactor cannot restart inside a worker — streaming its log into the task log, and
  raises :class:`CrawlFailed` carrying the crawler's own error message when it fails.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import deque
from datetime import UTC, datetime
from typing import Any

from crawlers.child_process import ChildTimedOut, run_streaming
from crawlers.redaction import redact_urls
from crawlers.run import EXIT_UNREACHABLE, SUMMARY_PREFIX
from crawlers.sources import load_sources, select_sources
from freshlm.records import parse_utc
from freshlm.settings import get_settings

log = logging.getLogger("freshlm.crawl")

# How long a crawl that was told to close (CLOSESPIDER_TIMEOUT) may take to exit before its
# process group is killed.
KILL_GRACE_S = 60.0


class CrawlFailed(RuntimeError):
    """A source's crawl failed; the message is the crawler's own last error line(s)."""


class CrawlPlanError(ValueError):
    """The run's parameters are inconsistent; the message names the parameter."""


def _parse(name: str, value: str) -> datetime:
    return parse_utc(name, value, CrawlPlanError)


def plan(
    params: dict[str, Any],
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
) -> dict[str, Any]:
    """The crawl plan: ``{"window": {"start", "end"}, "sources": [names]}``.

    The window is the run's data interval unless both ``window_start`` and ``window_end``
    Params are given (a re-crawl or backfill from the UI).
    """
    override = (params.get("window_start"), params.get("window_end"))
    if any(override) and not all(override):
        raise CrawlPlanError("give both window_start and window_end, or neither")
    if all(override):
        start, end = _parse("window_start", override[0]), _parse("window_end", override[1])
    elif data_interval_start and data_interval_end and data_interval_start < data_interval_end:
        start, end = data_interval_start.astimezone(UTC), data_interval_end.astimezone(UTC)
    else:
        raise CrawlPlanError(
            "this run has no data interval; trigger it with window_start and window_end"
        )
    if start >= end:
        raise CrawlPlanError(f"window_start {start} is not before window_end {end}")
    names = [s.name for s in select_sources(load_sources(), list(params.get("sources") or []))]
    return {
        "window": {
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "sources": names,
    }


def crawl_in_subprocess(
    source: str, window: dict[str, str], run_id: str, *, timeout_s: float | None = None
) -> dict[str, Any]:
    """Crawl one source in a child process; return its shard summary.

    Arguments go to the child as a list, never through a shell, so nothing from the UI can
    be interpreted as a command. The child closes its spider at ``FRESHLM_CRAWL_TIMEOUT_S``
    (publishing nothing); if it is still running :data:`KILL_GRACE_S` later (default
    ``timeout_s``), its whole process group is killed and :class:`CrawlFailed` says so.
    """
    if timeout_s is None:
        timeout_s = get_settings().crawl_timeout_s + KILL_GRACE_S
    cmd = [
        sys.executable,
        "-m",
        "crawlers.run",
        "--source",
        source,
        "--window-start",
        window["start"],
        "--window-end",
        window["end"],
        "--run-id",
        run_id,
    ]
    log.info("crawling %s for [%s, %s)", source, window["start"], window["end"])
    summaries: list[dict[str, Any]] = []
    tail: deque[str] = deque(maxlen=20)

    def on_line(line: str) -> None:
        if line.startswith(SUMMARY_PREFIX):
            summaries.append(json.loads(line.removeprefix(SUMMARY_PREFIX)))
            return
        tail.append(line)
        log.info("[%s] %s", source, redact_urls(line))

    try:
        rc = run_streaming(cmd, timeout_s=timeout_s, on_line=on_line, grace_s=5.0)
    except ChildTimedOut as exc:
        raise CrawlFailed(f"crawl of {source} timed out: {exc}; nothing was published") from None
    if rc != 0 or not summaries:
        errors = [ln for ln in tail if ln.startswith("crawl: ")]
        message = errors[-1].removeprefix("crawl: ") if errors else "\n".join(tail)
        what = "unreachable" if rc == EXIT_UNREACHABLE else f"failed (exit {rc})"
        raise CrawlFailed(f"crawl of {source} {what}: {redact_urls(message)}")
    return summaries[-1]


def asset_extra(summary: dict[str, Any]) -> dict[str, Any]:
    """The small, JSON-able part of a shard summary that goes into the Asset event's extra."""
    keys = ("source", "kind", "window", "records", "quarantined", "skipped", "errors", "pages")
    extra = {k: summary.get(k) for k in keys}
    if summary.get("folded"):
        extra["folded"] = summary["folded"]  # missed nights this shard also covers
    extra["shard_uri"] = summary.get("shard_uri")
    extra["already_published"] = summary.get("already_published", False)
    return extra


def batch_summary(crawl_plan: dict[str, Any], shards: list[dict[str, Any]]) -> dict[str, Any]:
    """The night's batch: every published shard, totals, and the sources that failed.

    Raises :class:`CrawlFailed` when no source produced a shard: an empty batch must not be
    announced, or curation would run on nothing and call it a night.
    """
    done = {s["source"]: s for s in shards if s}
    failed = [name for name in crawl_plan["sources"] if name not in done]
    if not done:
        raise CrawlFailed(f"every source failed: {failed}; see each crawl task's log")
    return {
        "window": crawl_plan["window"],
        "shards": [done[name]["shard_uri"] for name in sorted(done)],
        "sources": sorted(done),
        "failed_sources": failed,
        "records": sum(int(s.get("records") or 0) for s in done.values()),
        "quarantined": sum(sum((s.get("quarantined") or {}).values()) for s in done.values()),
    }
