"""Helpers for crawler tests: the real recorded fixtures and running a spider in a subprocess.

Spiders run as ``scrapy crawl`` in a child process (cwd = repo root) because Twisted's reactor
cannot be restarted inside the pytest process.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / "tests" / "fixtures" / "real"


@dataclasses.dataclass
class CrawlResult:
    returncode: int
    records: list[dict[str, Any]]
    quarantined: list[dict[str, Any]]
    next_cursor: dict[str, Any]
    log: str
    stats: dict[str, int]

    def stat(self, name: str) -> int:
        return self.stats.get(name, 0)


def _freshlm_stats(log: str) -> dict[str, int]:
    """The ``freshlm/...`` and ``downloader/...`` counters from Scrapy's closing stats dump."""
    stats = {}
    for line in log.splitlines():
        line = line.strip().lstrip("{").rstrip(",}")
        if line.startswith("'") and "':" in line:
            key, _, value = line.partition("':")
            value = value.strip().rstrip(",")
            if value.isdigit():
                stats[key.strip("'")] = int(value)
    return stats


def run_crawl(
    tmp_path: Path, spider: str, args: dict[str, str], settings: dict[str, str] | None = None
) -> CrawlResult:
    """``scrapy crawl spider`` with delays off; returns records, quarantine, cursor, stats."""
    out, quarantine = tmp_path / f"{spider}-out.jsonl", tmp_path / f"{spider}-q.jsonl"
    cursor_out, log = tmp_path / f"{spider}-cursor.json", tmp_path / f"{spider}.log"
    for path in (out, quarantine, cursor_out, log):
        path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "scrapy", "crawl", spider, "-O", str(out)]
    for key, value in {**args, "cursor_out": str(cursor_out)}.items():
        command += ["-a", f"{key}={value}"]
    merged = {
        "FRESHLM_QUARANTINE_PATH": str(quarantine),
        "DOWNLOAD_DELAY": "0",
        "AUTOTHROTTLE_ENABLED": "False",
        "LOG_FILE": str(log),
        "LOG_LEVEL": "INFO",
        # The tests' servers listen on loopback ports chosen at run time.
        "FRESHLM_CRAWL_ALLOW_PRIVATE": "127.0.0.1",
        **(settings or {}),
    }
    for key, value in merged.items():
        command += ["-s", f"{key}={value}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    log_text = log.read_text() if log.exists() else ""
    # A spider or parser bug shows as "Spider error" or a traceback through crawlers/; Scrapy's
    # own tracebacks (e.g. robots.txt of an unreachable host) are expected.
    assert "Spider error processing" not in log_text, log_text[-4000:]
    assert f'File "{REPO / "crawlers"}' not in log_text, log_text[-4000:]

    def lines(path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    return CrawlResult(
        returncode=done.returncode,
        records=lines(out),
        quarantined=lines(quarantine),
        next_cursor=json.loads(cursor_out.read_text()) if cursor_out.exists() else {},
        log=log_text + done.stderr,
        stats=_freshlm_stats(log_text),
    )


@pytest.fixture
def crawl(tmp_path: Path):
    """``crawl(spider, args, settings)`` runs one crawl in a subprocess; see :func:`run_crawl`."""

    def _crawl(spider: str, args: dict[str, str], settings: dict[str, str] | None = None):
        return run_crawl(tmp_path, spider, args, settings)

    return _crawl
