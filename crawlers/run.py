"""Crawl one source for one window and publish its raw shard: what a ``freshlm_crawl`` task runs.

Run as its own process (``python -m crawlers.run --source NAME --window-start ... --window-end
...``) because Scrapy's Twisted reactor cannot be restarted inside a long-lived worker. Steps:

1. If the shard for (source, window) is already published, report it and stop: re-running a
   night never fetches twice and never produces a second artifact (DESIGN invariant 1).
2. Load the source's cursor from the store and run its spider with the source's politeness.
   Records and quarantined items go to local part files (:class:`ShardFilesPipeline`).
3. If the source could not be reached at all, exit 3 with the spider's own message and publish
   nothing; if the spider was stopped before it finished (SIGTERM, ``CLOSESPIDER_TIMEOUT``),
   exit 4 and publish nothing (a retry fetches the whole window again); otherwise publish the
   shard atomically (data files, then the manifest with counts, errors by kind, duration,
   pages/s, the cursor it advanced to and, when the spider also fetched nights missed before
   the window, that stretch as ``folded``), then save the cursor.

The last stdout line is ``FRESHLM-SHARD <json summary>`` for the calling task.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from crawlers.sources import Source, SourcesError, load_sources, select_sources
from crawlers.staging import staging_dir, sweep_stale
from freshlm.artifacts import CURSORS, RAW
from freshlm.records import parse_utc
from freshlm.store import Store, StoreError, open_store

log = logging.getLogger("freshlm.crawl")

SUMMARY_PREFIX = "FRESHLM-SHARD "
EXIT_UNREACHABLE = 3
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 4
SHARD_FILES = ("records.jsonl.gz", "quarantine.jsonl.gz")


class CrawlInputError(ValueError):
    """A command-line argument is invalid; the message names it."""


def parse_window_bound(name: str, value: str) -> datetime:
    return parse_utc(name, value, CrawlInputError)


def shard_prefix(source: str, start: datetime, end: datetime) -> str:
    """Where the shard of (source, window) lives: deterministic, so reruns find it."""
    return f"{RAW}/{source}/{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def cursor_key(source: str) -> str:
    return f"{CURSORS}/{source}.json"


def load_cursor(store: Store, source: str) -> dict[str, Any]:
    key = cursor_key(source)
    if not store.exists(key):
        return {}
    doc = store.read_json(key)
    return dict(doc.get("cursor", {})) if isinstance(doc, dict) else {}


def _counters(stats: dict[str, Any], prefix: str) -> dict[str, int]:
    return {
        k.removeprefix(prefix): int(v)
        for k, v in sorted(stats.items())
        if k.startswith(prefix) and "/" not in k.removeprefix(prefix)
    }


def stricter_politeness(politeness: dict[str, Any], spider_cls: Any) -> dict[str, Any]:
    """The source's politeness, never laxer than the spider's own terms (arXiv's API asks for
    one request every 3 s on one connection: a source's shorter delay must not undo that)."""
    own = getattr(spider_cls, "custom_settings", None) or {}
    merged = dict(politeness)
    if "DOWNLOAD_DELAY" in own:
        merged["DOWNLOAD_DELAY"] = max(merged.get("DOWNLOAD_DELAY", 0.0), own["DOWNLOAD_DELAY"])
    if "CONCURRENT_REQUESTS_PER_DOMAIN" in own:
        merged["CONCURRENT_REQUESTS_PER_DOMAIN"] = min(
            merged.get("CONCURRENT_REQUESTS_PER_DOMAIN", 1), own["CONCURRENT_REQUESTS_PER_DOMAIN"]
        )
    for key in ("DOWNLOAD_DELAY_JITTER", "AUTOTHROTTLE_ENABLED"):
        if key in own:
            merged[key] = own[key]
    return merged


def run_spider(
    source: Source,
    window: tuple[datetime, datetime],
    cursor: dict[str, Any],
    shard_dir: Path,
    extra_settings: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Run the source's spider in this process; returns (spider, Scrapy stats)."""
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawlers.settings")
    from scrapy.crawler import CrawlerProcess
    from scrapy.spiderloader import get_spider_loader
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    spider_cls = get_spider_loader(settings).load(source.spider)
    politeness = source.politeness.scrapy_settings()
    settings.setdict(stricter_politeness(politeness, spider_cls), priority="cmdline")
    pipelines = dict(settings.getdict("ITEM_PIPELINES"))
    pipelines["crawlers.pipelines.ShardFilesPipeline"] = 800
    settings.set("ITEM_PIPELINES", pipelines, priority="cmdline")
    settings.set("FRESHLM_SHARD_DIR", str(shard_dir), priority="cmdline")
    settings.setdict(extra_settings or {}, priority="cmdline")

    process = CrawlerProcess(settings, install_root_handler=True)
    crawler = process.create_crawler(spider_cls)
    args = source.spider_args()
    args.update(
        source=source.name,
        cursor=json.dumps(cursor),
        window_start=window[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
        window_end=window[1].strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    process.crawl(crawler, **args)
    process.start()
    return crawler.spider, crawler.stats.get_stats()


def crawl_source(
    source: Source,
    window: tuple[datetime, datetime],
    store: Store,
    *,
    run_id: str = "manual",
    force: bool = False,
    extra_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Crawl ``source`` for ``window`` and publish its shard; returns the summary.

    Raises :class:`SourceUnreachable` when the spider reached nothing.
    """
    prefix = shard_prefix(source.name, *window)
    existing = store.read_manifest(prefix)
    if existing is not None and not force:
        uri = store.uri_for(prefix)
        log.info("shard %s already published; nothing to fetch again", uri)
        return {**existing.fields, "shard_uri": uri, "already_published": True}
    # With --force the published shard stays readable until the new one replaces it.

    # A forced re-crawl starts from the cursor the published shard started from, so it
    # fetches that window's items again instead of skipping them as already seen.
    if existing is not None and isinstance(existing.fields.get("cursor_before"), dict):
        cursor_before = dict(existing.fields["cursor_before"])
    else:
        cursor_before = load_cursor(store, source.name)
    sweep_stale()  # the staging folders of crawls killed before they could remove them
    started = time.monotonic()
    with staging_dir(source.name) as tmp:
        spider, stats = run_spider(source, window, cursor_before, tmp, extra_settings)
        duration = time.monotonic() - started
        if spider.fatal_error:
            raise SourceUnreachable(spider.fatal_error)
        reason = stats.get("finish_reason")
        if reason != "finished":
            # Stopped early (SIGTERM, CLOSESPIDER_TIMEOUT): what was fetched is a fragment.
            raise CrawlIncomplete(
                f"the crawl of {source.name} ended early ({reason}); nothing was published and "
                "the cursor is unchanged, so the next attempt fetches the window again"
            )
        pages = int(stats.get("downloader/response_count", 0))
        summary = {
            "source": source.name,
            "spider": source.spider,
            "kind": source.kind,
            "window": {
                "start": window[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": window[1].strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "records": int(stats.get("freshlm/records_valid", 0)),
            "quarantined": _counters(stats, "freshlm/quarantined/"),
            "skipped": _counters(stats, "freshlm/skipped/"),
            "errors": _counters(stats, "freshlm/errors/"),
            "pages": pages,
            "not_modified": int(stats.get("downloader/response_status_count/304", 0)),
            "retries": int(stats.get("retry/count", 0)),
            "duration_s": round(duration, 3),
            "pages_per_s": round(pages / duration, 2) if duration > 0 else None,
            "finish_reason": stats.get("finish_reason"),
            "cursor_before": cursor_before,
            "cursor_after": spider.next_cursor,
        }
        folded = getattr(spider, "folded", None)
        if folded:
            # Missed nights fetched with this window (the arXiv catch-up); the monitor alerts
            # while they stay uncurated.
            summary["folded"] = folded
        # Attempt-named files: two crawls of one window (a retry racing a manual run) can never
        # overwrite the bytes the other's manifest names; the first manifest wins.
        with store.publisher(
            prefix,
            kind="raw-shard",
            created_by={"run_id": run_id, "tool": "crawlers.run"},
            replace=force,
            attempt_names=True,
        ) as pub:
            sizes = {}
            for name in SHARD_FILES:
                part = tmp / name
                # Stream the part file: shards can be far larger than memory allows.
                with pub.open_write(name) as writer, part.open("rb") as src:
                    shutil.copyfileobj(src, writer, 1024 * 1024)
                sizes[name] = part.stat().st_size
            summary["bytes"] = sizes
            pub.set_manifest_fields(**summary)
    # The cursor moves only after the shard is safely published: a crash before this line
    # means the next run fetches the same items again rather than losing them.
    store.write_json(cursor_key(source.name), {"cursor": spider.next_cursor, "shard": prefix})
    summary["shard_uri"] = store.uri_for(prefix)
    summary["already_published"] = False
    log.info(
        "%s: %d records, quarantined %s, skipped %s, errors %s, %d pages in %.1fs (%.1f pages/s)",
        source.name,
        summary["records"],
        summary["quarantined"] or 0,
        summary["skipped"] or 0,
        summary["errors"] or 0,
        pages,
        duration,
        summary["pages_per_s"] or 0.0,
    )
    return summary


class SourceUnreachable(RuntimeError):
    """The spider reached nothing at the source; the message is the spider's own."""


class CrawlIncomplete(RuntimeError):
    """The spider was stopped before it finished; nothing of it is published."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawlers.run", description=__doc__)
    parser.add_argument("--source", required=True, help="a source name from the sources file")
    parser.add_argument("--window-start", required=True, help="ISO 8601, inclusive")
    parser.add_argument("--window-end", required=True, help="ISO 8601, exclusive")
    parser.add_argument("--run-id", default="manual", help="the Airflow run id, for lineage")
    parser.add_argument("--sources-file", type=Path, default=None)
    parser.add_argument("--force", action="store_true", help="re-crawl a published window")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    try:
        start = parse_window_bound("--window-start", args.window_start)
        end = parse_window_bound("--window-end", args.window_end)
        if start >= end:
            raise CrawlInputError(f"--window-start {start} is not before --window-end {end}")
        (source,) = select_sources(load_sources(args.sources_file), [args.source])
        store = open_store()
        summary = crawl_source(source, (start, end), store, run_id=args.run_id, force=args.force)
    except (CrawlInputError, SourcesError) as exc:
        print(f"crawl: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SourceUnreachable as exc:
        print(f"crawl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except CrawlIncomplete as exc:
        print(f"crawl: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except StoreError as exc:
        print(f"crawl: artifact store error: {exc}", file=sys.stderr)
        return 1
    print(SUMMARY_PREFIX + json.dumps(summary, ensure_ascii=False, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
