"""A real PostgreSQL server on loopback for tests: Airflow's metadata DB and Celery's results.

The binaries come from Debian's ``postgresql`` package (``make services`` installs it), found on
PATH or under ``/usr/lib/postgresql/<version>/bin``. Each server is a fresh cluster in its own
temporary folder, listening on 127.0.0.1 only (no Unix socket) on a free port, with password-less
``trust`` login for one user on loopback. PostgreSQL refuses to run as root, so under root the
cluster belongs to the ``postgres`` system user and its processes run as that user. Durability
settings are off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is thrown
away after the test, and the shared CPU is better spent on the test itself.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from freshlm.airflow_local import free_port
from tests.support.loopback_process import ServerContext, end_process

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
#: The system user that owns the cluster when the tests run as root.
SYSTEM_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed, or its cluster could not be created or started."""


def find_binary(name: str) -> str:
    """``initdb`` or ``postgres``: on PATH, else in the newest ``/usr/lib/postgresql/*/bin``."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return str(versions[-1])
    raise PostgresUnavailable(
        f"PostgreSQL's `{name}` was not found on PATH or under /usr/lib/postgresql/*/bin; "
        "`make services` installs it (apt-get install postgresql)"
    )


class PostgresServer(ServerContext):
    """One PostgreSQL cluster and its postmaster; :meth:`start` blocks until it takes logins."""

    user = "airflow"
    database = "airflow"

    def __init__(self, log_path: Path) -> None:
        self.initdb = find_binary("initdb")
        self.postgres = find_binary("postgres")
        self.port = free_port()
        self.run_as = _run_as()
        # Not under pytest's tmp_path: its parent is root-only, and the postgres user needs to
        # reach its data folder.
        self.data_dir = Path(tempfile.mkdtemp(prefix="freshlm-postgres-"))
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def sqlalchemy_url(self) -> str:
        """The URL Airflow's ``sql_alchemy_conn`` takes (psycopg2 driver)."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def celery_result_backend(self) -> str:
        """The same database as Celery's result backend (SQLAlchemy backend, ``db+`` prefix)."""
        return "db+" + self.sqlalchemy_url

    def start(self) -> PostgresServer:
        if self.run_as is not None:
            os.chown(self.data_dir, self.run_as.pw_uid, self.run_as.pw_gid)
        self._init_cluster()
        cmd = [
            self.postgres,
            "-D",
            str(self.data_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        with self.log_path.open("wb") as log:
            # Its own session: stop() signals the postmaster and every backend it forked.
            self.process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._user()
            )
        self._wait_ready()
        self._create_database()
        return self

    def _user(self) -> dict:
        if self.run_as is None:
            return {}
        return {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}

    def _init_cluster(self) -> None:
        cmd = [
            self.initdb,
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, **self._user())
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({done.returncode}):\n{done.stderr}")

    def _connect(self, database: str):
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname=database, connect_timeout=5
        )

    def _wait_ready(self) -> None:
        import psycopg2

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PostgresUnavailable(
                    f"postgres exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self._connect("postgres").close()
                return
            except psycopg2.OperationalError:
                time.sleep(0.2)
        raise PostgresUnavailable(
            f"postgres not ready in {START_TIMEOUT_S:.0f}s:\n{self.log_tail()}"
        )

    def _create_database(self) -> None:
        conn = self._connect("postgres")
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), SIGKILL if it lingers; then the
        cluster's files are deleted (the log stays)."""
        if self.process is not None:
            end_process(self.process, signal.SIGINT, STOP_TIMEOUT_S)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _run_as() -> pwd.struct_passwd | None:
    """The ``postgres`` system user when running as root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and there is no `{SYSTEM_USER}` user to run PostgreSQL as; "
            "`make services` installs the postgresql package, which creates it"
        ) from None
