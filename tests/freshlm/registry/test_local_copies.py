"""Local copies of model versions: downloaded once and verified, reused, an interrupted one
replaced, and the least recently used deleted beyond the number kept, never one in use."""

from __future__ import annotations

import logging
import os
import time

import pytest

from freshlm.registry.local_copies import MARKER, RECENT_S, local_copy, prune_copies

DAY = 86400.0


def _used(folder, seconds_ago):
    """Mark ``folder``'s copy as last used ``seconds_ago``."""
    when = time.time() - seconds_ago
    os.utime(folder / MARKER, (when, when))


def test_a_copy_is_downloaded_once_then_reused(store, make_version, tmp_path):
    version = make_version("a")
    cache = tmp_path / "cache"
    folder = local_copy(store, version.version_id, cache, keep=None)
    assert folder == cache / version.version_id
    assert (folder / "model.safetensors").read_bytes() == b"weights a" * 100
    _used(folder, DAY)
    # The store's files are gone: a second use can only be served by the local copy, and it
    # counts as used now.
    for entry in version.manifest.files:
        store.delete(version.manifest.key(entry.name))
    assert local_copy(store, version.version_id, cache, keep=None) == folder
    assert (folder / "model.safetensors").read_bytes() == b"weights a" * 100
    assert time.time() - (folder / MARKER).stat().st_mtime < 60


def test_an_interrupted_copy_is_replaced_by_a_verified_one(store, make_version, tmp_path):
    version = make_version("a")
    folder = tmp_path / "cache" / version.version_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{")  # a download that stopped here
    (folder / ".model.safetensors.partial").write_bytes(b"weig")
    local_copy(store, version.version_id, tmp_path / "cache", keep=None)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MARKER, *(entry.name for entry in version.manifest.files)]
    )
    assert (folder / "config.json").read_text().startswith('{"')
    assert (folder / MARKER).read_text().strip() == version.manifest.content_sha256


def test_copies_beyond_keep_go_least_recently_used_first(store, make_version, tmp_path, caplog):
    cache = tmp_path / "cache"
    a, b, c, d = (make_version(seed).version_id for seed in "abcd")
    for version_id, days in ((a, 3), (b, 2), (c, 1)):
        _used(local_copy(store, version_id, cache, keep=None), days * DAY)
    size_b = sum(p.stat().st_size for p in (cache / b).iterdir())
    local_copy(store, a, cache, keep=None)  # production, used again tonight
    with caplog.at_level(logging.INFO, logger="freshlm.registry.local_copies"):
        local_copy(store, d, cache, keep=2)  # tonight's candidate
    assert sorted(p.name for p in cache.iterdir()) == sorted([a, d])
    assert "deleted 2 not among the 2 most recently used" in caplog.text
    assert b in caplog.text and c in caplog.text
    # Deleted copies are downloaded again when they are needed.
    assert (local_copy(store, b, cache, keep=None) / "model.safetensors").is_file()
    assert sum(p.stat().st_size for p in (cache / b).iterdir()) == size_b


def test_a_copy_used_within_the_hour_is_never_deleted(store, make_version, tmp_path):
    """Another process on the machine (a second evaluation, a server reloading) may be loading
    it: only copies idle for an hour go, whatever ``keep`` says."""
    cache = tmp_path / "cache"
    a, b, c = (make_version(seed).version_id for seed in "abc")
    local_copy(store, a, cache, keep=None)
    _used(local_copy(store, b, cache, keep=None), RECENT_S + 60)
    local_copy(store, c, cache, keep=1)
    assert sorted(p.name for p in cache.iterdir()) == sorted([a, c])


def test_pruning_counts_an_unfinished_download_by_its_folder_time(tmp_path):
    cache = tmp_path / "cache"
    stale = cache / ("1" * 32)
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    then = time.time() - DAY
    os.utime(stale, (then, then))
    fresh = cache / ("2" * 32)
    fresh.mkdir()
    pruned = prune_copies(cache, 0)
    assert [(p.version_id, p.bytes) for p in pruned] == [("1" * 32, 2)]
    assert [p.name for p in cache.iterdir()] == [fresh.name]


def test_pruning_a_missing_cache_or_a_negative_keep(tmp_path):
    assert prune_copies(tmp_path / "none", 3) == []
    with pytest.raises(ValueError, match="keep = -1: must be an integer >= 0"):
        prune_copies(tmp_path, -1)


def test_two_processes_fetching_one_version_at_once_both_get_the_whole_copy(
    store, make_version, tmp_path
):
    """Each downloads into its own staging folder; whichever renames second keeps the first's
    copy. Nothing half-written or staged is left."""
    import threading

    version = make_version("a")
    cache = tmp_path / "cache"
    folders, errors = [], []

    def fetch():
        try:
            folders.append(local_copy(store, version.version_id, cache, keep=None))
        except Exception as exc:  # a thread's failure is reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert folders == [cache / version.version_id] * 4
    assert [p.name for p in cache.iterdir()] == [version.version_id]
    assert (cache / version.version_id / "model.safetensors").read_bytes() == b"weights a" * 100


def test_a_staging_folder_a_killed_download_left_goes_after_an_hour(tmp_path):
    cache = tmp_path / "cache"
    left = cache / f".downloading.{'1' * 32}.x1"
    under_way = cache / f".downloading.{'2' * 32}.x2"
    for folder in (left, under_way):
        folder.mkdir(parents=True)
        (folder / ".model.safetensors.partial").write_bytes(b"w" * 10)
    then = time.time() - RECENT_S - 60
    os.utime(left, (then, then))
    pruned = prune_copies(cache, keep=5)
    assert [(p.version_id, p.bytes) for p in pruned] == [(left.name, 10)]
    assert [p.name for p in cache.iterdir()] == [under_way.name]
