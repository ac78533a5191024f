"""Start ``freshlm serve`` as a child process and wait until it answers (the demo, tests).

The child gets this process's environment plus ``env``; its output goes to ``log_path``.
:meth:`ServerProcess.wait_ready` waits for ``/healthz`` to name a loaded version, and fails
with the end of the log if the process dies first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

SERVE_COMMAND = (sys.executable, "-m", "freshlm.serving")


class ServerStartError(RuntimeError):
    """The server exited or did not become ready; the message carries its log's end."""


class ServerProcess:
    def __init__(self, port: int, log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = {**os.environ, **dict(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*SERVE_COMMAND, "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> str:
        """The version served once ``/healthz`` says one is loaded."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise ServerStartError(f"freshlm serve exited:\n{self.log_tail()}")
            try:
                answer = requests.get(f"{self.url}/healthz", timeout=2)
                if answer.status_code == 200:
                    return answer.json()["version"]
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise ServerStartError(
            f"freshlm serve not ready after {timeout_s:.0f}s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (uvicorn finishes the requests in progress), then SIGKILL if needed."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
