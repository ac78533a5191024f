"""Staging folders of crawls: removed on exit, and swept when their crawl was killed first."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from crawlers import staging
from crawlers.staging import OWNER_FILE, UNOWNED_AGE_S, process_start, staging_dir, sweep_stale


@pytest.fixture
def tmpdir_root(tmp_path, monkeypatch):
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(root))
    return root


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def folder(root, name: str, owner: str | None, age_s: float = 0.0):
    path = root / name
    path.mkdir()
    (path / "records.jsonl.gz").write_bytes(b"x" * 2048)
    if owner is not None:
        (path / OWNER_FILE).write_text(owner + "\n")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_the_folder_names_its_crawl_and_is_removed_on_exit_even_after_an_error(tmpdir_root):
    with pytest.raises(RuntimeError), staging_dir("news") as path:
        assert path.parent == tmpdir_root and path.name.startswith("freshlm-crawl-news-")
        pid, started = (path / OWNER_FILE).read_text().split()
        assert int(pid) == os.getpid() and started == process_start(os.getpid())
        raise RuntimeError("the spider failed")
    assert list(tmpdir_root.iterdir()) == []


def test_a_killed_crawls_folder_is_removed_and_a_running_crawls_is_kept(tmpdir_root):
    gone = folder(tmpdir_root, "freshlm-crawl-news-a1", f"{dead_pid()} 1")
    alive = folder(tmpdir_root, "freshlm-crawl-news-b2", f"{os.getppid()}")
    unrelated = folder(tmpdir_root, "pytest-of-someone", f"{dead_pid()}")

    swept = sweep_stale()

    assert [s.path for s in swept] == [gone] and not gone.exists()
    assert swept[0].size >= 2048 and "is gone" in swept[0].why
    assert alive.exists() and unrelated.exists()


def test_a_reused_pid_is_not_taken_for_the_crawl(tmpdir_root):
    # The pid is alive (this test's parent) but started at another time: another process.
    reused = folder(tmpdir_root, "freshlm-crawl-news-c3", f"{os.getppid()} 1")
    assert [s.path for s in sweep_stale()] == [reused]


def test_a_folder_without_an_owner_is_removed_only_once_it_is_old(tmpdir_root):
    fresh = folder(tmpdir_root, "freshlm-crawl-news-d4", None, age_s=60)
    old = folder(tmpdir_root, "freshlm-crawl-news-e5", None, age_s=UNOWNED_AGE_S + 60)
    swept = sweep_stale()
    assert [s.path for s in swept] == [old] and "no owner recorded" in swept[0].why
    assert fresh.exists()


def test_a_folder_that_cannot_be_removed_is_logged_and_left(tmpdir_root, monkeypatch, caplog):
    stuck = folder(tmpdir_root, "freshlm-crawl-news-f6", f"{dead_pid()}")
    monkeypatch.setattr(staging.shutil, "rmtree", lambda *a, **k: None)
    assert sweep_stale() == []
    assert stuck.exists() and "could not remove the stale crawl staging folder" in caplog.text
