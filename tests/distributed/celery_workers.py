"""Airflow Celery workers on this machine, each a process tree the test owns and can kill.

A worker is ``airflow celery worker`` with one slot (``--concurrency 1``), its own Celery node
name, pid file and log, and its own name as the hostname Airflow records for the tasks it runs
(:mod:`tests.distributed.worker_name`). A task runs several levels below the worker (the Celery
pool process, Airflow's supervisor, the task process, and for training the DeepSpeed launcher
and its ranks, in process groups of their own), so a worker is stopped or killed as a tree:
everything descended from it, as when the machine it runs on goes away.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from freshlm.airflow_local import LocalAirflow
from tests.distributed.worker_name import ENV_VAR

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


class WorkerStartError(RuntimeError):
    """A worker exited or did not report ready; the message has its log's tail."""


class CeleryWorker:
    def __init__(self, airflow: LocalAirflow, name: str) -> None:
        self.airflow = airflow
        self.name = name
        self.log_path = airflow.logs_dir / f"celery-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = self.airflow.env()
        env[ENV_VAR] = self.name
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "tests.distributed.worker_name.hostname"
        # The worker and the task processes it starts must import the hostname callable.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        return env

    def start(self) -> CeleryWorker:
        airflow_bin = str(Path(self.airflow.env()["PATH"].split(os.pathsep)[0]) / "airflow")
        cmd = [
            airflow_bin,
            "celery",
            "worker",
            "--concurrency",
            "1",
            "--celery-hostname",
            f"{self.name}@%h",
            "--pid",
            str(self.airflow.home / f"celery-{self.name}.pid"),
            # Task logs are files in the shared AIRFLOW_HOME; no log server per worker.
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Block until Celery logs that this node is ready to take tasks."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise WorkerStartError(
                    f"celery worker {self.name} exited ({code}):\n{self.log_tail()}"
                )
            if f"{self.name}@" in self.log_text() and " ready." in self.log_text():
                return
            time.sleep(0.5)
        raise WorkerStartError(f"celery worker {self.name} not ready:\n{self.log_tail()}")

    def log_text(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def tree(self) -> list[psutil.Process]:
        """The worker's process and every process descended from it, now."""
        if self.process is None:
            return []
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def wait_for_descendant(self, marker: str, timeout_s: float) -> None:
        """Block until a process below the worker has ``marker`` in its command line."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc in self.tree():
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    if marker in " ".join(proc.cmdline()):
                        return
            time.sleep(0.5)
        raise AssertionError(f"no process running {marker!r} under worker {self.name}")

    def kill(self) -> int:
        """SIGKILL the whole tree at once, as a machine that loses power; returns how many
        processes died. The tree is frozen first (SIGSTOP) so none forks while it is listed."""
        frozen: dict[int, psutil.Process] = {}
        for _ in range(3):  # a process forked just before its parent froze is caught next round
            for proc in self.tree():
                if proc.pid not in frozen:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        proc.send_signal(signal.SIGSTOP)
                        frozen[proc.pid] = proc
        for proc in frozen.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(list(frozen.values()), timeout=STOP_TIMEOUT_S)
        self.process.wait(STOP_TIMEOUT_S)
        return len(frozen)

    def stop(self) -> None:
        """SIGTERM the tree (Celery's warm shutdown), SIGKILL whatever is left after a while."""
        tree = self.tree()
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        _, alive = psutil.wait_procs(tree, timeout=STOP_TIMEOUT_S)
        for proc in alive + self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT_S)
