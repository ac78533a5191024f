"""Find expired raw shards and quarantine, keep what live lineage needs, delete the rest;
and delete the checkpoints of training runs whose model version is published.

:func:`sweep` returns (and, unless ``dry_run``, publishes under ``retention/reports/``) a
report: per artifact its kind, window end, age in days and the decision — ``deleted`` (or
``would delete`` in a dry run), ``kept: lineage of <version>``, ``kept: not expired`` or, for
a checkpoint, ``kept: run not finished``.

A checkpoint serves only to resume its run; once the run's version is published an identical
rerun trains nothing, so the checkpoint is dead weight (the optimizer's state: several times
the model's size). Training deletes its run's checkpoints when it publishes; the sweep finds
those a rank killed between the two left behind, and those of any store whose runs kept theirs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from freshlm.artifacts import (
    CANDIDATE_KIND,
    CANDIDATES,
    MODELS,
    QUARANTINED_BATCH_KIND,
    QUARANTINED_BATCHES,
    RAW,
    RAW_SHARD_KIND,
    RETENTION_REPORTS,
    RUNS,
    dataset_prefix,
)
from freshlm.records import parse_utc
from freshlm.registry import get_version, list_aliases
from freshlm.registry.errors import RegistryError
from freshlm.store import Manifest, Store

log = logging.getLogger("freshlm.retention")

#: Retention kind -> (store root, manifest kind) of the artifacts it covers.
COVERED = {
    "raw": ((RAW, RAW_SHARD_KIND),),
    "quarantine": ((QUARANTINED_BATCHES, QUARANTINED_BATCH_KIND), (CANDIDATES, CANDIDATE_KIND)),
}


class RetentionError(ValueError):
    """A retention input is invalid; the message names it."""


@dataclasses.dataclass(frozen=True)
class Policy:
    """Days each retention kind is kept after its crawl window ends."""

    raw_days: int
    quarantine_days: int

    @classmethod
    def from_settings(cls) -> Policy:
        from freshlm.settings import get_settings

        s = get_settings()
        return cls(raw_days=s.retain_raw_days, quarantine_days=s.retain_quarantine_days)

    def days(self, kind: str) -> int:
        return {"raw": self.raw_days, "quarantine": self.quarantine_days}[kind]


def _window_end(manifest: Manifest) -> datetime | None:
    window = manifest.fields.get("window")
    end = window.get("end") if isinstance(window, dict) else None
    if isinstance(window, list) and len(window) == 2:
        end = window[1]
    try:
        return parse_utc("window end", str(end)) if end else None
    except ValueError:
        return None


def _covered(store: Store) -> Iterator[tuple[str, Manifest]]:
    for kind, roots in COVERED.items():
        for root, manifest_kind in roots:
            for prefix in store.list_published(root + "/"):
                manifest = store.read_manifest(prefix)
                if manifest is not None and manifest.kind == manifest_kind:
                    yield kind, manifest


def _checkpoint_rows(store: Store, dry_run: bool) -> list[dict[str, Any]]:
    """One row per published checkpoint under ``runs/``; those of a run whose version is
    published are deleted (unless ``dry_run``)."""
    rows = []
    for prefix in store.list_published(RUNS + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is None:
            continue
        version_id = manifest.fields.get("version_id")
        spent = bool(version_id) and store.read_manifest(f"{MODELS}/{version_id}") is not None
        row = {
            "prefix": prefix,
            "kind": "checkpoint",
            "window_end": None,
            "age_days": None,
            "bytes": manifest.total_size,
            "decision": "kept: run not finished",
        }
        if spent:
            row["decision"] = "would delete" if dry_run else "deleted"
            if not dry_run:
                store.delete_artifact(prefix)
        rows.append(row)
    return rows


def needed_by_live_models(store: Store) -> dict[str, str]:
    """Prefix of every raw shard and candidate behind a live version's datasets (the version
    an alias points at, and its ancestors) -> the live version that needs it."""
    needed: dict[str, str] = {}
    for alias in list_aliases(store).values():
        live = alias.version_id
        version_id: str | None = live
        seen = set()
        while version_id and version_id not in seen:
            seen.add(version_id)
            try:
                version = get_version(store, version_id)
            except RegistryError:
                break
            extra = version.lineage.extra or {}
            for dataset_id in (
                *version.lineage.dataset_ids,
                *(extra.get("replay_dataset_ids") or ()),
            ):
                dataset = store.read_manifest(dataset_prefix(str(dataset_id)))
                if dataset is None:
                    continue
                uris = [s.get("uri") for s in dataset.fields.get("shards") or []]
                uris.append(dataset.fields.get("candidate"))
                for uri in uris:
                    if isinstance(uri, str) and uri:
                        needed.setdefault(store.prefix_for(uri), live)
            version_id = version.lineage.parent_version
    return needed


def sweep(
    store: Store,
    *,
    now: datetime,
    policy: Policy | None = None,
    dry_run: bool = True,
    run_id: str = "manual",
) -> dict[str, Any]:
    """Decide for every raw shard, quarantined artifact and run checkpoint; delete the
    expired and spent ones unless ``dry_run``. The report (published under
    ``retention/reports/<run_id>.json`` when not a dry run)."""
    if now.tzinfo is None:
        raise RetentionError(f"now={now!r}: a timezone-aware time is required")
    policy = policy or Policy.from_settings()
    needed = needed_by_live_models(store)
    rows = []
    for kind, manifest in _covered(store):
        end = _window_end(manifest)
        age = (now - end).total_seconds() / 86400 if end else None
        row = {
            "prefix": manifest.prefix,
            "kind": kind,
            "window_end": end.strftime("%Y-%m-%dT%H:%M:%SZ") if end else None,
            "age_days": round(age, 2) if age is not None else None,
            "bytes": manifest.total_size,
        }
        if end is None or now - end <= timedelta(days=policy.days(kind)):
            row["decision"] = "kept: not expired" if end else "kept: no crawl window"
        elif manifest.prefix in needed:
            row["decision"] = f"kept: lineage of {needed[manifest.prefix]}"
        else:
            row["decision"] = "would delete" if dry_run else "deleted"
            if not dry_run:
                store.delete_artifact(manifest.prefix)
        rows.append(row)
    rows.extend(_checkpoint_rows(store, dry_run))
    expired = [r for r in rows if r["decision"] in ("deleted", "would delete")]
    report = {
        "run_id": run_id,
        "now": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dry_run": dry_run,
        "policy_days": {"raw": policy.raw_days, "quarantine": policy.quarantine_days},
        "artifacts": rows,
        "deleted" if not dry_run else "would_delete": [r["prefix"] for r in expired],
        "bytes_freed" if not dry_run else "bytes_to_free": sum(r["bytes"] for r in expired),
        "kept_for_lineage": [r["prefix"] for r in rows if r["decision"].startswith("kept: lin")],
    }
    if not dry_run:
        store.write_json(f"{RETENTION_REPORTS}/{run_id}.json", report)
    log.info(
        "retention%s: %d artifact(s) checked, %d %s (%d bytes), %d kept for a live model",
        " (dry run)" if dry_run else "",
        len(rows),
        len(expired),
        "would be deleted" if dry_run else "deleted",
        report.get("bytes_freed", report.get("bytes_to_free")),
        len(report["kept_for_lineage"]),
    )
    return report
