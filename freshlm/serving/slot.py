"""The one model version being served, swapped without dropping a request.

Every request takes a *lease* on the version that is current when it starts and keeps it until
its answer is written, so a request always finishes on the model it began with. A swap puts the
new version in place under the lock (requests that start after it get the new one), then
*drains* the old one: it waits until the old version's last lease is returned, and only then
closes it and lets its memory go.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class NoModelLoaded(RuntimeError):
    """No version is being served yet (the server started before production was set, or the
    first load is still running)."""


@dataclasses.dataclass(eq=False)
class ServedVersion:
    """A loaded version and the requests using it."""

    version_id: str
    backend: Any
    loaded_at: float = dataclasses.field(default_factory=time.time)
    in_flight: int = 0


class ModelSlot:
    """Holds the :class:`ServedVersion` requests use; see the module doc."""

    def __init__(self) -> None:
        self._current: ServedVersion | None = None
        self._changed = threading.Condition()

    @property
    def current(self) -> ServedVersion | None:
        return self._current

    @contextlib.contextmanager
    def lease(self) -> Iterator[ServedVersion]:
        """The current version, held until the ``with`` block ends."""
        with self._changed:
            served = self._current
            if served is None:
                raise NoModelLoaded("no model version is loaded yet")
            served.in_flight += 1
        try:
            yield served
        finally:
            with self._changed:
                served.in_flight -= 1
                self._changed.notify_all()

    def swap(self, new: ServedVersion, drain_timeout_s: float = 300.0) -> ServedVersion | None:
        """Serve ``new`` from now on; drain and close the version it replaces (returned)."""
        with self._changed:
            old, self._current = self._current, new
        if old is not None:
            self.drain(old, drain_timeout_s)
        return old

    def drain(self, old: ServedVersion, timeout_s: float) -> None:
        """Wait until no request uses ``old`` (at most ``timeout_s``), then close it."""
        began = time.monotonic()
        with self._changed:
            finished = self._changed.wait_for(lambda: old.in_flight == 0, timeout=timeout_s)
        if not finished:
            log.warning(
                "version %s still had %d requests after %.0fs of draining; closing it anyway",
                old.version_id,
                old.in_flight,
                timeout_s,
            )
        old.backend.close()
        log.info(
            "version %s drained in %.2fs and unloaded", old.version_id, time.monotonic() - began
        )
