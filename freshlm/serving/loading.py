"""Load a registry version into a generation backend, ready to answer.

The version's files are copied from the store with :func:`freshlm.registry.download_version`
(each checked against the manifest's sha256, so a damaged version fails here, before it can
serve anything) into ``<cache>/<version_id>/``; a complete copy is reused. The backend is then
built and warmed up with one short generation.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freshlm.registry import download_version, get_version
from freshlm.serving import memory
from freshlm.store import Store

log = logging.getLogger(__name__)

BACKENDS = ("auto", "transformers", "vllm")
_COMPLETE = ".complete"


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


def fetch_version(store: Store, version_id: str, cache_dir: Path) -> Path:
    """The version's folder under ``cache_dir``, downloaded and verified unless a complete copy
    of the same content is already there."""
    version = get_version(store, version_id)
    folder = cache_dir / version_id
    marker = folder / _COMPLETE
    expected = version.manifest.content_sha256
    if marker.is_file() and marker.read_text().strip() == expected:
        return folder
    if folder.exists():
        shutil.rmtree(folder)  # a partial or outdated copy
    download_version(store, version_id, folder)
    marker.write_text(expected + "\n")
    return folder


def load_version(
    store: Store,
    version_id: str,
    *,
    cache_dir: Path,
    backend: str,
    max_batch: int,
    on_batch: Callable[[int], None] | None = None,
) -> Any:
    """The version loaded into ``backend`` (``transformers`` or ``vllm``) and warmed up."""
    began = time.monotonic()
    folder = fetch_version(store, version_id, cache_dir)
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
