"""Dedup: exact (normalized content hash) and near-duplicate (MinHash + LSH) removal, within
the batch and against everything published before (:class:`~freshlm.curation.dedup_index.
DedupIndex`).

Sets ``content_hash`` (sha256 of the text as it is now: normalized, before PII scrubbing) and
leaves the document's LSH band keys in ``_bands`` for the index segment. The first document
of a group wins, so the result depends only on the input order (shards are read sorted).

Drop reasons: ``exact`` / ``near`` (a document earlier in this batch), ``exact_published`` /
``near_published`` (a document of a published dataset); ``detail`` names the other document.
"""

from __future__ import annotations

import hashlib

from freshlm.curation.config import DedupConfig
from freshlm.curation.dedup_index import DedupIndex, content_key
from freshlm.curation.steps.base import Doc, DocStep, Drop


class DedupStep(DocStep):
    """Counters: ``minhash_skipped`` for texts too short for MinHash (exact dedup only)."""

    name = "dedup"

    def __init__(self, config: DedupConfig | None = None, index: DedupIndex | None = None) -> None:
        super().__init__()
        self.config = config or DedupConfig()
        self.index = index if index is not None else DedupIndex(self.config)
        if self.index.config != self.config:
            raise ValueError("the index and the step use different MinHash parameters")
        self._hasher = self.index.hasher
        self._exact: dict[int, str] = {}
        self._bands: dict[int, str] = {}

    def process(self, doc: Doc) -> Drop | None:
        text = doc["text"]
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        doc["content_hash"] = digest
        key = content_key(digest)
        other = self._exact.get(key)
        if other is not None:
            return Drop("exact", f"same text as {other}")
        other = self.index.exact_owner(key)
        if other is not None:
            return Drop("exact_published", f"same text as published {other}")
        bands = self._hasher.band_keys(text)
        if bands is None:
            self.counters["minhash_skipped"] += 1
        else:
            other = self.index.near_owner(bands)
            if other is not None:
                return Drop("near_published", f"near-duplicate of published {other}")
            keys = bands.tolist()
            seen = self._bands
            for band_key in keys:
                other = seen.get(band_key)
                if other is not None:
                    return Drop("near", f"near-duplicate of {other}")
            for band_key in keys:
                seen[band_key] = doc["id"]
        self._exact[key] = doc["id"]
        doc["_bands"] = bands
        return None
