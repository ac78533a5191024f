"""Stale build locks of PyTorch's JIT extensions, found and removed before a run launches.

DeepSpeed builds some ops at first use (on CPU ranks, its shared-memory allreduce) through
``torch.utils.cpp_extension``, which guards each extension's build folder with a ``lock`` file
(``FileBaton``): the rank that creates it builds, every other rank and every later run waits
until the file is gone. A rank killed mid-build (a cancelled task, a stall, an OOM kill) never
removes it, so every later run waits forever on a build that no one is doing, and fails only
when ``FRESHLM_TRAIN_STALL_TIMEOUT_S`` kills it.

A lock is stale when no process works in its folder (``ninja`` and the compiler run with the
build folder as their working directory) and it is older than any build takes here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("freshlm.training.extension_locks")

#: A lock younger than this is left alone even when no process is seen in its folder: the
#: rank that took it may still be writing ``build.ninja``. DeepSpeed's CPU ops build in a few
#: minutes at most.
MIN_STALE_AGE_S = 600.0


@dataclass(frozen=True)
class StaleLock:
    path: Path
    age_s: float


def extensions_root(env: Mapping[str, str]) -> Path:
    """Where ``torch.utils.cpp_extension`` builds for a process with ``env``:
    ``TORCH_EXTENSIONS_DIR`` if set, else torch's default root (``~/.cache/torch_extensions``)."""
    if env.get("TORCH_EXTENSIONS_DIR"):
        return Path(env["TORCH_EXTENSIONS_DIR"])
    from torch.utils.cpp_extension import get_default_build_root

    return Path(get_default_build_root())


def _working_dirs() -> list[Path]:
    """The working directory of every process this user can see (empty where /proc is not)."""
    out = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            out.append(Path(os.readlink(entry / "cwd")))
        except OSError:  # gone, or another user's
            continue
    return out


def stale_locks(root: Path, *, min_age_s: float = MIN_STALE_AGE_S) -> list[StaleLock]:
    """The build locks under ``root`` (``<name>/lock``, or ``<python>_<device>/<name>/lock``
    under torch's default root) that are older than ``min_age_s`` with no process working in
    their folder."""
    locks = [*root.glob("*/lock"), *root.glob("*/*/lock")]
    if not locks:
        return []
    now = time.time()
    busy = {d.resolve() for d in _working_dirs()}
    out = []
    for lock in locks:
        try:
            age = now - lock.stat().st_mtime
        except FileNotFoundError:  # its build just finished
            continue
        folder = lock.parent.resolve()
        if age >= min_age_s and not any(d == folder or folder in d.parents for d in busy):
            out.append(StaleLock(lock, age))
    return out


def clear_stale_locks(env: Mapping[str, str], *, min_age_s: float = MIN_STALE_AGE_S) -> list[Path]:
    """Remove the stale build locks of the extensions a run with ``env`` would build, each
    named in the log; returns their paths."""
    removed = []
    for lock in stale_locks(extensions_root(env), min_age_s=min_age_s):
        try:
            lock.path.unlink()
        except FileNotFoundError:
            continue
        log.warning(
            "removed a stale PyTorch extension build lock %s (%.0f minutes old, no build "
            "running in its folder): a rank killed while building left it, and every run "
            "would wait on it",
            lock.path,
            lock.age_s / 60,
        )
        removed.append(lock.path)
    return removed
