"""Pre-flight checks an operator runs before the first night: is FreshLM wired correctly?

Each check returns a small report dict (what was checked, the numbers) and raises
:class:`PreflightError` with an actionable message when something is wrong, so the Airflow task
fails with that message in its log instead of a stack trace from deep inside a crawl.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

from freshlm.settings import Settings, SettingsError

log = logging.getLogger(__name__)

PROBE_KEY = "_preflight/probe.json"


class PreflightError(RuntimeError):
    """A pre-flight check failed; the message says what to fix."""


def check_settings() -> dict:
    """Parse the configuration exactly as every task will, and report the effective values."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise PreflightError(f"configuration is invalid: {exc}") from None
    report = {"store_uri": settings.store_uri, "world_url": settings.world_url}
    log.info("settings OK: %s", report)
    return report


def check_store(settings: Settings, run_id: str) -> dict:
    """Write, read back and delete a probe object in the artifact store; report latencies."""
    from freshlm.store import StoreError, open_store  # the store pulls in boto3: import late

    payload = json.dumps({"run_id": run_id}).encode()
    try:
        store = open_store(settings.store_uri, settings=settings)
        started = time.perf_counter()
        store.write_bytes(PROBE_KEY, payload)
        wrote = time.perf_counter()
        echoed = store.read_bytes(PROBE_KEY)
        read = time.perf_counter()
        store.delete(PROBE_KEY)
    except StoreError as exc:
        raise PreflightError(f"artifact store is not usable: {exc}") from None
    if echoed != payload:
        raise PreflightError(
            f"artifact store {settings.store_uri} returned different bytes than were written"
        )
    report = {
        "store_uri": settings.store_uri,
        "write_ms": round((wrote - started) * 1000, 1),
        "read_ms": round((read - wrote) * 1000, 1),
    }
    log.info("store OK: %s", report)
    return report


def check_world(settings: Settings) -> dict:
    """Ask the sandbox world (the embedded mode's sources) for its health and clock."""
    url = f"{settings.world_url}/_world/health"
    try:
        with urllib.request.urlopen(url, timeout=settings.http_timeout_s) as resp:
            health = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PreflightError(
            f"sandbox world not reachable at {url} ({exc}); start it with "
            "`python -m sandbox` or set FRESHLM_WORLD_URL"
        ) from None
    log.info("world OK at %s: %s", settings.world_url, health)
    return {"world_url": settings.world_url, **health}
