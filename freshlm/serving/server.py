"""``freshlm serve``: the model server process, assembled from settings and run.

The HTTP API comes up at once (``/healthz`` answers 503 until a model is loaded); a
background thread loads what ``production`` names and then follows the alias every
``FRESHLM_SERVE_POLL_S`` seconds, the fallback for a reload call that never came. Reload calls
(from ``freshlm_deploy``) swap at once. SIGTERM and Ctrl-C stop it gracefully: uvicorn
finishes the requests in progress first.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from freshlm.settings import EMBEDDED_SERVE_TOKEN, Settings, SettingsError

log = logging.getLogger("freshlm.serving")


class ServeConfigError(ValueError):
    """The server cannot start with this configuration; the message says what to change."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_config(settings: Settings, host: str) -> None:
    """Refuse the embedded token on an interface other people can reach."""
    if settings.serve_token == EMBEDDED_SERVE_TOKEN and not _loopback(host):
        raise ServeConfigError(
            f"the server would listen on {host} with the embedded default reload token; set "
            "FRESHLM_SERVE_TOKEN to a secret of your own (a Kubernetes Secret in the "
            "deployment) or bind to 127.0.0.1"
        )


class ServingProcess:
    """Everything one server holds: slot, swapper, metrics, the app and the poll thread."""

    def __init__(self, settings: Settings, *, server_url: str, cache_dir: Path) -> None:
        from freshlm.alerts.sender import send_slack
        from freshlm.serving import memory
        from freshlm.serving.app import create_app
        from freshlm.serving.loading import choose_backend, load_version
        from freshlm.serving.metrics import ServingMetrics
        from freshlm.serving.slot import ModelSlot
        from freshlm.serving.swaps import VersionSwapper
        from freshlm.store import open_store

        self.settings = settings
        self.backend_name = choose_backend(settings.serve_backend)
        self.store = open_store(settings=settings)
        self.metrics = ServingMetrics()
        self.slot = ModelSlot()

        def load(version_id: str) -> Any:
            return load_version(
                self.store,
                version_id,
                cache_dir=cache_dir,
                backend=self.backend_name,
                max_batch=settings.serve_max_batch,
                keep_copies=settings.model_copies_keep,
                on_batch=self.metrics.batch,
            )

        self.swapper = VersionSwapper(
            self.store,
            self.slot,
            load=load,
            metrics=self.metrics,
            alert=send_slack,
            server_url=server_url,
            backend_name=self.backend_name,
        )
        self.metrics.serving = self._serving
        self.metrics.held = memory.held
        self.app = create_app(self.slot, self.swapper, self.metrics, settings.serve_token)
        self._stop = threading.Event()
        self._poller = threading.Thread(
            target=self.swapper.poll_forever,
            args=(settings.serve_poll_s, self._stop),
            name="poll-production",
            daemon=True,
        )

    def _serving(self) -> tuple[str, str] | None:
        current = self.slot.current
        return (current.version_id, self.backend_name) if current is not None else None

    def start_polling(self) -> None:
        """Load what ``production`` names, then follow it (a background thread)."""
        self._poller.start()

    def stop_polling(self) -> None:
        self._stop.set()

    def http_server(self, host: str, port: int) -> Any:
        """The uvicorn server of the app (``run()`` it; set ``should_exit`` to stop)."""
        import uvicorn

        config = uvicorn.Config(
            self.app, host=host, port=port, log_level="warning", access_log=False
        )
        return uvicorn.Server(config)

    def run(self, host: str, port: int) -> None:
        self.start_polling()
        try:
            self.http_server(host, port).run()
        finally:
            self.stop_polling()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="freshlm-serve",
        description="Serve the model version the production alias names, over HTTP "
        "(OpenAI-compatible), swapping versions without dropping a request.",
    )
    parser.add_argument("--host", help="interface to bind (default FRESHLM_SERVE_HOST)")
    parser.add_argument("--port", type=int, help="port (default FRESHLM_SERVE_PORT)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        host = args.host or settings.serve_host
        port = args.port or settings.serve_port
        if not 1 <= port <= 65535:
            raise ServeConfigError(f"--port {port}: expected a TCP port from 1 to 65535")
        check_config(settings, host)
        logging.basicConfig(
            level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s"
        )
        process = ServingProcess(
            settings,
            server_url=f"http://{host}:{port}",
            cache_dir=settings.home / "serving" / "models",
        )
    except (SettingsError, ServeConfigError, RuntimeError) as exc:
        print(f"freshlm serve: {exc}", file=sys.stderr)
        return 2
    log.info("serving on http://%s:%d with the %s backend", host, port, process.backend_name)
    process.run(host, port)
    return 0
