"""Local copies of model versions, for the steps that load a model from disk (the evaluation,
the model server).

A copy lives in ``<cache_dir>/<version_id>/``: the version's files, each checked against its
manifest by :func:`~freshlm.registry.versions.download_version`, and a marker file holding the
manifest's content sha256. It is downloaded into a staging folder beside it and renamed into
place, so a process never finds half a copy, and two processes fetching the same version at
once never write into each other's files. A complete copy of the same content is reused;
anything else in the folder (another content) is replaced.

Every use touches the marker, so its modification time is when the copy was last used. A cache
that is never pruned grows by a whole model each night (517 MB for SmolLM2-135M, a year's worth
of nights fills a disk), so after each use :func:`prune_copies` deletes the least recently used
copies beyond ``keep``. A copy used within the last :data:`RECENT_S` seconds is never deleted:
another process on the same machine (a second evaluation, a server reloading) may be reading it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from freshlm.disk_usage import tree_bytes
from freshlm.registry.versions import download_version, get_version
from freshlm.store import Store

log = logging.getLogger(__name__)

MARKER = ".freshlm-download-complete"
RECENT_S = 3600.0
_STAGING = ".downloading."


@dataclasses.dataclass(frozen=True)
class Pruned:
    """A copy :func:`prune_copies` deleted: its version id (the folder's name) and its size."""

    version_id: str
    bytes: int


def local_copy(store: Store, version_id: str, cache_dir: Path, *, keep: int | None) -> Path:
    """The version's folder under ``cache_dir``, downloaded and verified unless a complete copy
    of the same content is there, then marked as used now; with ``keep`` set, copies beyond the
    ``keep`` most recently used (and not used within :data:`RECENT_S`) are deleted."""
    version = get_version(store, version_id)
    folder = cache_dir / version_id
    marker = folder / MARKER
    expected = version.manifest.content_sha256
    if _complete(folder, expected):
        log.info("model %s: using the local copy in %s", version_id, folder)
        os.utime(marker)
    else:
        started = time.perf_counter()
        _download(store, version_id, folder, expected)
        log.info(
            "model %s: downloaded %d bytes in %.1fs to %s",
            version_id,
            version.manifest.total_size,
            time.perf_counter() - started,
            folder,
        )
    if keep is not None:
        prune_copies(cache_dir, keep)
    return folder


def _complete(folder: Path, expected: str) -> bool:
    marker = folder / MARKER
    try:
        return marker.read_text().strip() == expected
    except (FileNotFoundError, NotADirectoryError):
        return False


def _download(store: Store, version_id: str, folder: Path, expected: str) -> None:
    """Download into a staging folder beside ``folder`` and rename it into place: a process
    that finds ``folder`` finds a whole copy, and two processes fetching the same version at
    once each download their own and the second keeps the first's."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING}{version_id}.", dir=folder.parent))
    try:
        download_version(store, version_id, staging)
        (staging / MARKER).write_text(expected + "\n")
        if folder.exists() and not _complete(folder, expected):
            shutil.rmtree(folder)  # an interrupted copy of an older layout, or other content
        try:
            os.rename(staging, folder)
        except OSError:
            if not _complete(folder, expected):  # not another process's whole copy: fail
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prune_copies(cache_dir: Path, keep: int, *, now: float | None = None) -> list[Pruned]:
    """Delete the copies in ``cache_dir`` beyond the ``keep`` most recently used, except those
    used within :data:`RECENT_S` of ``now``; a folder without a marker counts as used when it
    was last modified, and a staging folder (a download under way, or one a killed process
    left) goes once it is that old, whatever ``keep``. Return what was deleted."""
    if keep < 0:
        raise ValueError(f"keep = {keep}: must be an integer >= 0")
    now = time.time() if now is None else now
    folders = [p for p in cache_dir.iterdir() if p.is_dir()] if cache_dir.is_dir() else []
    copies = [p for p in folders if not p.name.startswith(_STAGING)]
    staged = [p for p in folders if p.name.startswith(_STAGING)]  # downloads under way
    by_use = sorted(copies, key=_last_used, reverse=True)
    pruned = []
    for folder in by_use[keep:] + staged:
        if now - _last_used(folder) < RECENT_S:
            continue
        size = tree_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
        pruned.append(Pruned(folder.name, size))
    if pruned:
        log.info(
            "local model copies in %s: deleted %d not among the %d most recently used (%s, %d"
            " bytes): %s",
            cache_dir,
            len(pruned),
            keep,
            _gb(sum(p.bytes for p in pruned)),
            sum(p.bytes for p in pruned),
            ", ".join(p.version_id for p in pruned),
        )
    return pruned


def _last_used(folder: Path) -> float:
    marker = folder / MARKER
    try:
        return marker.stat().st_mtime if marker.is_file() else folder.stat().st_mtime
    except FileNotFoundError:  # deleted meanwhile by another process's pruning
        return 0.0


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"
