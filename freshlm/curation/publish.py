"""After the gate: publish the candidate as a dataset or quarantine the batch.

The gate's verdict arrives as its report, ``gate.json`` of ``gate-reports/<candidate>/<run>/``
(written by the gate stage, :mod:`expectations.verdict`). Artifacts (all in the store, all
atomic: data first, manifest last):

* ``datasets/<dataset_id>/`` — ``train.jsonl.gz``, ``heldout.jsonl.gz``, ``stats.json``; the
  id is the candidate's content hash, so a rerun publishes the same id, never a duplicate. Its
  manifest carries the lineage: raw shards and their crawl windows, parent dataset, counts per
  step and reason, tokens, and the gate's summary (and an operator's acceptance, if any).
* ``quarantine/batches/<candidate_id>/`` — ``batch.json``: why a batch was refused (the gate's
  failures), which shards and window it came from; the candidate itself stays in
  ``candidates/`` with every document, so nothing is lost.

The dedup index is committed only when a dataset is published.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from typing import Any

from freshlm.artifacts import (
    DATASETS,
    HELDOUT_FILE,
    QUARANTINED_BATCHES,
    STATS_FILE,
    TRAIN_FILE,
    published_datasets,
)
from freshlm.store import Manifest, Store, StoreError

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The candidate cannot be published as asked; the message says why."""


def _shard_lineage(store: Store, shards: list[str]) -> list[dict[str, Any]]:
    lineage = []
    for shard in sorted(shards):
        manifest = store.read_manifest(store.prefix_for(shard))
        if manifest is None:
            raise PublishError(f"raw shard {shard} is not published; cannot record lineage")
        fields = manifest.fields
        lineage.append(
            {
                "uri": store.uri_for(store.prefix_for(shard)),
                "source": fields.get("source"),
                "window": fields.get("window"),
                "records": fields.get("records"),
                "content_sha256": manifest.content_sha256,
            }
        )
    return lineage


@dataclasses.dataclass(frozen=True)
class GatedBatch:
    """A night's candidate after the gate: what publish or quarantine records as lineage."""

    candidate: str  # the candidate artifact's URI (``…/candidates/<id>``)
    report_uri: str  # the gate report artifact's URI
    window: dict[str, str]  # {"start", "end"} ISO 8601 UTC
    shards: list[str]  # raw shard URIs
    run_id: str


def _candidate_manifest(store: Store, candidate: str) -> tuple[str, Manifest]:
    prefix = store.prefix_for(candidate)
    manifest = store.read_manifest(prefix)
    if manifest is None:
        raise PublishError(f"candidate {candidate} is not published")
    return prefix, manifest


def publish_dataset(store: Store, batch: GatedBatch, gate: dict[str, Any]) -> dict[str, Any]:
    """Publish a gated candidate as ``datasets/<id>`` and commit it to the dedup index.

    ``gate`` is the gate result as a dict (``gate.json``); it must have passed (possibly by an
    operator's acceptance). Publishing an already published dataset returns it unchanged.
    """
    from freshlm.curation.dedup_index import commit_candidate

    if not gate.get("passed"):
        raise PublishError(
            f"candidate {batch.candidate} failed the gate ({gate.get('severity')}); "
            "accept it with a reason to publish"
        )
    cand_prefix, cand = _candidate_manifest(store, batch.candidate)
    window = batch.window
    dataset_id = cand.artifact_id
    prefix = f"{DATASETS}/{dataset_id}"
    existing = store.read_manifest(prefix)
    if existing is not None:
        log.info("dataset %s already published; nothing to do", dataset_id)
        return _summary(store, prefix, existing, already=True)

    earlier = [d for d in published_datasets(store) if d.window["end"] <= window["start"]]
    stats = json.loads(store.read_bytes(cand.key(STATS_FILE)))
    fields = {
        "dataset_id": dataset_id,
        "window": window,
        "shards": _shard_lineage(store, batch.shards),
        "parents": [d.dataset_id for d in earlier[-1:]],
        "candidate": store.uri_for(cand_prefix),
        "counts": {
            "documents": cand.fields["counts"]["kept"],
            "docs_in": cand.fields["counts"]["docs_in"],
            "train": cand.fields["counts"]["train"],
            "heldout": cand.fields["counts"]["heldout"],
            "dropped": cand.fields["counts"]["dropped"],
            "by_reason": cand.fields.get("by_reason"),
        },
        "tokens": cand.fields["counts"]["tokens"],
        "sources": sorted(gate.get("statistics", {}).get("sources", {})),
        "gate": {
            "severity": gate["severity"],
            "passed": gate["passed"],
            "failures": [
                {k: f.get(k) for k in ("check", "severity", "observed", "expected")}
                for f in gate.get("failures", [])
            ],
            "override": gate.get("override"),
            "report": batch.report_uri,
            "data_docs": gate.get("data_docs_index"),
            "volume_by_source": gate.get("statistics", {}).get("volume_by_source", {}),
        },
    }
    with store.publisher(prefix, kind="dataset", created_by={"run_id": batch.run_id}) as pub:
        for name in (TRAIN_FILE, HELDOUT_FILE):
            with pub.open_write(name) as writer, store.open_read(cand.key(name)) as src:
                shutil.copyfileobj(src, writer, 1024 * 1024)
        pub.write_bytes(STATS_FILE, json.dumps(stats, indent=2, sort_keys=True).encode())
        pub.set_manifest_fields(**fields)
    manifest = store.read_manifest(prefix)
    try:
        commit_candidate(store, cand_prefix, dataset_id)
    except StoreError:
        # The dataset is published; a failed index commit must be retried, not hidden.
        log.exception("dataset %s published but its dedup index commit failed", dataset_id)
        raise
    log.info(
        "published dataset %s: %s documents (%s train, %s heldout), %s tokens, gate %s",
        dataset_id,
        fields["counts"]["documents"],
        fields["counts"]["train"],
        fields["counts"]["heldout"],
        fields["tokens"],
        gate["severity"],
    )
    return _summary(store, prefix, manifest, already=False)


def _summary(store: Store, prefix: str, manifest: Manifest, *, already: bool) -> dict[str, Any]:
    f = manifest.fields
    return {
        "dataset_id": f["dataset_id"],
        "uri": store.uri_for(prefix),
        "window": f["window"],
        "documents": f["counts"]["documents"],
        "train": f["counts"]["train"],
        "heldout": f["counts"]["heldout"],
        "tokens": f["tokens"],
        "gate": f["gate"]["severity"],
        "accepted": f["gate"]["override"] is not None,
        "already_published": already,
    }


def quarantine_batch(store: Store, batch: GatedBatch, gate: dict[str, Any]) -> dict[str, Any]:
    """Record a refused batch under ``quarantine/batches/<candidate_id>`` (idempotent)."""
    cand_prefix, cand = _candidate_manifest(store, batch.candidate)
    window = batch.window
    prefix = f"{QUARANTINED_BATCHES}/{cand.artifact_id}"
    record = {
        "candidate": store.uri_for(cand_prefix),
        "window": window,
        "shards": sorted(store.uri_for(store.prefix_for(s)) for s in batch.shards),
        "severity": gate["severity"],
        "failures": [
            {k: f.get(k) for k in ("check", "severity", "observed", "expected", "unexpected_count")}
            for f in gate.get("failures", [])
        ],
        "documents": gate.get("statistics", {}).get("documents"),
        "quarantined_by_curation": gate.get("statistics", {}).get("quarantined_by_reason"),
        "report": batch.report_uri,
        "data_docs": gate.get("data_docs_index"),
    }
    if store.read_manifest(prefix) is None:
        with store.publisher(
            prefix, kind="quarantined-batch", created_by={"run_id": batch.run_id}
        ) as pub:
            pub.write_bytes("batch.json", json.dumps(record, indent=2, sort_keys=True).encode())
            pub.set_manifest_fields(**{k: record[k] for k in ("window", "severity", "candidate")})
    log.warning(
        "batch for %s..%s quarantined: %s",
        window["start"],
        window["end"],
        ", ".join(sorted({f["check"] for f in record["failures"] if f["severity"] == "critical"})),
    )
    return {"quarantine_uri": store.uri_for(prefix), **record}
