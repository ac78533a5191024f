"""A crawl's staging folder, where its spider writes the shard's part files before they are
published, and the sweep that removes the folders of crawls killed before they could.

A crawl stopped by SIGKILL (Airflow's execution timeout, a pod's grace period running out, the
hung-crawl kill of :mod:`crawlers.launch`) never runs its cleanup, so its staging folder stays
in the worker's temp dir with the part files it held; on a long-lived worker they pile up. So
each crawl first sweeps: every staging folder names its crawl's process in :data:`OWNER_FILE`
(pid and, on Linux, the process's start time, so a reused pid is not taken for the crawl); a
folder whose process is gone is removed, and a folder without an owner (its crawl killed
between creating it and writing the file) once it is :data:`UNOWNED_AGE_S` old.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from freshlm.disk_usage import tree_bytes

log = logging.getLogger("freshlm.crawl")

PREFIX = "freshlm-crawl-"
OWNER_FILE = ".owner"
UNOWNED_AGE_S = 3600.0


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat``, field 22);
    None where there is no such process or no ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces
    return fields[19] if len(fields) > 19 else None


def _running(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return started is None or process_start(pid) in (None, started)


@contextlib.contextmanager
def staging_dir(source: str) -> Iterator[Path]:
    """A new staging folder for a crawl of ``source``, owned by this process; removed on exit."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{source}-"))
    try:
        pid = os.getpid()
        (path / OWNER_FILE).write_text(f"{pid} {process_start(pid) or ''}".strip() + "\n")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class Swept:
    """A staging folder the sweep removed, its size and why it was stale."""

    path: Path
    size: int
    why: str


def _stale_reason(path: Path, now: float) -> str | None:
    try:
        owner = (path / OWNER_FILE).read_text().split()
    except FileNotFoundError:
        owner = []
    except OSError:
        return None
    if owner:
        try:
            pid = int(owner[0])
        except ValueError:
            owner = []
        else:
            started = owner[1] if len(owner) > 1 else None
            if pid == os.getpid() or _running(pid, started):
                return None
            return f"its crawl, pid {pid}, is gone"
    try:
        age = now - path.stat().st_mtime
    except OSError:
        return None
    if age < UNOWNED_AGE_S:
        return None
    return f"no owner recorded, untouched for {age / 3600:.1f} h"


def sweep_stale(root: Path | None = None, *, now: float | None = None) -> list[Swept]:
    """Remove the staging folders under ``root`` (the temp dir) whose crawl is gone; what was
    removed. Never raises for a folder it cannot read or remove: it logs and leaves it."""
    root = Path(root if root is not None else tempfile.gettempdir())
    now = time.time() if now is None else now
    swept = []
    for path in sorted(root.glob(f"{PREFIX}*")):
        if path.is_symlink() or not path.is_dir():
            continue
        why = _stale_reason(path, now)
        if why is None:
            continue
        size = tree_bytes(path)
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            log.warning("could not remove the stale crawl staging folder %s (%s)", path, why)
            continue
        log.info(
            "removed the staging folder %s of a killed crawl (%s): %.1f MB", path, why, size / 1e6
        )
        swept.append(Swept(path, size, why))
    return swept
