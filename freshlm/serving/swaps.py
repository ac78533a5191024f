"""Swapping the served version: on a reload call and, as the fallback, on polling the alias.

:meth:`VersionSwapper.sync` brings the server to a version (by default the one ``production``
names): it loads the new version beside the old, warms it, switches atomically, drains and
frees the old one (:class:`~freshlm.serving.slot.ModelSlot`). One swap runs at a time.

A load that fails (a damaged version, no memory) leaves the old version serving and posts one
Slack alert. Polling acts only on a *move* of the alias, so it neither retries nor re-alerts a
failed version on every poll (an explicit reload call does retry), nor undoes a version an
operator pinned with a reload call. Every swap and every reload call is recorded in the store under
``serving/deployments/`` (who asked, what was served before and after, how long it took).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from freshlm.alerts.messages import SlackMessage
from freshlm.artifacts import DEPLOYMENTS
from freshlm.registry import PRODUCTION, get_version, read_alias
from freshlm.serving import memory
from freshlm.serving.messages import load_failed_alert
from freshlm.serving.metrics import ServingMetrics
from freshlm.serving.slot import ModelSlot, ServedVersion
from freshlm.store import Store, StoreError

log = logging.getLogger(__name__)

POLL_ACTOR = "server:poll"


@dataclasses.dataclass
class SwapResult:
    """What one :meth:`VersionSwapper.sync` did; ``result`` is ``swapped``, ``unchanged``,
    ``failed`` or ``no-production`` (the alias is not set yet)."""

    result: str
    wanted: str | None
    serving: str | None
    previous: str | None = None
    load_s: float | None = None
    drain_s: float | None = None
    error: str | None = None
    actor: str = POLL_ACTOR
    reason: str = ""
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class VersionSwapper:
    """See the module doc. ``load(version_id)`` returns a warmed-up backend or raises."""

    def __init__(
        self,
        store: Store,
        slot: ModelSlot,
        *,
        load: Callable[[str], Any],
        metrics: ServingMetrics,
        alert: Callable[[SlackMessage], bool],
        server_url: str,
        backend_name: str,
    ) -> None:
        self.store = store
        self.slot = slot
        self._load = load
        self.metrics = metrics
        self._alert = alert
        self.server_url = server_url
        self.backend_name = backend_name
        self._lock = threading.Lock()
        self._seen_generation: int | None = None  # production's generation at the last poll

    def sync(
        self, version_id: str | None = None, *, actor: str = POLL_ACTOR, reason: str = ""
    ) -> SwapResult:
        """Serve ``version_id`` (default: what ``production`` names); see the module doc.

        Raises :class:`~freshlm.registry.VersionNotFound` for a version the registry does not
        have (a mistake of the caller, not a failed load).
        """
        with self._lock:
            if version_id is None:
                alias = read_alias(self.store, PRODUCTION)
                if alias is None:
                    return SwapResult("no-production", None, self._serving(), actor=actor)
                version_id = alias.version_id
            else:
                get_version(self.store, version_id)
            result = self._sync_locked(version_id, actor)
        result.actor, result.reason = actor, reason
        result.at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if actor != POLL_ACTOR or result.result != "unchanged":
            self._record(result)
        return result

    def poll_once(self) -> SwapResult | None:
        """Follow ``production`` if it moved since the last poll; None if it did not.

        Only a *move* of the alias swaps: a version an operator loaded by an explicit reload
        call stays until the alias moves again, and a version that failed to load is not
        retried (nor alerted again) on every poll.
        """
        alias = read_alias(self.store, PRODUCTION)
        if alias is None or alias.generation == self._seen_generation:
            return None
        result = self.sync(alias.version_id)
        # Only now: a store error above is retried on the next poll, a failed load is not.
        self._seen_generation = alias.generation
        return result

    def _serving(self) -> str | None:
        current = self.slot.current
        return current.version_id if current is not None else None

    def _sync_locked(self, version_id: str, actor: str) -> SwapResult:
        serving = self._serving()
        if version_id == serving:
            return SwapResult("unchanged", version_id, serving)
        began = time.monotonic()
        try:
            backend = self._load(version_id)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error("loading version %s failed; still serving %s: %s", version_id, serving, error)
            self.metrics.swap("failed")
            self._alert(
                load_failed_alert(
                    wanted=version_id,
                    serving=serving,
                    error=error,
                    actor=actor,
                    server_url=self.server_url,
                )
            )
            return SwapResult("failed", version_id, serving, error=error)
        load_s = time.monotonic() - began
        switched = time.monotonic()
        self.slot.swap(ServedVersion(version_id, backend))
        drain_s = time.monotonic() - switched
        memory.collect()
        self.metrics.swap("swapped")
        log.info(
            "now serving %s (was %s): loaded in %.1fs, old version drained in %.2fs",
            version_id,
            serving,
            load_s,
            drain_s,
        )
        return SwapResult(
            "swapped",
            version_id,
            version_id,
            previous=serving,
            load_s=round(load_s, 3),
            drain_s=round(drain_s, 3),
        )

    def _record(self, result: SwapResult) -> None:
        stamp = result.at.replace("-", "").replace(":", "").replace(".", "")
        key = f"{DEPLOYMENTS}/{stamp}-{result.result}-{result.wanted or 'none'}.json"
        try:
            self.store.write_json(key, {**result.to_dict(), "server": self.server_url})
        except StoreError as exc:  # the swap itself stands; only its record is missing
            log.warning("could not record the deployment at %s: %s", key, exc)

    def poll_forever(self, interval_s: float, stop: threading.Event) -> None:
        """Follow the ``production`` alias every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # a store hiccup: the next poll tries again
                log.warning("checking the production alias failed: %s: %s", type(exc).__name__, exc)
            stop.wait(interval_s)
