"""Keep a tied output head tied in the saved weights.

Models such as SmolLM2 and GPT-2 share one matrix between the input embeddings and the output
head (``tie_word_embeddings``). The weights a DeepSpeed run gathers for saving hold it twice,
as separate tensors, so ``save_pretrained`` cannot see the sharing and writes both: a 135M
model's version grows by the 113 MB of a second vocabulary matrix, and loading it allocates
that copy again. Where the config ties them and the two saved tensors are equal, the head's
copy is dropped; ``from_pretrained`` ties it back to the embeddings on load.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
HEAD_KEY = "lm_head.weight"


def drop_duplicate_head(folder: Path) -> int:
    """Rewrite ``folder``'s ``model.safetensors`` without the output head's copy of the tied
    embeddings; returns the bytes saved (0 when nothing was dropped: untied config, sharded or
    missing weights, no head key, or a head that differs from every embedding)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    config_path, weights = folder / "config.json", folder / WEIGHTS_FILE
    if not config_path.is_file() or not weights.is_file():
        return 0
    config = json.loads(config_path.read_text())
    if not config.get("tie_word_embeddings", True):
        return 0
    with safe_open(str(weights), framework="pt") as f:
        keys = list(f.keys())
        if HEAD_KEY not in keys:
            return 0
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in keys}
    head = tensors[HEAD_KEY]
    tied = [
        k
        for k, t in tensors.items()
        if k != HEAD_KEY and t.shape == head.shape and t.dtype == head.dtype and t.equal(head)
    ]
    if not tied:
        return 0
    before = weights.stat().st_size
    del tensors[HEAD_KEY]
    partial = weights.with_name(f".{weights.name}.partial")
    save_file(tensors, str(partial), metadata=metadata)
    partial.replace(weights)
    saved = before - weights.stat().st_size
    log.info("dropped %s, a copy of the tied %s: %.0f MB saved", HEAD_KEY, tied[0], saved / 1e6)
    return saved
