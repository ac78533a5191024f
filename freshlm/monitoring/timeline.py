"""What the store says happened, night by night: read once per check.

* crawled windows: every published raw shard (``raw/<source>/<window>/``, kind ``raw-shard``)
  grouped by its crawl window, with its record count and the stretches before the window its
  shards also fetched (``folded``: nights the scheduler missed, caught up by this crawl);
* published datasets (their window), quarantined batches (their window): what curation made
  of each window;
* model versions and the datasets each was trained on (its lineage); the production version;
* promotion decisions (``registry/decisions/``): promoted or rejected, when.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from freshlm.artifacts import (
    BASE_CORPUS_ROLE,
    QUARANTINED_BATCHES,
    RAW,
    REGISTRY_DECISIONS,
    PublishedDataset,
    published_datasets,
)
from freshlm.registry import PRODUCTION, ModelVersion, list_versions, read_alias
from freshlm.store import Store

RAW_SHARD_KIND = "raw-shard"
QUARANTINED_KIND = "quarantined-batch"
RECORDS_FILE = "records.jsonl.gz"


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 time as the stages write it (``…Z`` or with an offset), in UTC."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Window:
        return cls(parse_time(doc["start"]), parse_time(doc["end"]))

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end

    def to_dict(self) -> dict[str, str]:
        return {"start": iso(self.start), "end": iso(self.end)}


@dataclasses.dataclass
class CrawledWindow:
    window: Window
    records: int = 0
    shards: list[str] = dataclasses.field(default_factory=list)  # store URIs
    folded: list[Window] = dataclasses.field(default_factory=list)  # missed nights fetched too


@dataclasses.dataclass
class Timeline:
    crawled: list[CrawledWindow]  # oldest first
    datasets: list[PublishedDataset]  # crawled datasets (not the base corpus), oldest first
    base_corpus: list[PublishedDataset]
    quarantined: list[Window]
    versions: list[ModelVersion]
    production: ModelVersion | None
    decisions: list[dict[str, Any]]  # oldest first


def read_timeline(store: Store) -> Timeline:
    """Everything :mod:`freshlm.monitoring.freshness` needs, read from ``store``."""
    all_datasets = published_datasets(store)
    versions = list_versions(store)
    alias = read_alias(store, PRODUCTION)
    production = next((v for v in versions if alias and v.version_id == alias.version_id), None)
    return Timeline(
        crawled=_crawled_windows(store),
        datasets=[d for d in all_datasets if d.role != BASE_CORPUS_ROLE],
        base_corpus=[d for d in all_datasets if d.role == BASE_CORPUS_ROLE],
        quarantined=_quarantined_windows(store),
        versions=versions,
        production=production,
        decisions=_decisions(store),
    )


def _crawled_windows(store: Store) -> list[CrawledWindow]:
    by_window: dict[Window, CrawledWindow] = {}
    for prefix in store.list_published(RAW + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is None or manifest.kind != RAW_SHARD_KIND or "window" not in manifest.fields:
            continue
        window = Window.of(manifest.fields["window"])
        entry = by_window.setdefault(window, CrawledWindow(window))
        entry.records += int(manifest.fields.get("records") or 0)
        entry.shards.append(store.uri_for(prefix))
        folded = _folded_stretch(manifest.fields.get("folded"))
        if folded is not None and folded not in entry.folded:
            entry.folded.append(folded)
    return sorted(by_window.values(), key=lambda c: (c.window.start, c.window.end))


def _folded_stretch(doc: Any) -> Window | None:
    """A shard manifest's ``folded`` stretch, or None when it has none (or an unreadable one)."""
    if not isinstance(doc, Mapping):
        return None
    try:
        stretch = Window.of(doc)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return stretch if stretch.start < stretch.end else None


def newest_document_time(store: Store, crawled: CrawledWindow) -> dt.datetime | None:
    """The newest ``published_at`` among the window's crawled records (its shards' record
    files), or None when they hold none."""
    newest = None
    for uri in crawled.shards:
        manifest = store.read_manifest(store.prefix_for(uri))
        if manifest is None or RECORDS_FILE not in {f.name for f in manifest.files}:
            continue
        for record in store.read_jsonl(manifest.key(RECORDS_FILE)):
            try:
                published = parse_time(str(record["published_at"]))
            except (KeyError, ValueError):
                continue
            newest = published if newest is None or published > newest else newest
    return newest


def _quarantined_windows(store: Store) -> list[Window]:
    windows = []
    for prefix in store.list_published(QUARANTINED_BATCHES + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is not None and manifest.kind == QUARANTINED_KIND:
            windows.append(Window.of(manifest.fields["window"]))
    return sorted(windows, key=lambda w: w.start)


def _decisions(store: Store) -> list[dict[str, Any]]:
    records = []
    for key in store.list(REGISTRY_DECISIONS + "/"):
        if key.endswith(".json"):
            record = store.read_json(key)
            if isinstance(record, dict) and record.get("outcome") in ("promoted", "rejected"):
                records.append(record)
    return sorted(records, key=lambda r: str(r.get("decided_at")))
