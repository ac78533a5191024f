"""``freshlm serve`` inside the test process, for tests that need a server but not its process
(the monitor's canaries, the DAG tests): the same app, swapper and poller on a thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from freshlm.airflow_local import free_port
from freshlm.serving.server import ServingProcess
from freshlm.settings import Settings


@contextlib.contextmanager
def serving(store_uri: str, home: Path, **env: str) -> Iterator[str]:
    """A server over ``store_uri`` on a free loopback port, ready; yields its URL."""
    settings = Settings.from_env(
        {
            "FRESHLM_HOME": str(home),
            "FRESHLM_STORE_URI": store_uri,
            "FRESHLM_SERVE_BACKEND": "transformers",
            "FRESHLM_SERVE_POLL_S": "0.5",
            **env,
        }
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ServingProcess(settings, server_url=url, cache_dir=home / "serving-cache")
    server = process.http_server("127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    process.start_polling()
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the in-process server at {url} loaded no model in 120 s")
        yield url
    finally:
        server.should_exit = True
        process.stop_polling()
        thread.join(timeout=30)
