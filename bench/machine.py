"""The machine line every benchmark prints beside its figures: CPU model, cores, Python, load."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(*versions: str) -> str:
    """``"<cpu>, <n> cores, Python <v>, <versions...>; load average <l>"``: the load average
    says whether neighbours shared the cores while the figures were taken."""
    parts = [cpu_model(), f"{os.cpu_count()} cores", f"Python {platform.python_version()}"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return ", ".join([*parts, *versions]) + f"; load average {load:.1f}"
