"""The candidate dataset: ids, files, and the result :func:`~freshlm.curation.run.curate`
returns.

Files (names from :mod:`freshlm.documents`): ``train.jsonl.gz``, ``heldout.jsonl.gz``,
``quarantine.jsonl.gz`` (dropped documents with ``reason`` and ``detail``), ``stats.json``
(counts per step and reason, the config; no timings, so reruns write identical bytes) and
``dedup_segment.bin`` (the kept documents' dedup keys, committed to the dedup index when the
dataset is published; see :mod:`freshlm.curation.dedup_index`).

The candidate id is a content hash of the kept documents (:func:`dataset_id_for`): the same
input and config give the same id, whatever the clock says (DESIGN invariant 1).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from freshlm.curation.tokens import whitespace_words
from freshlm.documents import DOCUMENT_FIELDS
from freshlm.store import jsonl

DEDUP_SEGMENT_FILE = "dedup_segment.bin"


def dataset_id_for(docs: Iterable[dict[str, Any]]) -> str:
    """Content id of a set of kept documents: sha256 over their sorted ``id:content_hash:split``
    lines, 32 hex. Order-independent; changes when any document, its text or split changes."""
    lines = sorted(f"{d['id']}:{d['content_hash']}:{d['split']}\n" for d in docs)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
    return digest.hexdigest()[:32]


def finalize(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as written: contract fields (plus ``reason``/``detail`` if dropped), with
    ``n_chars``/``n_words`` of the final text and scratch (``_*``) keys removed."""
    text = doc.get("text") or ""
    doc["n_chars"] = len(text)
    doc["n_words"] = whitespace_words(text)
    if not doc.get("content_hash"):
        doc["content_hash"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    out = {k: doc[k] for k in DOCUMENT_FIELDS if k in doc}
    if "reason" in doc:
        out["reason"] = doc["reason"]
        out["detail"] = doc.get("detail", "")
    return out


class JsonlGzSink:
    """Append documents to a local gzip JSON Lines file, byte-identical to the store's writer
    (no timestamp in the gzip header), so reruns produce identical files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._raw: BinaryIO = path.open("wb")
        self._gz = gzip.GzipFile(
            fileobj=self._raw, mode="wb", compresslevel=6, mtime=0, filename=""
        )
        self._buffer: list[bytes] = []
        self._buffered = 0

    def write(self, doc: dict[str, Any]) -> None:
        line = jsonl.encode_record(doc, self.count)
        self.count += 1
        self._buffer.append(line)
        self._buffered += len(line)
        if self._buffered >= 256 * 1024:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._gz.write(b"".join(self._buffer))
            self._buffer, self._buffered = [], 0

    def close(self) -> None:
        self._flush()
        self._gz.close()
        self._raw.close()


@dataclasses.dataclass
class CandidateResult:
    """What curation produced. ``uri`` is the store artifact (``…/candidates/<id>``) or the
    local folder; ``summary`` is JSON: counts per step and reason, docs in/kept/dropped,
    tokens (whitespace words of kept documents), seconds and docs/s."""

    candidate_id: str
    uri: str
    summary: dict[str, Any]
    already_published: bool = False

    @property
    def stats(self) -> dict[str, Any]:
        return self.summary["stats"]
