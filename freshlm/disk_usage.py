"""Bytes a local folder holds, for the logs and reports of whatever deletes one (a crawl's stale
staging folder, a finished training run's local folder, an old local model copy)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def tree_bytes(folder: str | os.PathLike[str]) -> int:
    """The sizes of the regular files under ``folder`` (symbolic links not followed); a file
    that disappears while it is counted (another process deleting the folder) counts 0."""
    total = 0
    for path in Path(folder).rglob("*"):
        with contextlib.suppress(OSError):
            stat = path.lstat()
            if path.is_file() and not path.is_symlink():
                total += stat.st_size
    return total
