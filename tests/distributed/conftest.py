"""The distributed test's base model, bootstrapped once per session.

The Airflow tests of ``tests/dags/`` bootstrap the same small base model into the session's
store; it is built there once (or found there, built by them) and copied into each distributed
test's own store, with its corpus and, when an earlier test evaluated it, its score memo (what
it was already measured on, which an evaluation reuses instead of measuring again, as it does
for production every night).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from freshlm.artifacts import SCORE_MEMOS, dataset_prefix
from freshlm.registry import get_version
from freshlm.store import MANIFEST_NAME, Store, open_store
from sandbox.base_model import bootstrap_demo_base
from tests.dags.base_model import SMALL_BASE


@pytest.fixture(scope="session")
def small_base(freshlm_home: Path) -> tuple[Store, dict]:
    """The session store and the bootstrap's summary of the small base model in it."""
    store = open_store((freshlm_home / "store").as_uri())
    return store, bootstrap_demo_base(store, config=SMALL_BASE)


def copy_objects(source: Store, target: Store, prefix: str) -> None:
    """Copy every object under ``prefix/``; a published artifact's manifest goes last, as a
    publish writes it."""
    keys = list(source.list(prefix + "/"))
    manifests = [key for key in keys if key.endswith("/" + MANIFEST_NAME)]
    for key in [k for k in keys if k not in manifests] + manifests:
        target.write_bytes(key, source.read_bytes(key))


def install_small_base(store: Store, small_base: tuple[Store, dict]) -> str:
    """Make the session's small base model ``production`` in ``store``; returns its id."""
    source, summary = small_base
    version_id = summary["version_id"]
    copy_objects(source, store, dataset_prefix(summary["base_corpus_dataset"]))
    copy_objects(source, store, get_version(source, version_id).prefix)
    copy_objects(source, store, f"{SCORE_MEMOS}/{version_id}")
    installed = bootstrap_demo_base(store, config=SMALL_BASE)
    assert installed["reused"] and installed["version_id"] == version_id, installed
    return version_id
