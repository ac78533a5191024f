"""The gate report as ``freshlm_curate`` publishes it: a retried gate run replaces its own report
without ever deleting it first, so a failure during the republish leaves the old one readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from expectations.verdict import gate_candidate
from freshlm.artifacts import (
    CANDIDATE_KIND,
    CANDIDATES,
    GATE_JSON,
    GATE_REPORTS,
    HELDOUT_FILE,
    QUARANTINE_FILE,
    TRAIN_FILE,
    read_gate_report,
)
from freshlm.store import Store, StoreError, open_store
from tests.expectations import batches as b

WINDOW = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
RUN_ID = "scheduled__2026-11-03T00:00:00+00:00"


def _candidate(store: Store) -> str:
    docs = b.clean_batch(per_source=5)
    with store.publisher(f"{CANDIDATES}/cand-1", kind=CANDIDATE_KIND) as pub:
        pub.write_jsonl(TRAIN_FILE, [d for d in docs if d["split"] == "train"])
        pub.write_jsonl(HELDOUT_FILE, [d for d in docs if d["split"] == "heldout"])
        pub.write_jsonl(QUARANTINE_FILE, [])
    return store.uri_for(f"{CANDIDATES}/cand-1")


def _gate(store: Store, candidate: str) -> dict:
    return gate_candidate(
        store, candidate, window=WINDOW, allowed_sources=list(b.SOURCES), run_id=RUN_ID
    )


class _FailingGateJson:
    """Makes the store fail the upload of ``gate.json``, as a network or disk fault would."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        real = store.open_write

        def open_write(key: str):
            if key.endswith("/" + GATE_JSON):
                raise StoreError(store.uri_for(key), "injected upload failure")
            return real(key)

        monkeypatch.setattr(store, "open_write", open_write)


def test_a_retried_gate_report_fails_to_republish_and_the_old_one_stays_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store((tmp_path / "store").as_uri())
    candidate = _candidate(store)
    first = _gate(store, candidate)
    before = read_gate_report(store, first["report_uri"])
    assert before["passed"]

    with monkeypatch.context() as patch:
        _FailingGateJson(store, patch)
        with pytest.raises(StoreError, match="injected upload failure"):
            _gate(store, candidate)

    # The retry failed mid-way: the report the first attempt published is still there, whole.
    prefix = store.prefix_for(first["report_uri"])
    assert read_gate_report(store, first["report_uri"]) == before
    manifest = store.read_manifest(prefix, verify=True)
    assert store.exists(store.prefix_for(before["data_docs_index"]))
    assert "data_docs/index.html" in {f.name for f in manifest.files}


def test_a_retried_gate_report_replaces_the_old_one_in_one_swap(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    candidate = _candidate(store)
    first = _gate(store, candidate)
    old = store.read_manifest(store.prefix_for(first["report_uri"]))

    second = _gate(store, candidate)
    assert second["report_uri"] == first["report_uri"]
    prefix = store.prefix_for(second["report_uri"])
    new = store.read_manifest(prefix, verify=True)
    report = read_gate_report(store, second["report_uri"])
    # The Data Docs link of the new report (in gate.json and returned) leads to its own site,
    # whose pages sit together so their relative links hold.
    assert report["data_docs_index"] == second["data_docs_url"]
    index_key = store.prefix_for(second["data_docs_url"])
    assert index_key == new.key("data_docs/index.html") and store.exists(index_key)
    site = index_key.removesuffix("index.html")
    docs = [f for f in new.files if f.name.startswith("data_docs/")]
    assert docs and all(new.key(f.name).startswith(site) for f in docs)
    # Nothing of the old report is left behind.
    kept = {new.key(f.name) for f in new.files} | {f"{prefix}/_MANIFEST.json"}
    assert set(store.list(prefix + "/")) == kept
    assert old.content_sha256 != new.content_sha256


def test_a_candidate_file_changed_after_publish_is_refused_naming_it(tmp_path: Path) -> None:
    """The gate reads the bytes curation published or nothing: a train file altered in the
    store (same size, other bytes) fails the gate with the file's name, no report published."""
    store = open_store((tmp_path / "store").as_uri())
    candidate = _candidate(store)
    manifest = store.read_manifest(store.prefix_for(candidate))
    path = tmp_path / "store" / manifest.key(TRAIN_FILE)
    data = bytearray(path.read_bytes())
    data[10] = ord("x") if data[10] != ord("x") else ord("y")
    path.write_bytes(bytes(data))

    with pytest.raises(StoreError, match=TRAIN_FILE):
        _gate(store, candidate)
    assert list(store.list_published(GATE_REPORTS)) == []
