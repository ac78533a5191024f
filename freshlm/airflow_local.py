"""Run a real local Airflow 3 (API server, scheduler, DAG processor, triggerer) for FreshLM.

One code path for ``make demo`` and the integration tests: a LocalExecutor on SQLite in its own
``AIRFLOW_HOME``, pointed at this repository's ``dags/`` and ``plugins/``, each component in its
own process (``airflow standalone`` would hide them behind one supervisor and pick its own
ports and passwords). Everything that matters is passed through the environment, so the
components agree on the JWT secret, the ports and the login without an ``airflow.cfg``.

Usage::

    with LocalAirflow(home=Path("/tmp/af"), port=28080) as af:
        af.wait_ready()
        print(af.base_url, af.username, af.password)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from freshlm.process_reaper import GroupReaper

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def _write_private(path: Path, text: str) -> None:
    """Write a secret file that is owner-only from its first byte (never 0644, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # an existing file keeps its mode on open: fix it first
        out.write(text)


class AirflowStartError(RuntimeError):
    """A component did not start; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


class LocalAirflow:
    """A local Airflow deployment whose processes this object owns.

    ``home`` becomes ``AIRFLOW_HOME`` (SQLite DB, logs, passwords file, secrets). The login is
    fixed per home: the password is generated once and kept in ``home/passwords.json``, so the
    UI login printed by ``make demo`` stays valid across restarts.
    """

    def __init__(
        self,
        home: Path,
        port: int,
        *,
        host: str = "127.0.0.1",
        dags_folder: Path = REPO_ROOT / "dags",
        plugins_folder: Path = REPO_ROOT / "plugins",
        parallelism: int = 2,
        username: str = "admin",
        fast_parsing: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.home = home.resolve()
        self.host = host
        self.port = port
        self.dags_folder = dags_folder
        self.plugins_folder = plugins_folder
        self.parallelism = parallelism
        self.username = username
        self.fast_parsing = fast_parsing
        self.extra_env = dict(extra_env or {})
        self.logs_dir = self.home / "component-logs"
        self._procs: dict[str, subprocess.Popen] = {}
        self._reaper: GroupReaper | None = None
        self._log_files: dict[str, object] = {}

    # --- configuration ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def password(self) -> str:
        return self._secrets()["password"]

    def _secrets(self) -> dict[str, str]:
        """Per-home secrets, created once: login password, JWT secret, API secret key."""
        path = self.home / "freshlm-secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        self.home.mkdir(parents=True, exist_ok=True)
        values = {
            "password": secrets.token_urlsafe(12),
            "jwt_secret": secrets.token_urlsafe(32),
            "api_secret_key": secrets.token_urlsafe(32),
        }
        _write_private(path, json.dumps(values))
        return values

    def env(self) -> dict[str, str]:
        """The environment every Airflow component (and task) runs with."""
        sec = self._secrets()
        passwords = self.home / "passwords.json"
        _write_private(passwords, json.dumps({self.username: sec["password"]}))
        venv_bin = str(Path(sys.executable).parent)
        env = dict(os.environ)
        env.update(
            {
                # Components start each other as `airflow ...` subprocesses: the venv must be
                # first on PATH or they pick up another installation.
                "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                # The default (32) forks 32 workers; on a 2-core laptop that only thrashes.
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                # All components must share one JWT secret, or tokens minted by the API server
                # for task workers are rejected.
                "AIRFLOW__API_AUTH__JWT_SECRET": sec["jwt_secret"],
                "AIRFLOW__API__SECRET_KEY": sec["api_secret_key"],
                "AIRFLOW__API__HOST": self.host,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                # 8793 is the default worker log server port; two deployments (a demo and a
                # test run) on one machine must not collide.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port(self.host)),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port(self.host)),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            }
        )
        if self.fast_parsing:
            # Tests add DAG files: the folder is listed every few seconds and a new file is
            # parsed when it is found. A file already parsed is parsed again only each minute:
            # every DAG file parsed every few seconds costs a third of a core on a 2-core host.
            env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] = "5"
            env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] = "60"
            env["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] = "0.5"
        env.update(self.extra_env)
        return env

    # --- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create or upgrade the metadata DB (idempotent)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / "db-migrate.log"
        started = time.monotonic()
        with log_path.open("w") as out:
            rc = subprocess.call(
                [self._airflow(), "db", "migrate"], env=self.env(), stdout=out, stderr=out
            )
        if rc != 0:
            raise AirflowStartError(f"airflow db migrate failed (exit {rc}):\n{_tail(log_path)}")
        log.info("metadata DB ready in %.1fs (%s)", time.monotonic() - started, self.home)

    def start(self) -> LocalAirflow:
        """Migrate the DB and start every component; returns without waiting for readiness."""
        self.migrate()
        env = self.env()
        for component in COMPONENTS:
            log_path = self.logs_dir / f"{component}.log"
            out = log_path.open("a")
            self._log_files[component] = out
            cmd = [self._airflow(), component]
            # start_new_session: stop() signals the whole group, including the workers and
            # supervisors a component forks.
            self._procs[component] = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            log.info("started airflow %s (pid %d)", component, self._procs[component].pid)
        # Stops the components should this process die without stop() (a SIGKILLed test run).
        self._reaper = GroupReaper([proc.pid for proc in self._procs.values()])
        return self

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Block until the API server answers and reports every component healthy."""
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(
                    f"{self.base_url}/api/v2/monitor/health", timeout=5
                ) as resp:
                    health = json.load(resp)
                unhealthy = [
                    name
                    for name in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                    if (health.get(name) or {}).get("status") != "healthy"
                ]
                if not unhealthy:
                    return
                last_error = "waiting for " + ", ".join(unhealthy)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last_error = str(exc)
            time.sleep(1.0)
        raise AirflowStartError(
            f"Airflow at {self.base_url} not ready after {timeout_s:.0f}s ({last_error}).\n"
            + self.log_tails()
        )

    def _check_alive(self) -> None:
        for component, proc in self._procs.items():
            if proc.poll() is not None:
                raise AirflowStartError(
                    f"airflow {component} exited with code {proc.returncode}:\n"
                    + _tail(self.logs_dir / f"{component}.log")
                )

    def log_tails(self, lines: int = 30) -> str:
        return "\n".join(
            f"--- {c} ---\n{_tail(self.logs_dir / f'{c}.log', lines)}" for c in self._procs
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every component: SIGTERM to each process group, then SIGKILL what is left."""
        for proc in self._procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        for proc in self._procs.values():
            # Also reap forked workers left in the group after the leader exited.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for out in self._log_files.values():
            out.close()
        if self._reaper is not None:
            self._reaper.release()
            self._reaper = None
        self._procs.clear()
        self._log_files.clear()

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def _airflow() -> str:
        return str(Path(sys.executable).parent / "airflow")
