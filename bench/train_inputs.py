"""Inputs and step clock shared by the training benchmarks (``bench/train.py``, CPU, and
``bench/train_gpu.py``, GPU): the sandbox archive as training text, a byte-level BPE tokenizer
trained on it, the archive published as a curated dataset in a temporary store, and the
per-step times read from the entrypoint's progress lines.

Nothing here downloads: the archive ships with the repository (``sandbox``).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

# The entrypoint's per-step progress line on rank 0 (``training.train``'s progress callback),
# e.g. "2026-12-03 15:10:02,123 rank0 INFO freshlm.training: step 7/60 loss=...".
_STEP_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) rank0 .* step (\d+)/(\d+) loss=")


def archive_documents(tmp: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """The base model's pretraining text as ``(key, text)``, read the way the bootstrap reads
    it from the base corpus: in a store of its own under ``tmp``, since in the bench's store it
    would be an earlier dataset, and replayed. ``limit`` keeps the first documents only."""
    from freshlm.store import open_store
    from sandbox.base_corpus import publish_base_corpus
    from training.bootstrap import read_corpus

    scratch = open_store((tmp / "corpus").as_uri())
    corpus = read_corpus(scratch, publish_base_corpus(scratch))
    documents = [(key, text) for key, text, _ in corpus.documents]
    return documents[:limit] if limit else documents


def archive_tokenizer(documents: list[tuple[str, str]], vocab_size: int, max_length: int) -> Any:
    """The bootstrap's byte-level BPE tokenizer trained on ``documents`` (eos/bos id 0, pad 1)."""
    from training.bootstrap import train_tokenizer

    return train_tokenizer([text for _, text in documents], vocab_size, model_max_length=max_length)


def publish_dataset(store: Any, documents: list[tuple[str, str]]) -> str:
    """Publish the archive as one curated ``datasets/<id>`` (train split only)."""
    docs = [
        {
            "id": hashlib.sha256(slug.encode()).hexdigest()[:32],
            "source": "news",
            "kind": "news",
            "text": text,
            "language": "en",
            "split": "train",
        }
        for slug, text in documents
    ]
    dataset_id = hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest()[:32]
    with store.publisher(f"datasets/{dataset_id}", kind="dataset") as pub:
        pub.write_jsonl("train.jsonl.gz", docs)
        pub.set_manifest_fields(
            dataset_id=dataset_id,
            window={"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"},
            parents=[],
            counts={"documents": len(docs), "train": len(docs), "heldout": 0},
        )
    return dataset_id


class StepClock:
    """Collects the wall-clock time of each step from the entrypoint's progress lines (pass
    :meth:`on_line` as ``run_local_training``'s ``on_line``); millisecond resolution."""

    def __init__(self) -> None:
        self.stamps: dict[int, float] = {}

    def on_line(self, line: str) -> None:
        match = _STEP_LINE.match(line)
        if match:
            stamp = time.mktime(time.strptime(match.group(1)[:19], "%Y-%m-%d %H:%M:%S"))
            self.stamps[int(match.group(2))] = stamp + int(match.group(1)[20:]) / 1000

    def step_times(self, first: int, last: int) -> list[float]:
        """Seconds of each step ``first + 1 .. last`` (each from the line before it);
        RuntimeError naming what is missing when a step printed no progress line."""
        wanted = range(first, last + 1)
        if any(n not in self.stamps for n in wanted):
            raise RuntimeError(
                f"expected a progress line for each step {first}..{last}, got steps "
                f"{sorted(self.stamps)} (is TrainConfig.logging_steps 1?)"
            )
        return [self.stamps[n] - self.stamps[n - 1] for n in wanted[1:]]
