"""A real Redis server on loopback for tests: the Celery executor's broker.

``redis-server`` comes from Debian's ``redis-server`` package (``make services`` installs it).
Each server listens on 127.0.0.1 only, on a free port, with no persistence (no RDB snapshots, no
append-only file): a broker whose queue lives as long as the test.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from freshlm.airflow_local import free_port
from tests.support.loopback_process import ServerContext, end_process

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class RedisUnavailable(RuntimeError):
    """``redis-server`` is not installed or did not start."""


class RedisServer(ServerContext):
    """One ``redis-server`` process; :meth:`start` blocks until it answers PING."""

    def __init__(self, work_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable(
                "`redis-server` is not on PATH; `make services` installs it "
                "(apt-get install redis-server)"
            )
        self.binary = binary
        self.work_dir = work_dir
        self.port = free_port()
        self.log_path = work_dir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.work_dir),
            "--daemonize",
            "no",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()
        return self

    def ping(self) -> bool:
        """One PING over the wire protocol (no client library needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisUnavailable(
                    f"redis-server exited with {self.process.returncode}:\n"
                    + self.log_path.read_text(errors="replace")[-3000:]
                )
            if self.ping():
                return
            time.sleep(0.1)
        raise RedisUnavailable(f"redis-server did not answer PING in {START_TIMEOUT_S:.0f}s")

    def stop(self) -> None:
        """SIGTERM (nothing to save), SIGKILL if it lingers."""
        if self.process is None:
            return
        end_process(self.process, signal.SIGTERM, STOP_TIMEOUT_S)
