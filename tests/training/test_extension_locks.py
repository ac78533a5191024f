"""A build lock left by a rank killed mid-build is removed before the next run; a build in
progress keeps its lock."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

from training.extension_locks import clear_stale_locks, extensions_root, stale_locks


def _lock(folder: Path, age_s: float) -> Path:
    folder.mkdir(parents=True)
    lock = folder / "lock"
    lock.touch()
    then = time.time() - age_s
    os.utime(lock, (then, then))
    return lock


def test_an_old_lock_with_no_build_running_is_removed_and_named(tmp_path, caplog):
    lock = _lock(tmp_path / "deepspeed_shm_comm", age_s=3600)
    fresh = _lock(tmp_path / "py311_cpu" / "other_op", age_s=5)
    with caplog.at_level(logging.WARNING, logger="freshlm.training.extension_locks"):
        removed = clear_stale_locks({"TORCH_EXTENSIONS_DIR": str(tmp_path)})
    assert removed == [lock]
    assert not lock.exists()
    assert fresh.exists(), "a lock taken seconds ago belongs to a build that is starting"
    assert str(lock) in caplog.text and "60 minutes old" in caplog.text


def test_a_lock_whose_folder_a_process_works_in_is_kept(tmp_path):
    lock = _lock(tmp_path / "py311_cpu" / "deepspeed_shm_comm", age_s=3600)
    # ninja and the compiler run with the build folder as their working directory.
    build = subprocess.Popen(["sleep", "30"], cwd=lock.parent)
    try:
        assert stale_locks(tmp_path) == []
        assert clear_stale_locks({"TORCH_EXTENSIONS_DIR": str(tmp_path)}) == []
        assert lock.exists()
    finally:
        build.kill()
        build.wait()
    assert [s.path for s in stale_locks(tmp_path)] == [lock]


def test_the_root_is_torch_extensions_dir_or_torchs_default(tmp_path):
    from torch.utils.cpp_extension import get_default_build_root

    assert extensions_root({"TORCH_EXTENSIONS_DIR": str(tmp_path)}) == tmp_path
    assert extensions_root({}) == Path(get_default_build_root())
    assert clear_stale_locks({"TORCH_EXTENSIONS_DIR": str(tmp_path / "none")}) == []
