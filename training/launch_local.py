"""The ``local`` training backend: the ``deepspeed`` launcher with N ranks on this machine.

:func:`run_local_training` is what the training task calls in the embedded mode. It

1. resolves the inputs in the task's own process (:func:`training.train.prepare`): downloads the
   base model, builds the training set once, and computes the deterministic model version id.
   If that version is already published it returns at once: an identical rerun launches
   nothing and publishes no duplicate;
2. writes the resolved config and runs ``deepspeed --num_gpus N --master_port P
   training/train.py --config CONFIG`` as a subprocess (argument list, no shell), streaming its
   output line by line into this module's logger, i.e. the task log;
3. on success reads the published version's manifest and returns a summary; on failure raises
   :class:`TrainingFailed` carrying the failing rank's error (type, message, traceback) as the
   rank reported it (``training.train`` writes it to ``$FRESHLM_TRAIN_ERROR_DIR``), falling back
   to the first Python traceback in the output, and only then to the exit code. A run that
   prints nothing for ``FRESHLM_TRAIN_STALL_TIMEOUT_S`` (a hung rank: rank 0 logs every step) is
   killed, launcher and ranks, and fails saying so. Before it launches, a build lock that a
   rank killed mid-build left in PyTorch's extension folder is removed
   (:mod:`training.extension_locks`): the ranks would wait on it forever.

On a machine without CUDA the ranks are CPU processes: ``DS_ACCELERATOR=cpu`` selects
DeepSpeed's CPU accelerator (collectives over gloo, with DeepSpeed's shared-memory allreduce),
``--num_gpus N`` is the number of ranks, and ``OMP_NUM_THREADS`` splits the cores between them.
Nothing else changes: the same entrypoint and DeepSpeed config run on GPUs (DESIGN invariant 6).

A crashed or killed run is resumed by calling :func:`run_local_training` again with the same
config: the ranks find the run's last published checkpoint and continue from it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from freshlm.disk_usage import tree_bytes
from freshlm.settings import get_settings
from freshlm.store import open_store
from training.config import ConfigError, TrainConfig
from training.extension_locks import clear_stale_locks

log = logging.getLogger("freshlm.training.local")

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = "training/train.py"
_TAIL_LINES = 300
# launch.py names the first rank that exited non-zero: "[...'--local_rank=1'...] exits with
# return code = -6"; the others are then killed by the launcher itself.
_RANK_EXIT = re.compile(r"--local_rank=(\d+).*exits with return code = (-?\d+)")
# What a rank that dies in native code (no Python exception, so no report) leaves behind.
_NATIVE_CRASH = ("terminate called after throwing", "what():", "Fatal Python error", "Segmentation")
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failed|Warning)?): ")


class TrainingFailed(RuntimeError):
    """A training run failed. ``str()`` is the failing rank's own error.

    ``rank`` (None if no rank reported), ``error_type``, ``rank_traceback`` (the rank's
    traceback text, if known), ``returncode`` (the launcher's) and ``output_tail``.
    """

    def __init__(
        self,
        message: str,
        *,
        rank: int | None = None,
        error_type: str | None = None,
        rank_traceback: str | None = None,
        returncode: int | None = None,
        output_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.rank = rank
        self.error_type = error_type
        self.rank_traceback = rank_traceback
        self.returncode = returncode
        self.output_tail = output_tail


def deepspeed_executable() -> str:
    """The ``deepspeed`` launcher next to this Python (the venv's), else the one on PATH."""
    candidate = Path(sys.executable).parent / "deepspeed"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("deepspeed")
    if not found:
        raise TrainingFailed(
            "the deepspeed launcher is not installed (expected next to "
            f"{sys.executable} or on PATH); run `make install`"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return bool(torch.cuda.is_available())


def check_gpu_ranks(num_ranks: int, gpus: int | None = None) -> None:
    """On a machine with GPUs a local run starts one rank per GPU, so more ranks than GPUs is
    a config error, said before anything is prepared (DeepSpeed would start the extra ranks on
    GPUs that are not there). ``gpus``: the machine's (default: what torch sees; 0 on a
    CPU-only machine, where the ranks are CPU processes and any number runs)."""
    if gpus is None:
        gpus = _gpu_count()
    if gpus and num_ranks > gpus:
        raise ConfigError(
            f"TrainConfig.num_ranks = {num_ranks}: this machine has {gpus} GPU"
            f"{'s' if gpus > 1 else ''} and a local run starts one rank per GPU; set "
            f"FRESHLM_TRAIN_GPUS (or freshlm_train's gpus Param) to {gpus} or fewer"
        )


def _gpu_count() -> int:
    if not _cuda_available():
        return 0
    import torch

    return int(torch.cuda.device_count())


def launcher_env(num_ranks: int, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The launcher's environment: this process's, the caller's overrides, and on a CPU-only
    machine ``DS_ACCELERATOR=cpu`` and ``OMP_NUM_THREADS`` = cores / ranks (unless set)."""
    out = dict(os.environ)
    out.update(env or {})
    out["PYTHONUNBUFFERED"] = "1"
    # The launcher starts ranks with this interpreter; its bin holds `deepspeed` and friends.
    out["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), out.get("PATH", "")])
    if "DS_ACCELERATOR" not in out and not _cuda_available():
        out["DS_ACCELERATOR"] = "cpu"
    if "OMP_NUM_THREADS" not in out:
        out["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, num_ranks)))
    # Without it the CPU ranks fight over the cores through nested thread pools.
    out.setdefault("TOKENIZERS_PARALLELISM", "false")
    return out


class LocalTraining:
    """A started local run. :meth:`wait` streams its output and returns the summary;
    :meth:`kill` ends the launcher and its ranks (the whole process group)."""

    def __init__(
        self,
        proc: subprocess.Popen[str],
        *,
        config: TrainConfig,
        prepared: Any,
        error_dir: Path,
        argv: list[str],
        on_line: Callable[[str], None] | None,
        master_addr: str = "127.0.0.1",
        master_port: int = 0,
        run_dir: Path | None = None,
    ) -> None:
        self.proc = proc
        self.master_addr = master_addr
        self.master_port = master_port
        self.config = config
        self.prepared = prepared
        self.error_dir = error_dir
        self.run_dir = run_dir  # the run's local folder, removed once the run has succeeded
        self.argv = argv
        self.on_line = on_line
        self.started = time.monotonic()
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self.result: dict[str, Any] | None = None
        self._tracebacks: list[list[str]] = []
        self._in_traceback: list[str] | None = None
        self._first_exit: tuple[int, int] | None = None  # (rank, exit code) per the launcher
        self._native: list[str] = []
        self._last_output = time.monotonic()
        self.stalled_s: float | None = None  # set when the stall watchdog killed the run

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the launcher's process group (the launcher and every rank)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def _take(self, line: str) -> None:
        self._last_output = time.monotonic()
        line = line.rstrip("\n")
        self.tail.append(line)
        log.info("%s", line)
        if self.on_line is not None:
            self.on_line(line)
        from training.train import RESULT_MARKER

        if line.startswith(RESULT_MARKER + " "):
            with contextlib.suppress(ValueError):
                self.result = json.loads(line[len(RESULT_MARKER) + 1 :])
        exit_match = _RANK_EXIT.search(line)
        if exit_match and self._first_exit is None:
            self._first_exit = (int(exit_match.group(1)), int(exit_match.group(2)))
        if len(self._native) < 6 and any(marker in line for marker in _NATIVE_CRASH):
            self._native.append(line.strip())
        # Collect Python tracebacks from the merged output, for the fallback error message.
        stripped = line.strip()
        if "Traceback (most recent call last):" in line:
            self._in_traceback = [stripped]
            self._tracebacks.append(self._in_traceback)
        elif self._in_traceback is not None:
            self._in_traceback.append(line)
            if line and not line[0].isspace() and _EXC_LINE.match(stripped):
                self._in_traceback = None

    def wait(self) -> dict[str, Any]:
        """Stream the output to the log until the launcher exits; the summary or
        :class:`TrainingFailed`."""
        assert self.proc.stdout is not None
        done = threading.Event()
        watchdog = threading.Thread(
            target=self._kill_when_stalled,
            args=(get_settings().train_stall_timeout_s, done),
            name="training-stall-watchdog",
            daemon=True,
        )
        watchdog.start()
        try:
            for line in self.proc.stdout:
                self._take(line)
        finally:
            done.set()
            returncode = self.proc.wait()
            self._remove_shm_buffers()
        wall = time.monotonic() - self.started
        if returncode != 0 or self.result is None:
            raise self._failure(returncode)
        summary = dict(self.result)
        summary.update(launched=True, launcher_wall_s=round(wall, 3), num_ranks=self.num_ranks)
        self._remove_local_run()
        log.info(
            "local training finished in %.1fs: model version %s (%s)",
            wall,
            summary["version_id"],
            "already published" if summary.get("already_published") else "published",
        )
        return summary

    def _kill_when_stalled(self, timeout_s: float, done: threading.Event) -> None:
        """Kill the run once it has printed nothing for ``timeout_s``. A rank that stops
        (deadlocked, stopped, stuck in I/O) holds every other rank at their next collective, and
        not every collective gives up: DeepSpeed's shared-memory allreduce on CPU spins, with no
        timeout, for as long as the stopped rank does not answer."""
        while not done.wait(min(5.0, timeout_s / 4)):
            silent = time.monotonic() - self._last_output
            if silent >= timeout_s:
                self.stalled_s = silent
                log.error(
                    "no output from the launcher or any rank for %.0fs "
                    "(FRESHLM_TRAIN_STALL_TIMEOUT_S=%g): killing the launcher and its ranks",
                    silent,
                    timeout_s,
                )
                self.kill()
                return

    def _remove_local_run(self) -> None:
        """Remove the run's local folder once the run has succeeded: the Trainer's last
        checkpoint, the saved weights and the attempts' configs, about three times the model's
        size a night on the worker's disk, while the store holds the version. A failed run's
        folder stays (its error files; the resume reads the store)."""
        if self.run_dir is None or not self.run_dir.is_dir():
            return
        size = tree_bytes(self.run_dir)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        log.info("removed the run's local folder %s (%.1f MB)", self.run_dir, size / 1e6)

    def _remove_shm_buffers(self) -> None:
        """DeepSpeed's CPU allreduce leaves a shared-memory buffer per rank (about 70 MB each)
        in /dev/shm, named after the uid, master address and port; this run's are removed."""
        if not self.master_port:
            return
        for rank in range(self.num_ranks):
            name = (
                f"deepspeed_allreduce_buffer_{os.getuid()}_{self.master_addr}_"
                f"{self.master_port}_{rank}"
            )
            with contextlib.suppress(OSError):
                (Path("/dev/shm") / name).unlink(missing_ok=True)

    @property
    def num_ranks(self) -> int:
        return self.config.num_ranks

    def _failure(self, returncode: int) -> TrainingFailed:
        tail = "\n".join(self.tail)
        if self.stalled_s is not None:
            last_lines = "\n".join(list(self.tail)[-20:])
            return TrainingFailed(
                f"training made no progress for {self.stalled_s:.0f}s (no output from the "
                "launcher or any rank; FRESHLM_TRAIN_STALL_TIMEOUT_S): a rank is hung; the "
                f"launcher and its {self.num_ranks} rank(s) were killed; last output:\n"
                f"{last_lines}",
                returncode=returncode,
                output_tail=tail,
            )
        reports = []
        for path in sorted(self.error_dir.glob("rank-*.json")):
            try:
                reports.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        by_rank = {r.get("rank"): r for r in reports}
        if self._first_exit is not None and self._first_exit[0] not in by_rank:
            # The first rank to die left no Python error (a native crash, a signal): what the
            # others then reported (collectives broken off) is the consequence, not the cause.
            rank, code = self._first_exit
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            message = f"training rank {rank} crashed ({how})"
            if self._native:
                message += ": " + " ".join(self._native)
            if reports:
                after = min(reports, key=lambda r: (r.get("time", 0), r.get("rank", 0)))
                message += (
                    f"; then rank {after['rank']} failed: {after['type']}: "
                    f"{str(after['message']).splitlines()[0] if after['message'] else ''}"
                )
            return TrainingFailed(
                message,
                rank=rank,
                error_type=None,
                rank_traceback="\n".join(self._native) or None,
                returncode=returncode,
                output_tail=tail,
            )
        if reports:
            # The first rank to fail holds the cause; the others were usually taken down by it.
            # First by the time each reported, not by exit order: the failing rank's teardown
            # breaks the collectives, and its victims may report and exit before it does.
            first = min(reports, key=lambda r: (r.get("time", 0), r.get("rank", 0)))
            message = f"training rank {first['rank']} failed: {first['type']}: {first['message']}"
            return TrainingFailed(
                message,
                rank=first.get("rank"),
                error_type=first.get("type"),
                rank_traceback=first.get("traceback"),
                returncode=returncode,
                output_tail=tail,
            )
        for tb in self._tracebacks:
            last = tb[-1].strip()
            match = _EXC_LINE.match(last)
            if match:
                return TrainingFailed(
                    f"training failed: {last}",
                    error_type=match.group(1).rsplit(".", 1)[-1],
                    rank_traceback="\n".join(tb),
                    returncode=returncode,
                    output_tail=tail,
                )
        if returncode < 0:
            why = f"killed by signal {signal.Signals(-returncode).name}"
        elif returncode == 0:
            why = "exited 0 without a result line"
        else:
            why = f"exited with code {returncode}"
        last_lines = "\n".join(list(self.tail)[-20:])
        return TrainingFailed(
            f"the deepspeed launcher {why} and no rank reported an error; last output:\n"
            f"{last_lines}",
            returncode=returncode,
            output_tail=tail,
        )


def start_local_training(
    config: TrainConfig,
    *,
    num_ranks: int | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> LocalTraining | dict[str, Any]:
    """Prepare and start a run; returns the running :class:`LocalTraining`, or the summary
    (``launched: False``) if the model version is already published.

    ``num_ranks`` overrides ``config.num_ranks`` (it is part of the recipe: the global batch
    depends on it). ``env`` adds to the launcher's environment. ``on_line`` sees every output
    line as it arrives.
    """
    from training.train import ERROR_DIR_ENV, prepare, work_dir_for

    if num_ranks is not None and num_ranks != config.num_ranks:
        config = config.replace(num_ranks=num_ranks)
    check_gpu_ranks(config.num_ranks)
    started = time.monotonic()
    prepared = prepare(config)
    ident = prepared.identity
    store = open_store(config.store_uri)
    if prepared.published:
        manifest = store.read_manifest(ident.model_prefix)
        log.info(
            "model version %s for run %s is already published; not launching",
            ident.version_id,
            ident.run_key,
        )
        fields = manifest.fields if manifest is not None else {}
        return {
            "version_id": ident.version_id,
            "prefix": ident.model_prefix,
            "uri": store.uri_for(ident.model_prefix),
            "run_key": ident.run_key,
            "trainset_id": prepared.trainset.trainset_id,
            "already_published": True,
            "launched": False,
            "metrics": dict(fields.get("metrics") or {}),
            "lineage": dict(fields.get("lineage") or {}),
            "num_ranks": config.num_ranks,
        }
    resolved = prepared.config
    run_dir = work_dir_for(resolved) / "runs" / ident.run_key
    run_dir.mkdir(parents=True, exist_ok=True)
    attempt_dir = Path(tempfile.mkdtemp(prefix="attempt-", dir=run_dir))
    config_path = resolved.write_json(attempt_dir / "train_config.json")
    error_dir = attempt_dir / "errors"
    error_dir.mkdir()
    master_addr, master_port = "127.0.0.1", _free_port()
    argv = [
        deepspeed_executable(),
        "--num_gpus",
        str(resolved.num_ranks),
        "--master_addr",
        master_addr,
        "--master_port",
        str(master_port),
        ENTRYPOINT,
        "--config",
        str(config_path),
    ]
    launch_env = launcher_env(resolved.num_ranks, env)
    launch_env[ERROR_DIR_ENV] = str(error_dir)
    clear_stale_locks(launch_env)
    log.info(
        "launching %d rank(s) for run %s (training set %s, version %s; prepared in %.1fs): %s",
        resolved.num_ranks,
        ident.run_key,
        prepared.trainset.trainset_id,
        ident.version_id,
        time.monotonic() - started,
        " ".join(argv),
    )
    proc = subprocess.Popen(  # an argument list, never a shell
        argv,
        cwd=str(REPO_ROOT),
        env=launch_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group, so the whole run can be ended
    )
    return LocalTraining(
        proc,
        config=resolved,
        prepared=prepared,
        error_dir=error_dir,
        argv=argv,
        on_line=on_line,
        master_addr=master_addr,
        master_port=master_port,
        run_dir=run_dir,
    )


def run_local_training(
    config: TrainConfig,
    *,
    num_ranks: int | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train ``config`` with the local backend and return the summary: ``version_id``,
    ``prefix``, ``uri``, ``run_key``, ``trainset_id``, ``already_published``, ``launched``,
    ``metrics``, ``lineage``. Raises :class:`TrainingFailed` with the failing rank's error."""
    run = start_local_training(config, num_ranks=num_ranks, env=env, on_line=on_line)
    if isinstance(run, dict):
        return run
    try:
        return run.wait()
    except BaseException:
        run.kill()  # e.g. the task was interrupted: take the ranks down with it
        raise
