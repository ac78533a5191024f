"""The lineage index: which published artifact holds which documents, and what was built on it.

``freshlm_forget`` asks it where an item is; ``freshlm_retention`` asks it what a live model
still needs. One entry per artifact, ``lineage-index/<artifact prefix>.json``:

* artifacts that hold documents — raw shards (``raw/``: records and the crawler's quarantine
  file), candidates (``candidates/``: kept and dropped documents) and datasets
  (``datasets/``) — list the keys their documents can be forgotten by
  (:func:`freshlm.deny_list.record_keys`: id, URL, author) per data file;
* artifacts built on datasets — training sets (``trainsets/``) and model versions
  (``models/``) — list those dataset ids.

**How it stays up to date: by scanning manifests, not by hooks at publish time.** Each entry
records the ``content_sha256`` of the manifest it was built from; :func:`refresh` lists the
published artifacts, reads the data files only of those with no entry or a stale one (new or
replaced since), and drops entries whose artifact is gone. A published artifact is immutable,
so each is read once; a nightly refresh reads what that night published. This keeps every
stage free of index code and leaves no window in which an artifact is published but missing
from the index (a crash after a publish is repaired by the next refresh, which every user of
the index runs first).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from freshlm.artifacts import (
    CANDIDATE_KIND,
    CANDIDATES,
    DATASET_KIND,
    DATASETS,
    LINEAGE_INDEX,
    MODELS,
    RAW,
    RAW_SHARD_KIND,
    TRAINSET_KIND,
    TRAINSETS,
)
from freshlm.deny_list import Target, record_keys
from freshlm.store import Manifest, Store, StoreError

log = logging.getLogger(__name__)

#: Prefix -> the kind of artifact whose data files hold documents (JSON Lines).
DOCUMENT_ROOTS = {RAW: RAW_SHARD_KIND, CANDIDATES: CANDIDATE_KIND, DATASETS: DATASET_KIND}
#: Prefix -> the kind of artifact built on datasets.
DERIVED_ROOTS = {TRAINSETS: TRAINSET_KIND, MODELS: "model"}


@dataclasses.dataclass(frozen=True)
class Entry:
    """What one published artifact holds: documents' keys per file, or the datasets used."""

    prefix: str
    kind: str
    content_sha256: str
    files: Mapping[str, list[str]]  # data file -> sorted keys of its records
    datasets: tuple[str, ...]  # for training sets and models: the dataset ids they used

    def files_with(self, target: Target) -> list[str]:
        return sorted(name for name, keys in self.files.items() if target.key in keys)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "kind": self.kind,
            "content_sha256": self.content_sha256,
            "files": {k: list(v) for k, v in self.files.items()},
            "datasets": list(self.datasets),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Entry:
        return cls(
            prefix=str(doc["prefix"]),
            kind=str(doc["kind"]),
            content_sha256=str(doc["content_sha256"]),
            files={str(k): list(v) for k, v in dict(doc["files"]).items()},
            datasets=tuple(doc.get("datasets") or ()),
        )


def entry_key(prefix: str) -> str:
    return f"{LINEAGE_INDEX}/{prefix}.json"


def datasets_used(manifest: Manifest) -> tuple[str, ...]:
    """The dataset ids a training set or model version was built from (its manifest)."""
    fields = manifest.fields
    if manifest.kind == TRAINSET_KIND:
        return tuple(sorted({str(m["dataset_id"]) for m in fields.get("mix") or []}))
    lineage = fields.get("lineage") or {}
    extra = lineage.get("extra") or {}
    used = set(lineage.get("dataset_ids") or ()) | set(extra.get("replay_dataset_ids") or ())
    return tuple(sorted(str(d) for d in used))


def _build(store: Store, manifest: Manifest) -> Entry:
    files: dict[str, list[str]] = {}
    datasets: tuple[str, ...] = ()
    if manifest.kind in DOCUMENT_ROOTS.values():
        for entry in manifest.files:
            if ".jsonl" not in entry.name:
                continue
            keys: set[str] = set()
            for record in store.read_artifact_jsonl(manifest, entry.name):
                keys |= record_keys(record)
            files[entry.name] = sorted(keys)
    else:
        datasets = datasets_used(manifest)
    return Entry(manifest.prefix, manifest.kind, manifest.content_sha256, files, datasets)


def _published(store: Store) -> Iterator[Manifest]:
    kinds = {**DOCUMENT_ROOTS, **DERIVED_ROOTS}
    for root, kind in kinds.items():
        for prefix in store.list_published(root + "/"):
            if "/_attempts/" in prefix or "/checkpoints/" in prefix:
                continue
            manifest = store.read_manifest(prefix)
            if manifest is not None and manifest.kind == kind:
                yield manifest


def read_entry(store: Store, prefix: str) -> Entry | None:
    key = entry_key(prefix)
    if not store.exists(key):
        return None
    try:
        return Entry.from_dict(store.read_json(key))
    except (KeyError, TypeError, ValueError, StoreError):
        return None  # unreadable: rebuilt by the next refresh


def refresh(store: Store) -> dict[str, int]:
    """Bring the index up to date with the published artifacts (see the module doc); the
    counts of entries ``kept``, ``built`` and ``dropped``."""
    counts = {"kept": 0, "built": 0, "dropped": 0}
    live = set()
    for manifest in _published(store):
        live.add(entry_key(manifest.prefix))
        entry = read_entry(store, manifest.prefix)
        if entry is not None and entry.content_sha256 == manifest.content_sha256:
            counts["kept"] += 1
            continue
        store.write_json(entry_key(manifest.prefix), _build(store, manifest).to_dict())
        counts["built"] += 1
    for key in store.list(LINEAGE_INDEX + "/"):
        if key.endswith(".json") and key not in live:
            store.delete(key)
            counts["dropped"] += 1
    log.info("lineage index: %s", counts)
    return counts


def entries(store: Store, kinds: Iterable[str] | None = None) -> list[Entry]:
    """Every entry (after :func:`refresh`), optionally of some kinds only."""
    wanted = set(kinds) if kinds is not None else None
    found = []
    for key in store.list(LINEAGE_INDEX + "/"):
        if not key.endswith(".json"):
            continue
        entry = read_entry(store, key[len(LINEAGE_INDEX) + 1 : -len(".json")])
        if entry is not None and (wanted is None or entry.kind in wanted):
            found.append(entry)
    return found


def holding(store: Store, target: Target) -> list[tuple[Entry, list[str]]]:
    """The artifacts with documents of ``target``, each with the files that hold them."""
    hits = []
    for entry in entries(store, DOCUMENT_ROOTS.values()):
        files = entry.files_with(target)
        if files:
            hits.append((entry, files))
    return hits


def built_on(store: Store, dataset_ids: Iterable[str]) -> list[Entry]:
    """Training sets and model versions built on any of ``dataset_ids``."""
    wanted = set(dataset_ids)
    return [e for e in entries(store, DERIVED_ROOTS.values()) if wanted & set(e.datasets)]
