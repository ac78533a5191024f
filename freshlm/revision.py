"""The revision of FreshLM's code that produced an artifact (DESIGN invariant 4: lineage)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: Images built without a git checkout set this at build time.
CODE_REVISION_ENV = "FRESHLM_CODE_REVISION"
UNKNOWN = "unknown"


def code_revision() -> str:
    """``$FRESHLM_CODE_REVISION`` when set, else ``git rev-parse HEAD`` of this checkout
    (``+dirty`` when tracked files are modified), else ``"unknown"``."""
    env = os.environ.get(CODE_REVISION_ENV, "").strip()
    if env:
        return env
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0 or not head.stdout.strip():
            return UNKNOWN
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
