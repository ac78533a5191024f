"""New versions of artifacts without a forgotten item; the old ones go only after.

* **Raw shards and candidates** keep their address (a raw shard's is its source and crawl
  window, which the crawler finds it by; a candidate's is named by its dataset's lineage): the
  new version's files go to a fresh attempt folder, the manifest is swapped in one
  compare-and-swap (:class:`freshlm.store.Publisher` with ``replace=True``), and only then are
  the old files deleted. Readers see the old version or the new one, never a mix.
* **Datasets** are content-addressed, so the new version gets a new id (the content hash of its
  documents, as curation computes it) and ``supersedes`` names the old one; the old dataset is
  deleted once the new one is published, with the evaluation probes built from it.

Every new manifest keeps the old one's fields and adds ``forgotten`` (request id and what was
removed per file).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

from freshlm.artifacts import DATASET_KIND, HELDOUT_FILE, PROBES, TRAIN_FILE, dataset_prefix
from freshlm.deny_list import Target
from freshlm.store import Manifest, Store


def _kept(
    store: Store, manifest: Manifest, name: str, target: Target, removed: dict[str, int]
) -> Iterator[dict[str, Any]]:
    for record in store.read_artifact_jsonl(manifest, name):
        if target.matches(record):
            removed[name] = removed.get(name, 0) + 1
            continue
        yield record


def _forgotten_field(manifest: Manifest, request_id: str, removed: Mapping[str, int]) -> list:
    earlier = list(manifest.fields.get("forgotten") or [])
    return [*earlier, {"request_id": request_id, "removed": dict(removed)}]


def _copy_or_filter(
    store: Store, pub: Any, manifest: Manifest, files: list[str], target: Target
) -> dict[str, int]:
    removed: dict[str, int] = {}
    for entry in manifest.files:
        if entry.name in files:
            pub.write_jsonl(entry.name, _kept(store, manifest, entry.name, target, removed))
            continue
        with store.open_read(manifest.key(entry.name)) as src, pub.open_write(entry.name) as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
    return removed


def replace_without(
    store: Store, manifest: Manifest, files: list[str], target: Target, request_id: str
) -> dict[str, int]:
    """Republish a raw shard or candidate at its prefix without ``target`` (see the module
    doc); what was removed per file."""
    created_by = {**dict(manifest.created_by), "forget_request": request_id}
    with store.publisher(
        manifest.prefix,
        kind=manifest.kind,
        created_by=created_by,
        replace=True,
        attempt_names=True,
    ) as pub:
        removed = _copy_or_filter(store, pub, manifest, files, target)
        fields = json.loads(json.dumps(dict(manifest.fields)))
        if isinstance(fields.get("records"), int):  # a raw shard's record count
            fields["records"] -= removed.get("records.jsonl.gz", 0)
        fields["forgotten"] = _forgotten_field(manifest, request_id, removed)
        pub.set_manifest_fields(**fields)
    return removed


def dataset_content_id(lines: list[str]) -> str:
    """A dataset's id: sha256 over its documents' sorted ``id:content_hash:split`` lines, 32
    hex (the content hash curation gives the datasets it publishes)."""
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode())
    return digest.hexdigest()[:32]


def republish_dataset(
    store: Store, manifest: Manifest, target: Target, request_id: str
) -> dict[str, Any]:
    """Publish the dataset without ``target`` under its new content id, then delete the old
    one and its probes; ``{"old", "new", "removed"}`` (``new`` None when nothing is left)."""
    splits = [n for n in (TRAIN_FILE, HELDOUT_FILE) if n in {f.name for f in manifest.files}]
    lines, counts = [], {}
    for name in splits:
        counts[name] = 0
        for doc in store.read_artifact_jsonl(manifest, name):
            if not target.matches(doc):
                lines.append(f"{doc['id']}:{doc['content_hash']}:{doc['split']}\n")
                counts[name] += 1
    old_id = manifest.artifact_id
    new_id = dataset_content_id(lines) if lines else None
    removed: dict[str, int] = {}
    if new_id is not None and new_id != old_id:
        with store.publisher(
            dataset_prefix(new_id),
            kind=DATASET_KIND,
            created_by={**dict(manifest.created_by), "forget_request": request_id},
        ) as pub:
            removed = _copy_or_filter(store, pub, manifest, splits, target)
            fields = json.loads(json.dumps(dict(manifest.fields)))
            fields["dataset_id"] = new_id
            fields["supersedes"] = old_id
            dataset_counts = dict(fields.get("counts") or {})
            dataset_counts.update(
                documents=len(lines),
                train=counts.get(TRAIN_FILE, 0),
                heldout=counts.get(HELDOUT_FILE, 0),
            )
            fields["counts"] = dataset_counts
            fields["forgotten"] = _forgotten_field(manifest, request_id, removed)
            pub.set_manifest_fields(**fields)
    # The new version is in place (or nothing is left of the dataset): the old one goes.
    if new_id != old_id:
        store.delete_artifact(manifest.prefix)
        store.delete_artifact(f"{PROBES}/{old_id}")
    return {"old": old_id, "new": new_id, "removed": removed}
