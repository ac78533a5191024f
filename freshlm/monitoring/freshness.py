"""Freshness figures from a :class:`~freshlm.monitoring.timeline.Timeline`.

* **lag**: the newest crawled document's ``published_at`` minus the end of the newest crawl
  window production was trained on (its lineage's windows, else its datasets' windows), in
  hours; 0 when production has seen everything crawled.
* **gaps**: time between two crawled windows that no crawl covered (a night never crawled); a
  stretch a later crawl fetched with its own window (``folded`` in its shards) is covered.
* **folded crawls**: those stretches (nights the scheduler missed, fetched by the next crawl),
  each with the window that fetched it, its shards, and whether that window was curated: until
  it is, the missed nights' documents are in no dataset.
* **uncurated**: crawled windows with records that no published dataset and no quarantined
  batch covers (curation never ran or failed for good): a missed night.
* **untrained**: published datasets that no model version was trained on: a missed night.
* **folded**: datasets first trained in a run together with a later dataset (their night's run
  was missed, a later run caught up).
* **rejection streaks**: how many of the latest crawled windows in a row the gate refused, and
  how many of the latest promotion decisions in a row were rejections.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from freshlm.monitoring.timeline import (
    CrawledWindow,
    Timeline,
    Window,
    iso,
    newest_document_time,
    parse_time,
)
from freshlm.store import Store


@dataclasses.dataclass
class Freshness:
    newest_document: str | None
    production: str | None
    production_window_end: str | None
    lag_hours: float | None
    gaps: list[dict[str, str]]
    folded_crawls: list[dict[str, Any]]  # window, crawled_in, shards, curated
    uncurated: list[dict[str, Any]]  # window, records, shards
    untrained: list[dict[str, Any]]  # dataset id, window
    folded: list[dict[str, Any]]  # dataset id, window, version that caught up
    gate_rejection_streak: int
    promotion_rejection_streak: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def production_window_end(timeline: Timeline) -> Window | None:
    """The newest crawl window production was trained on, from its lineage."""
    if timeline.production is None:
        return None
    lineage = timeline.production.lineage
    windows = [Window.of(w) for w in lineage.crawl_windows if "start" in w and "end" in w]
    if not windows:
        known = {d.dataset_id: d for d in [*timeline.datasets, *timeline.base_corpus]}
        windows = [Window.of(known[i].window) for i in lineage.dataset_ids if i in known]
    return max(windows, key=lambda w: w.end) if windows else None


def measure(store: Store, timeline: Timeline) -> Freshness:
    """Every figure of the module doc."""
    nonempty = [c for c in timeline.crawled if c.records > 0]
    newest = None
    if nonempty:
        newest = newest_document_time(store, nonempty[-1]) or nonempty[-1].window.end
    trained_on = production_window_end(timeline)
    lag = None
    if newest is not None and trained_on is not None:
        lag = round(max(0.0, (newest - trained_on.end).total_seconds() / 3600), 2)
    return Freshness(
        newest_document=iso(newest) if newest else None,
        production=timeline.production.version_id if timeline.production else None,
        production_window_end=iso(trained_on.end) if trained_on else None,
        lag_hours=lag,
        gaps=_gaps(timeline),
        folded_crawls=_folded_crawls(timeline),
        uncurated=_uncurated(timeline),
        untrained=_untrained(timeline),
        folded=_folded(timeline),
        gate_rejection_streak=_gate_streak(timeline),
        promotion_rejection_streak=_promotion_streak(timeline),
    )


def _gaps(timeline: Timeline) -> list[dict[str, str]]:
    fetched = [w for c in timeline.crawled for w in (c.window, *c.folded)]
    gaps = []
    covered_until = None
    for window in sorted(fetched, key=lambda w: (w.start, w.end)):
        if covered_until is not None and window.start > covered_until:
            gaps.append(Window(covered_until, window.start).to_dict())
        if covered_until is None or window.end > covered_until:
            covered_until = window.end
    return gaps


def _curated(timeline: Timeline) -> list[Window]:
    return [Window.of(d.window) for d in timeline.datasets] + list(timeline.quarantined)


def _is_uncurated(crawled: CrawledWindow, curated: list[Window]) -> bool:
    return crawled.records > 0 and not any(crawled.window.overlaps(w) for w in curated)


def _uncurated(timeline: Timeline) -> list[dict[str, Any]]:
    curated = _curated(timeline)
    return [
        {"window": c.window.to_dict(), "records": c.records, "shards": sorted(c.shards)}
        for c in timeline.crawled
        if _is_uncurated(c, curated)
    ]


def _folded_crawls(timeline: Timeline) -> list[dict[str, Any]]:
    curated = _curated(timeline)
    return [
        {
            "window": stretch.to_dict(),
            "crawled_in": c.window.to_dict(),
            "shards": sorted(c.shards),
            "curated": not _is_uncurated(c, curated),
        }
        for c in timeline.crawled
        for stretch in sorted(c.folded, key=lambda w: w.start)
    ]


def _trained_in(timeline: Timeline) -> dict[str, list[Any]]:
    """dataset id -> the versions trained on it."""
    trained: dict[str, list[Any]] = {}
    for version in timeline.versions:
        for dataset_id in version.lineage.dataset_ids:
            trained.setdefault(dataset_id, []).append(version)
    return trained


def _untrained(timeline: Timeline) -> list[dict[str, Any]]:
    trained = _trained_in(timeline)
    return [
        {"dataset_id": d.dataset_id, "window": dict(d.window)}
        for d in timeline.datasets
        if d.dataset_id not in trained
    ]


def _folded(timeline: Timeline) -> list[dict[str, Any]]:
    """Datasets whose every training run also took a dataset of a later window."""
    by_id = {d.dataset_id: d for d in timeline.datasets}
    folded = []
    for dataset_id, versions in _trained_in(timeline).items():
        dataset = by_id.get(dataset_id)
        if dataset is None:
            continue
        own_end = parse_time(dataset.window["end"])

        def later(version: Any, own_end=own_end) -> bool:
            ends = [
                parse_time(by_id[i].window["end"])
                for i in version.lineage.dataset_ids
                if i in by_id
            ]
            return any(end > own_end for end in ends)

        if all(later(v) for v in versions):
            folded.append(
                {
                    "dataset_id": dataset_id,
                    "window": dict(dataset.window),
                    "caught_up_in": sorted(v.version_id for v in versions),
                }
            )
    return sorted(folded, key=lambda f: f["window"]["start"])


def _gate_streak(timeline: Timeline) -> int:
    published = [Window.of(d.window) for d in timeline.datasets]
    streak = 0
    for crawled in reversed(timeline.crawled):
        if any(crawled.window.overlaps(w) for w in published):
            break
        if any(crawled.window.overlaps(w) for w in timeline.quarantined):
            streak += 1
    return streak


def _promotion_streak(timeline: Timeline) -> int:
    streak = 0
    for decision in reversed(timeline.decisions):
        if decision["outcome"] != "rejected":
            break
        streak += 1
    return streak
