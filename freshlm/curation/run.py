"""Curation's entry point: raw shards in, a candidate dataset out. The curate DAG task calls
:func:`curate`; everything it does is logged and returned in numbers.

Usage::

    from freshlm.curation.run import curate
    result = curate(
        ["file:///…/store/raw/tessford-courier/20261102T000000Z_20261103T000000Z", …],
        store,
        window=("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"),
    )
    result.candidate_id, result.uri, result.summary["kept"]

Steps (:func:`build_pipeline`): intake → normalize → language → quality → dedup → pii →
toxicity → split. Dropped documents go to ``quarantine.jsonl.gz`` with their reason.

Idempotence: shards are read in sorted order, the dedup index is loaded as it was before this
window (see :mod:`freshlm.curation.dedup_index`), and no output depends on the clock, so a rerun
of the same window — even after its dataset was published — gives the same candidate id and
byte-identical files. The dedup index is *not* changed here: the publish stage commits the
candidate's ``dedup_segment.bin`` with :func:`~freshlm.curation.dedup_index.commit_candidate`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from freshlm.artifacts import CANDIDATES, HELDOUT_FILE, QUARANTINE_FILE, STATS_FILE, TRAIN_FILE
from freshlm.curation.candidate import (
    DEDUP_SEGMENT_FILE,
    CandidateResult,
    JsonlGzSink,
    dataset_id_for,
    finalize,
)
from freshlm.curation.config import CurationConfig
from freshlm.curation.dedup_index import DedupIndex, IndexSegment
from freshlm.curation.intake import IntakeStep
from freshlm.curation.steps import (
    DedupStep,
    LanguageStep,
    NormalizeStep,
    PIIStep,
    Pipeline,
    QualityStep,
    SplitStep,
    ToxicityStep,
)
from freshlm.curation.steps.base import Doc, QuarantineSink
from freshlm.store import Store, StoreError

log = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl.gz"
_PROGRESS_EVERY = 10_000


def build_pipeline(
    config: CurationConfig, quarantine: QuarantineSink, index: DedupIndex | None = None
) -> Pipeline:
    """The curation pipeline for ``config``; ``index`` holds what was published before."""
    return Pipeline(
        [
            IntakeStep(),
            NormalizeStep(config.normalize),
            LanguageStep(config.language),
            QualityStep(config.quality),
            DedupStep(config.dedup, index),
            PIIStep(config.pii),
            ToxicityStep(config.toxicity),
            SplitStep(config.split),
        ],
        quarantine=quarantine,
    )


def _iso(value: str | datetime) -> str:
    if isinstance(value, datetime):
        from freshlm.records import iso_utc

        return iso_utc(value)
    return str(value)


def read_shards(raw_shard_uris: Sequence[str], store: Store) -> Iterator[Doc]:
    """Raw records of the shards, in sorted shard order, each tagged with its shard URI.

    Only published shards (with a manifest) are read; an unpublished one is an error naming it.
    """
    for prefix in sorted({store.prefix_for(u) for u in raw_shard_uris}):
        manifest = store.read_manifest(prefix)
        if manifest is None:
            raise StoreError(
                store.uri_for(prefix), "raw shard is not published (no manifest); crawl it first"
            )
        shard_uri = store.uri_for(prefix)
        count = 0
        # Verified as it streams: a shard whose bytes are not what its manifest says fails
        # curation before anything built from it is published.
        for record in store.read_artifact_jsonl(manifest, RECORDS_FILE):
            record["_shard"] = shard_uri
            count += 1
            yield record
        log.info("read %d records from %s", count, shard_uri)


def curate(
    raw_shard_uris: Sequence[str],
    store: Store,
    *,
    config: CurationConfig | None = None,
    window: tuple[str | datetime, str | datetime],
    out_dir: Path | str | None = None,
) -> CandidateResult:
    """Curate the raw shards of ``window`` into a candidate dataset.

    Writes ``train``/``heldout``/``quarantine``/``stats`` (+ the dedup segment) as the store
    artifact ``candidates/<candidate_id>/`` or, with ``out_dir``, into that local folder.
    Returns a :class:`CandidateResult` whose ``summary`` holds docs in/kept/dropped, counts per
    step and reason, train/heldout sizes, tokens (≈ words), seconds and docs/s.
    Raises :class:`~freshlm.store.StoreError` for a missing shard or an unusable dedup index.
    """
    config = config or CurationConfig()
    start_iso, end_iso = _iso(window[0]), _iso(window[1])
    started = time.monotonic()
    index = DedupIndex.load(store, config.dedup, before=start_iso)
    shards = sorted({store.uri_for(store.prefix_for(u)) for u in raw_shard_uris})
    log.info("curating %d shards for window %s..%s", len(shards), start_iso, end_iso)

    with tempfile.TemporaryDirectory(prefix="freshlm-curate-") as tmp:
        folder = Path(tmp)
        sinks = {
            "train": JsonlGzSink(folder / TRAIN_FILE),
            "heldout": JsonlGzSink(folder / HELDOUT_FILE),
            "quarantine": JsonlGzSink(folder / QUARANTINE_FILE),
        }
        pipeline = build_pipeline(
            config, lambda doc: sinks["quarantine"].write(finalize(doc)), index
        )
        keys: list[dict[str, str]] = []
        kept_for_index: list[Doc] = []
        tokens = 0
        n_bytes = 0
        try:
            for doc in pipeline(read_shards(raw_shard_uris, store)):
                kept_for_index.append(
                    {"id": doc["id"], "content_hash": doc["content_hash"], "_bands": doc["_bands"]}
                )
                out = finalize(doc)
                sinks[out["split"]].write(out)
                keys.append(out)
                tokens += out["n_words"]
                n_bytes += len(out["text"].encode("utf-8"))
                if pipeline.docs_in % _PROGRESS_EVERY == 0:
                    log.info("… %d documents in, %d kept", pipeline.docs_in, pipeline.kept)
        finally:
            for sink in sinks.values():
                sink.close()

        candidate_id = dataset_id_for(keys)
        segment = IndexSegment.from_docs(kept_for_index, index.hasher)
        (folder / DEDUP_SEGMENT_FILE).write_bytes(segment.to_bytes())
        stats = pipeline.stats()
        stats.update(
            candidate_id=candidate_id,
            window=[start_iso, end_iso],
            shards=shards,
            train=sinks["train"].count,
            heldout=sinks["heldout"].count,
            tokens=tokens,
            dedup_index={
                "datasets": [s["dataset_id"] for s in index.segments],
                "documents": len(index),
            },
            config=config.to_json(),
        )
        (folder / STATS_FILE).write_text(
            json.dumps(stats, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        files = (TRAIN_FILE, HELDOUT_FILE, QUARANTINE_FILE, STATS_FILE, DEDUP_SEGMENT_FILE)
        already = False
        if out_dir is not None:
            target = Path(out_dir)
            target.mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copyfile(folder / name, target / name)
            uri = str(target.resolve())
        else:
            prefix = f"{CANDIDATES}/{candidate_id}"
            if store.read_manifest(prefix) is not None:
                already = True
                log.info("candidate %s is already published; not writing it again", prefix)
            else:
                with store.publisher(
                    prefix, kind="candidate-dataset", created_by={"tool": "freshlm.curation.run"}
                ) as pub:
                    for name in files:
                        with pub.open_write(name) as writer, (folder / name).open("rb") as src:
                            shutil.copyfileobj(src, writer, 1024 * 1024)
                    pub.set_manifest_fields(
                        candidate_id=candidate_id,
                        window=[start_iso, end_iso],
                        shards=shards,
                        counts={
                            "docs_in": stats["docs_in"],
                            "kept": stats["kept"],
                            "dropped": stats["dropped"],
                            "train": stats["train"],
                            "heldout": stats["heldout"],
                            "tokens": tokens,
                        },
                        by_reason=stats["by_reason"],
                        dedup_params=index.hasher.params,
                    )
            uri = store.uri_for(prefix)

    seconds = time.monotonic() - started
    summary: dict[str, Any] = {
        "candidate_id": candidate_id,
        "uri": uri,
        "window": [start_iso, end_iso],
        "docs_in": stats["docs_in"],
        "kept": stats["kept"],
        "dropped": stats["dropped"],
        "train": stats["train"],
        "heldout": stats["heldout"],
        "by_reason": stats["by_reason"],
        "tokens": tokens,
        "kept_mb": round(n_bytes / 1e6, 3),
        "seconds": round(seconds, 3),
        "docs_per_s": round(stats["docs_in"] / seconds, 1) if seconds > 0 else None,
        "stats": stats,
    }
    log.info(
        "candidate %s: %d in, %d kept (%d train, %d heldout), %d dropped %s, %d tokens, "
        "%.1fs (%.0f docs/s)",
        candidate_id,
        summary["docs_in"],
        summary["kept"],
        summary["train"],
        summary["heldout"],
        summary["dropped"],
        summary["by_reason"],
        tokens,
        seconds,
        summary["docs_per_s"] or 0,
    )
    return CandidateResult(candidate_id, uri, summary, already_published=already)
