"""After curation: gate the candidate, then publish it as a dataset or quarantine the batch.

Artifacts (all in the store, all atomic: data first, manifest last):

* ``gate-reports/<candidate_id>/<run>/`` — ``gate.json`` (the :class:`GateResult`) and
  ``data_docs/**`` (the Great Expectations site), linked from alerts and from the dataset.
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
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from freshlm.artifacts import HELDOUT_FILE, QUARANTINE_FILE, STATS_FILE, TRAIN_FILE
from freshlm.store import Manifest, Store, StoreError

log = logging.getLogger(__name__)

DATASETS = "datasets"
GATE_REPORTS = "gate-reports"
QUARANTINED_BATCHES = "quarantine/batches"
HISTORY_BATCHES = 7


class PublishError(RuntimeError):
    """The candidate cannot be published as asked; the message says why."""


def prefix_of(store: Store, uri_or_prefix: str) -> str:
    """A store key prefix from a full store URI or a prefix."""
    from freshlm.curation.run import shard_prefix

    return shard_prefix(uri_or_prefix, store)


def published_datasets(store: Store) -> list[Manifest]:
    """Manifests of every published dataset, oldest window first."""
    manifests = []
    for prefix in store.list_published(DATASETS + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is not None and manifest.kind == "dataset":
            manifests.append(manifest)
    return sorted(manifests, key=lambda m: (m.fields["window"]["start"], m.artifact_id))


def volume_history(store: Store, before: str) -> dict[str, list[int]]:
    """Per-source volumes of the last published batches whose window ended by ``before``."""
    history: dict[str, list[int]] = {}
    earlier = [m for m in published_datasets(store) if m.fields["window"]["end"] <= before]
    for manifest in earlier[-HISTORY_BATCHES:]:
        volumes = manifest.fields.get("gate", {}).get("volume_by_source", {})
        for source, volume in volumes.items():
            history.setdefault(source, []).append(int(volume))
    return history


def _shard_lineage(store: Store, shards: list[str]) -> list[dict[str, Any]]:
    lineage = []
    for shard in sorted(shards):
        manifest = store.read_manifest(prefix_of(store, shard))
        if manifest is None:
            raise PublishError(f"raw shard {shard} is not published; cannot record lineage")
        fields = manifest.fields
        lineage.append(
            {
                "uri": store.uri_for(prefix_of(store, shard)),
                "source": fields.get("source"),
                "window": fields.get("window"),
                "records": fields.get("records"),
                "content_sha256": manifest.content_sha256,
            }
        )
    return lineage


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:120]


def gate_candidate(
    store: Store,
    candidate: str,
    *,
    window: dict[str, str],
    allowed_sources: list[str],
    run_id: str,
) -> dict[str, Any]:
    """Run the Great Expectations gate on a candidate and store its report and Data Docs.

    Returns ``{"severity", "passed", "report_uri", "data_docs_url", "candidate_uri"}``; the
    full :class:`~expectations.gate.GateResult` is ``gate.json`` in the report.
    """
    from expectations.config import GateContext
    from expectations.gate import run_gate
    from freshlm.records import parse_utc

    cand_prefix, manifest = _candidate_manifest(store, candidate)
    context = GateContext(
        window_start=parse_utc("window.start", window["start"]),
        window_end=parse_utc("window.end", window["end"]),
        allowed_sources=allowed_sources,
        volume_history=volume_history(store, window["start"]),
        run_name=run_id,
    )
    report_prefix = f"{GATE_REPORTS}/{manifest.artifact_id}/{_safe(run_id)}"
    with tempfile.TemporaryDirectory(prefix="freshlm-gate-") as tmp:
        folder = Path(tmp)
        for name in (TRAIN_FILE, HELDOUT_FILE, QUARANTINE_FILE):
            with store.open_read(manifest.key(name)) as src, (folder / name).open("wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
        result = run_gate(
            [folder / TRAIN_FILE, folder / HELDOUT_FILE],
            context=context,
            quarantine=folder / QUARANTINE_FILE,
            data_docs_dir=folder / "data_docs",
        )
        # A retry of the same run replaces its own report (Data Docs carry run timestamps).
        if store.read_manifest(report_prefix) is not None:
            store.delete_artifact(report_prefix)
        docs_root = folder / "data_docs"
        with store.publisher(
            report_prefix, kind="gate-report", created_by={"run_id": run_id}
        ) as pub:
            # Skip the gate's own bookkeeping (dot files such as its rebuild marker).
            site_files = (p for p in docs_root.rglob("*") if p.is_file())
            for path in sorted(p for p in site_files if not p.name.startswith(".")):
                pub.write_bytes(
                    f"data_docs/{path.relative_to(docs_root).as_posix()}", path.read_bytes()
                )
            result_dict = result.to_dict()
            result_dict["data_docs_index"] = store.uri_for(f"{report_prefix}/data_docs/index.html")
            pub.write_bytes("gate.json", json.dumps(result_dict, indent=2, sort_keys=True).encode())
            pub.set_manifest_fields(
                candidate=store.uri_for(cand_prefix),
                severity=result.severity,
                window=window,
                failures=len(result.failures),
            )
    log.info(
        "gate %s for candidate %s: %d failures (%d critical); report %s",
        result.severity,
        manifest.artifact_id,
        len(result.failures),
        len(result.critical_failures),
        store.uri_for(report_prefix),
    )
    return {
        "severity": result.severity,
        "passed": result.passed,
        "candidate_uri": store.uri_for(cand_prefix),
        "report_uri": store.uri_for(report_prefix),
        "data_docs_url": store.uri_for(f"{report_prefix}/data_docs/index.html"),
    }


def read_gate_result(store: Store, report_uri: str) -> dict[str, Any]:
    return json.loads(store.read_bytes(prefix_of(store, report_uri) + "/gate.json"))


@dataclasses.dataclass(frozen=True)
class GatedBatch:
    """A night's candidate after the gate: what publish or quarantine records as lineage."""

    candidate: str  # the candidate artifact's URI (``…/candidates/<id>``)
    report_uri: str  # the gate report artifact's URI
    window: dict[str, str]  # {"start", "end"} ISO 8601 UTC
    shards: list[str]  # raw shard URIs
    run_id: str


def _candidate_manifest(store: Store, candidate: str) -> tuple[str, Manifest]:
    prefix = prefix_of(store, candidate)
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

    earlier = [m for m in published_datasets(store) if m.fields["window"]["end"] <= window["start"]]
    stats = json.loads(store.read_bytes(cand.key(STATS_FILE)))
    fields = {
        "dataset_id": dataset_id,
        "window": window,
        "shards": _shard_lineage(store, batch.shards),
        "parents": [m.artifact_id for m in earlier[-1:]],
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
        "shards": sorted(store.uri_for(prefix_of(store, s)) for s in batch.shards),
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
