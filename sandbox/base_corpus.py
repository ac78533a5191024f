"""The embedded base model's pretraining corpus: the world archive, published as a dataset.

The sandbox publishes its archive first, and the bootstrap (:mod:`training.bootstrap`) reads
the base model's pretraining text from this dataset: the training stage knows no world, only
published artifacts. Title, then ``text`` (summary and paragraphs, one per line) is the
pretraining text of an article, and its ``split`` says whether it is trained on or held out
for perplexity (one article in :data:`HELDOUT_EVERY`, by the hash of its slug, so the split
never depends on order).

The dataset serves replay too. Replay limits forgetting only for what it replays. Before the
first night there are no earlier published datasets, so without this the first fine-tune would
replay nothing and forget what the base model learned from the world archive — exactly what the
retention probes measure. Publishing the archive the base was pretrained on as
``datasets/<id>`` (same files as a curated dataset: ``train.jsonl.gz`` with the pretraining
split, ``heldout.jsonl.gz`` with the held-out split, a window that ends where the world's days
begin) makes it an earlier dataset like any other: the training set replays from it and the
evaluation carries its probes forward as retention probes. Its manifest says
``role: base-corpus``.

The id is the content hash of the documents, so republishing is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from freshlm.artifacts import (
    BASE_CORPUS_ROLE,
    DATASET_KIND,
    HELDOUT_FILE,
    STATS_FILE,
    TRAIN_FILE,
    dataset_prefix,
)
from freshlm.store import Store

log = logging.getLogger("sandbox.base_corpus")

ROLE = BASE_CORPUS_ROLE
SOURCE = "world-archive"
#: One archive article in this many is held out (by the hash of its slug).
HELDOUT_EVERY = 10


def _iso(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_dataset_documents(heldout_every: int = HELDOUT_EVERY) -> list[dict[str, Any]]:
    """The archive articles as curated documents, by slug, each with its ``split``: held out
    when the hash of its slug falls in one bucket of ``heldout_every``."""
    from sandbox.scenario import load_scenario

    docs = []
    for article in sorted(load_scenario().archive, key=lambda a: a.slug):
        text = "\n".join([article.summary, *article.paragraphs])
        bucket = int(hashlib.sha256(article.slug.encode()).hexdigest(), 16) % heldout_every
        normalized = f"{article.title}\n{text}"
        docs.append(
            {
                "id": hashlib.sha256(f"archive:{article.slug}".encode()).hexdigest()[:32],
                "source": SOURCE,
                "kind": "news",
                "url": f"archive:{article.slug}",
                "title": article.title,
                "text": text,
                "language": article.language,
                "language_score": 1.0,
                "published_at": _iso(article.published_at),
                "fetched_at": _iso(article.published_at),
                "author": article.author,
                "content_hash": hashlib.sha256(normalized.encode()).hexdigest(),
                "n_chars": len(text),
                "n_words": len(text.split()),
                "pii": {},
                "toxicity": 0.0,
                "split": "heldout" if bucket == 0 else "train",
                "shard": "bootstrap:world-archive",
                "meta": {"section": article.section, "slug": article.slug},
            }
        )
    return docs


def publish_base_corpus(store: Store, *, heldout_every: int = HELDOUT_EVERY) -> str:
    """Publish the archive as ``datasets/<id>`` (idempotent); returns the dataset id.

    Published before the base model exists: the bootstrap pretrains on it."""
    from sandbox.scenario import load_scenario

    docs = archive_dataset_documents(heldout_every)
    dataset_id = hashlib.sha256(
        json.dumps([d["content_hash"] for d in docs] + [heldout_every]).encode()
    ).hexdigest()[:32]
    prefix = dataset_prefix(dataset_id)
    if store.read_manifest(prefix) is not None:
        return dataset_id
    train = [d for d in docs if d["split"] == "train"]
    heldout = [d for d in docs if d["split"] == "heldout"]
    window = {
        "start": min(d["published_at"] for d in docs),
        "end": _iso(load_scenario().start),
    }
    stats = {"documents": len(docs), "train": len(train), "heldout": len(heldout)}
    with store.publisher(
        prefix, kind=DATASET_KIND, created_by={"component": "sandbox.base_corpus"}
    ) as pub:
        pub.write_jsonl(TRAIN_FILE, train)
        pub.write_jsonl(HELDOUT_FILE, heldout)
        pub.write_bytes(STATS_FILE, json.dumps(stats, indent=2, sort_keys=True).encode())
        pub.set_manifest_fields(
            dataset_id=dataset_id,
            role=ROLE,
            window=window,
            shards=[],
            parents=[],
            counts={**stats, "docs_in": len(docs), "dropped": 0, "by_reason": {}},
            tokens=sum(d["n_words"] for d in docs),
            sources=[SOURCE],
            gate={
                "severity": "ok",
                "passed": True,
                "failures": [],
                "override": None,
                "report": None,
                "data_docs": None,
                "volume_by_source": {},
                "note": "not gated: the base model's own pretraining corpus, shipped offline",
            },
        )
    log.info(
        "registered the base corpus as dataset %s (%d train, %d held-out documents)",
        dataset_id,
        len(train),
        len(heldout),
    )
    return dataset_id
