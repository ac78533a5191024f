"""The persistent dedup index: what every published dataset contained, for cross-run dedup.

Layout in the store::

    dedup-index/HEAD.json                      the list of segments (compare-and-swap updated)
    dedup-index/segments/<dataset_id>.bin      one segment per published dataset

``HEAD.json``::

    {"version": 1,
     "params": {"scheme": "char-shingle-minhash-v1", "shingle_chars": 5, "bands": 14, ...},
     "segments": [{"dataset_id": "...", "key": "dedup-index/segments/<id>.bin",
                   "window": ["2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"],
                   "documents": 1234, "sha256": "..."}, ...]}

A segment holds, for each kept document of one dataset: its id (32 hex), the first 64 bits of
its ``content_hash`` (exact key) and its ``bands`` LSH keys (near key). Binary format: the line
``FRESHLM-DEDUP-SEGMENT 1 <n> <bands>\\n`` then ``n*32`` bytes of ids (ASCII), ``n*8`` bytes
of content keys and ``n*bands*8`` bytes of band keys, little-endian uint64. It is deterministic:
the same documents give the same bytes.

Protocol (DESIGN invariants 1 and 2):

* :meth:`DedupIndex.load` reads HEAD and the segments of windows that started *before* the
  window being curated. Re-curating a window therefore ignores that window's own published
  segment (and later ones), so a rerun yields the same dataset id.
* The index changes **only when a dataset is published**: :meth:`DedupIndex.commit` writes the
  segment object first, then adds it to HEAD with a conditional write (``if_match`` on HEAD's
  ETag, ``if_none_match`` when there is no HEAD yet). If another publisher moved HEAD in
  between, the write is refused; the commit re-reads HEAD, merges (segments are append-only and
  keyed by dataset id) and tries again. Two publishers never clobber each other, and committing
  the same dataset twice is a no-op.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from freshlm.artifacts import DEDUP_INDEX
from freshlm.curation.config import DedupConfig
from freshlm.curation.minhash import MinHasher
from freshlm.store import KeyNotFound, PreconditionFailed, Store, StoreError

log = logging.getLogger(__name__)

HEAD_KEY = f"{DEDUP_INDEX}/HEAD.json"
SEGMENT_MAGIC = b"FRESHLM-DEDUP-SEGMENT"
FORMAT_VERSION = 1
_COMMIT_ATTEMPTS = 20


class DedupIndexError(StoreError):
    """The index cannot be used as asked (incompatible parameters, corrupt segment, ...)."""


def content_key(content_hash: str) -> int:
    """The 64-bit exact-duplicate key of a sha256 hex content hash."""
    return int(content_hash[:16], 16)


@dataclasses.dataclass(frozen=True)
class IndexSegment:
    """The dedup keys of one batch of kept documents."""

    ids: np.ndarray  # (n,) S32
    content: np.ndarray  # (n,) uint64
    bands: np.ndarray  # (n, bands) uint64; rows of zeros for texts too short for MinHash

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, bands: int) -> IndexSegment:
        return cls(
            np.zeros(0, dtype="S32"),
            np.zeros(0, dtype=np.uint64),
            np.zeros((0, bands), dtype=np.uint64),
        )

    @classmethod
    def from_docs(cls, docs: Iterable[dict[str, Any]], hasher: MinHasher) -> IndexSegment:
        """Keys of ``docs``: their ``content_hash`` and the ``_bands`` the dedup step left
        (recomputed from ``text`` when absent, e.g. for documents read back from a file)."""
        bands = hasher.config.bands
        ids, content, rows = [], [], []
        zero = np.zeros(bands, dtype=np.uint64)
        for doc in docs:
            ids.append(doc["id"].encode("ascii"))
            content.append(content_key(doc["content_hash"]))
            keys = doc["_bands"] if "_bands" in doc else hasher.band_keys(doc["text"])
            rows.append(zero if keys is None else keys)
        if not ids:
            return cls.empty(bands)
        return cls(
            np.array(ids, dtype="S32"),
            np.array(content, dtype=np.uint64),
            np.vstack(rows).astype(np.uint64),
        )

    def to_bytes(self) -> bytes:
        n, bands = self.bands.shape
        header = b"%s %d %d %d\n" % (SEGMENT_MAGIC, FORMAT_VERSION, n, bands)
        return b"".join(
            (
                header,
                self.ids.astype("S32").tobytes(),
                self.content.astype("<u8").tobytes(),
                self.bands.astype("<u8").tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes, uri: str) -> IndexSegment:
        header, _, body = data.partition(b"\n")
        parts = header.split()
        if len(parts) != 4 or parts[0] != SEGMENT_MAGIC or parts[1] != b"%d" % FORMAT_VERSION:
            raise DedupIndexError(uri, "not a FreshLM dedup segment (bad header)")
        n, bands = int(parts[2]), int(parts[3])
        if len(body) != n * 32 + n * 8 + n * bands * 8:
            raise DedupIndexError(uri, f"segment truncated: {len(body)} bytes for {n} documents")
        ids = np.frombuffer(body[: n * 32], dtype="S32")
        content = np.frombuffer(body[n * 32 : n * 40], dtype="<u8").astype(np.uint64)
        rows = np.frombuffer(body[n * 40 :], dtype="<u8").astype(np.uint64).reshape(n, bands)
        return cls(ids, content, rows)


def _sorted_lookup(keys: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    return keys[order], owners[order]


class DedupIndex:
    """Exact and near-duplicate keys of published datasets, plus batches pending commit.

    Lookups are binary searches in sorted uint64 arrays (compact: ~120 bytes per document),
    so an index of millions of documents fits in memory.
    """

    def __init__(
        self,
        config: DedupConfig | None = None,
        segments: list[dict[str, Any]] | None = None,
        data: list[IndexSegment] | None = None,
        pending: IndexSegment | None = None,
    ) -> None:
        self.config = config or DedupConfig()
        self.hasher = MinHasher(self.config)
        self.segments = list(segments or [])  # HEAD entries loaded
        self.pending = pending
        data = list(data or [])
        bands = self.config.bands
        ids = np.concatenate([d.ids for d in data]) if data else np.zeros(0, "S32")
        content = np.concatenate([d.content for d in data]) if data else np.zeros(0, np.uint64)
        rows = np.concatenate([d.bands for d in data]) if data else np.zeros((0, bands), np.uint64)
        self._content, self._content_owner = _sorted_lookup(content, ids)
        nonzero = rows.any(axis=1)
        band_keys = rows[nonzero].reshape(-1)
        band_owner = np.repeat(ids[nonzero], bands)
        self._bands, self._band_owner = _sorted_lookup(band_keys, band_owner)

    def __len__(self) -> int:
        return len(self._content)

    # --- lookups ------------------------------------------------------------------------------

    def exact_owner(self, key: int) -> str | None:
        """Id of a published document with this content key, or None."""
        arr = self._content
        i = int(np.searchsorted(arr, np.uint64(key)))
        if i < len(arr) and int(arr[i]) == key:
            return self._content_owner[i].decode()
        return None

    def near_owner(self, band_keys: np.ndarray) -> str | None:
        """Id of a published document sharing an LSH band with these keys, or None."""
        arr = self._bands
        if not len(arr):
            return None
        idx = np.searchsorted(arr, band_keys)
        idx[idx >= len(arr)] = len(arr) - 1
        hits = np.flatnonzero(arr[idx] == band_keys)
        if not len(hits):
            return None
        return self._band_owner[idx[hits[0]]].decode()

    # --- loading and committing -----------------------------------------------------------------

    @classmethod
    def load(
        cls, store: Store, config: DedupConfig | None = None, *, before: str | None = None
    ) -> DedupIndex:
        """The index as published in ``store``: all segments, or with ``before`` (ISO 8601 UTC
        start of the window being curated) only those of windows that started earlier.

        An absent index is empty. Raises :class:`DedupIndexError` if the index was built with
        other MinHash parameters (its band keys would be meaningless here).
        """
        config = config or DedupConfig()
        hasher = MinHasher(config)
        try:
            head = store.read_json(HEAD_KEY)
        except KeyNotFound:
            log.info("dedup index: none in %s yet; starting empty", store.root_uri)
            return cls(config)
        _check_params(head, hasher.params, store.uri_for(HEAD_KEY))
        chosen = [s for s in head.get("segments", []) if before is None or s["window"][0] < before]
        data = []
        for entry in chosen:
            raw = store.read_bytes(entry["key"])
            if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
                raise DedupIndexError(
                    store.uri_for(entry["key"]), "segment does not match its sha256 in HEAD"
                )
            data.append(IndexSegment.from_bytes(raw, store.uri_for(entry["key"])))
        index = cls(config, chosen, data)
        log.info(
            "dedup index: %d published documents from %d of %d datasets (before %s)",
            len(index),
            len(chosen),
            len(head.get("segments", [])),
            before or "any time",
        )
        return index

    def with_batch(self, docs: Iterable[dict[str, Any]] | IndexSegment) -> DedupIndex:
        """A copy of this index with ``docs`` (kept documents) pending commit."""
        segment = (
            docs if isinstance(docs, IndexSegment) else IndexSegment.from_docs(docs, self.hasher)
        )
        clone = object.__new__(DedupIndex)
        clone.__dict__.update(self.__dict__)
        clone.pending = segment
        return clone

    def commit(
        self, store: Store, dataset_id: str, *, window: tuple[str, str] | list[str]
    ) -> dict[str, Any]:
        """Publish the pending batch as dataset ``dataset_id`` of ``window``; returns the
        HEAD entry. Call it only once the dataset is published (see the module docstring)."""
        if self.pending is None:
            raise ValueError("nothing to commit: call with_batch(docs) first")
        return commit_segment(store, self.pending, dataset_id, window, self.hasher.params)


def _check_params(head: dict[str, Any], params: dict[str, Any], uri: str) -> None:
    if head.get("version") != FORMAT_VERSION:
        raise DedupIndexError(uri, f"unknown index version {head.get('version')!r}")
    if head.get("params") != params:
        raise DedupIndexError(
            uri,
            f"index built with MinHash parameters {head.get('params')}, but this run uses "
            f"{params}; rebuild the index or use the index's parameters in DedupConfig",
        )


def commit_segment(
    store: Store,
    segment: IndexSegment,
    dataset_id: str,
    window: tuple[str, str] | list[str],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Write ``segment`` and add it to HEAD with compare-and-swap (retrying on races)."""
    data = segment.to_bytes()
    key = f"{DEDUP_INDEX}/segments/{dataset_id}.bin"
    entry = {
        "dataset_id": dataset_id,
        "key": key,
        "window": [str(window[0]), str(window[1])],
        "documents": len(segment),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    written = False
    for _ in range(_COMMIT_ATTEMPTS):
        try:
            raw, etag = store.read_bytes_with_etag(HEAD_KEY)
            head = json.loads(raw)
            _check_params(head, params, store.uri_for(HEAD_KEY))
        except KeyNotFound:
            head, etag = {"version": FORMAT_VERSION, "params": params, "segments": []}, None
        existing = [s for s in head["segments"] if s["dataset_id"] == dataset_id]
        if existing:
            if existing[0]["sha256"] != entry["sha256"]:
                raise DedupIndexError(
                    store.uri_for(HEAD_KEY),
                    f"dataset {dataset_id} is already in the index with other documents",
                )
            log.info("dedup index: dataset %s already committed", dataset_id)
            return existing[0]
        if not written:
            # The segment before HEAD names it: HEAD never points at a missing object.
            store.write_bytes(key, data)
            written = True
        head["segments"].append(entry)
        try:
            if etag is None:
                store.write_json(HEAD_KEY, head, if_none_match=True)
            else:
                store.write_json(HEAD_KEY, head, if_match=etag)
        except PreconditionFailed:
            log.info(
                "dedup index: HEAD moved while committing %s; merging and retrying", dataset_id
            )
            continue
        log.info("dedup index: committed %s (%d documents)", dataset_id, len(segment))
        return entry
    raise DedupIndexError(
        store.uri_for(HEAD_KEY), f"could not commit {dataset_id}: HEAD kept changing"
    )


def commit_candidate(
    store: Store, candidate_prefix: str, dataset_id: str, config: DedupConfig | None = None
) -> dict[str, Any]:
    """Commit a published candidate's dedup segment (``dedup_segment.bin`` in the candidate
    artifact, written by :func:`freshlm.curation.run.curate`) as ``dataset_id``.

    This is what the publish stage calls after the gate passed and the dataset is published.
    """
    from freshlm.curation.candidate import DEDUP_SEGMENT_FILE

    manifest = store.read_manifest(candidate_prefix)
    if manifest is None:
        raise DedupIndexError(store.uri_for(candidate_prefix), "candidate is not published")
    raw = store.read_bytes(manifest.key(DEDUP_SEGMENT_FILE))
    segment = IndexSegment.from_bytes(raw, store.uri_for(manifest.key(DEDUP_SEGMENT_FILE)))
    params = MinHasher(config or DedupConfig()).params
    if manifest.fields.get("dedup_params") not in (None, params):
        raise DedupIndexError(
            store.uri_for(candidate_prefix),
            f"candidate was deduplicated with {manifest.fields.get('dedup_params')}, not {params}",
        )
    return commit_segment(store, segment, dataset_id, manifest.fields["window"], params)
