"""The model server keeps a bounded number of local model copies: loading a newly promoted
version deletes the copies beyond ``FRESHLM_MODEL_COPIES_KEEP`` that no one used in the last
hour, and a version loaded again is downloaded again."""

from __future__ import annotations

import os
import time

from freshlm.registry import Lineage, publish_version
from freshlm.registry.local_copies import MARKER
from freshlm.serving.loading import load_version
from freshlm.settings import Settings
from freshlm.store import open_store
from tests.freshlm.evaluation.tiny_models import model_dirs


def test_loading_a_new_version_deletes_copies_beyond_the_kept_number(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    ids = [
        publish_version(store, folder, lineage=Lineage(kind="bootstrap", source="tests"))[0]
        for folder in model_dirs()
    ]
    old, new = (version.version_id for version in ids)
    keep = Settings.from_env({"FRESHLM_MODEL_COPIES_KEEP": "1"}).model_copies_keep
    cache = tmp_path / "serving" / "models"

    def load(version_id):
        return load_version(
            store,
            version_id,
            cache_dir=cache,
            backend="transformers",
            max_batch=1,
            keep_copies=keep,
        )

    load(old)
    yesterday = time.time() - 86400
    os.utime(cache / old / MARKER, (yesterday, yesterday))
    served = load(new)
    assert [p.name for p in cache.iterdir()] == [new]
    assert served.weight_bytes > 0
    # A rollback to the old version finds no copy and downloads it again.
    load(old)
    assert sorted(p.name for p in cache.iterdir()) == sorted([old, new])
