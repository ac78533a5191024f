"""Load a registry version into a generation backend, ready to answer.

The version's files are copied from the store into ``<cache>/<version_id>/`` by
:func:`freshlm.registry.local_copies.local_copy` (each checked against the manifest's sha256, so
a damaged version fails here, before it can serve anything); a complete copy is reused, and the
least recently used copies beyond ``keep_copies`` are deleted. The backend is then
built and warmed up with one short generation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freshlm.registry.local_copies import local_copy
from freshlm.serving import memory
from freshlm.store import Store

log = logging.getLogger(__name__)

BACKENDS = ("auto", "transformers", "vllm")


class BackendUnavailable(RuntimeError):
    """The configured backend cannot run on this machine."""


def choose_backend(setting: str) -> str:
    """The backend to use for ``FRESHLM_SERVE_BACKEND``: ``auto`` is vLLM where a GPU and the
    ``vllm`` package are present, else transformers."""
    from freshlm.serving import vllm_backend

    if setting not in BACKENDS:
        raise ValueError(f"backend {setting!r}: expected one of {', '.join(BACKENDS)}")
    if setting == "auto":
        return "vllm" if vllm_backend.available() else "transformers"
    if setting == "vllm" and not vllm_backend.available():
        raise BackendUnavailable(
            "FRESHLM_SERVE_BACKEND=vllm, but vLLM cannot run here (it needs a CUDA GPU and the "
            "vllm package installed); use auto or transformers"
        )
    return setting


def load_version(
    store: Store,
    version_id: str,
    *,
    cache_dir: Path,
    backend: str,
    max_batch: int,
    keep_copies: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Any:
    """The version loaded into ``backend`` (``transformers`` or ``vllm``) and warmed up."""
    began = time.monotonic()
    folder = local_copy(store, version_id, cache_dir, keep=keep_copies)
    if backend == "vllm":
        from freshlm.serving.vllm_backend import VLLMBackend

        loaded: Any = VLLMBackend(folder, max_batch=max_batch, on_batch=on_batch)
    else:
        from freshlm.serving.transformers_backend import TransformersBackend

        loaded = TransformersBackend(folder, max_batch=max_batch, on_batch=on_batch)
        memory.track(loaded.model, loaded.weight_bytes)
    loaded.warm_up()
    log.info("version %s loaded with %s in %.1fs", version_id, backend, time.monotonic() - began)
    return loaded
