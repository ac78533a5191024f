"""Split: assign ``train`` or ``heldout`` deterministically from the document id.

``heldout`` iff the first 64 bits of ``sha256(salt + ":" + id)``, as a fraction of 2**64, are
below ``heldout_ratio``. A document keeps its split in every run and every dataset that contains
it, so evaluation never sees a training document of an earlier dataset under the same salt.
"""

from __future__ import annotations

import hashlib

from freshlm.curation.config import SplitConfig
from freshlm.curation.steps.base import Doc, DocStep, Drop


def split_of(doc_id: str, config: SplitConfig) -> str:
    """``"heldout"`` or ``"train"`` for a document id (pure function of id and config)."""
    digest = hashlib.sha256(f"{config.salt}:{doc_id}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return "heldout" if fraction < config.heldout_ratio else "train"


class SplitStep(DocStep):
    """Set ``split``; counters ``train`` and ``heldout``. Never drops."""

    name = "split"

    def __init__(self, config: SplitConfig | None = None) -> None:
        super().__init__()
        self.config = config or SplitConfig()
        if not 0.0 <= self.config.heldout_ratio < 1.0:
            raise ValueError(f"heldout_ratio must be in [0, 1), got {self.config.heldout_ratio}")

    def process(self, doc: Doc) -> Drop | None:
        split = split_of(doc["id"], self.config)
        doc["split"] = split
        self.counters[split] += 1
        return None
