"""Which models this process still holds, measured by the objects themselves.

Every loaded model is registered with a weak reference: it counts as held until the garbage
collector has really freed it, not merely until the server stopped pointing at it. So the
``freshlm_serve_models_loaded`` figure proves that a swap's drain gave the old weights back
(a lingering reference anywhere would keep it at 2).
"""

from __future__ import annotations

import gc
import threading
import weakref
from typing import Any

_lock = threading.Lock()
_held: dict[int, int] = {}  # id of a live model -> its weight bytes


def track(model: Any, weight_bytes: int) -> None:
    """Count ``model`` (``weight_bytes`` of weights) as held until it is garbage-collected."""
    key = id(model)
    with _lock:
        _held[key] = weight_bytes
    weakref.finalize(model, _forget, key)


def _forget(key: int) -> None:
    with _lock:
        _held.pop(key, None)


def held() -> tuple[int, int]:
    """``(models held, their weight bytes)``."""
    with _lock:
        return len(_held), sum(_held.values())


def collect() -> tuple[int, int]:
    """Run the garbage collector (a model's modules refer to each other in cycles), then
    :func:`held`."""
    gc.collect()
    return held()
