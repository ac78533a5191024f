"""The store contract, run identically against the local folder and a real S3 (SeaweedFS)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from freshlm.store import (
    MANIFEST_NAME,
    KeyNotFound,
    PreconditionFailed,
    Store,
    StoreError,
    jsonl,
)

MB = 1024 * 1024


def records(count: int, seed: int = 0) -> Iterator[dict]:
    """Distinct records of ~250 bytes of random hex text (gzip halves them, no better)."""
    rng = random.Random(seed)
    for i in range(count):
        yield {"id": i, "text": f"{rng.getrandbits(768):0192x}", "lang": "en", "é": "ü"}


# --- objects -------------------------------------------------------------------------------------


def test_bytes_round_trip_and_overwrite(store: Store) -> None:
    store.write_bytes("cursors/rss.json", b"first")
    assert store.read_bytes("cursors/rss.json") == b"first"
    store.write_bytes("cursors/rss.json", b"second, longer")
    assert store.read_bytes("cursors/rss.json") == b"second, longer"
    info = store.stat("cursors/rss.json")
    assert info is not None and info.size == len(b"second, longer") and info.etag
    assert store.exists("cursors/rss.json")
    assert store.uri_for("cursors/rss.json") == f"{store.root_uri}/cursors/rss.json"


def test_missing_object_is_key_not_found_naming_the_uri(store: Store) -> None:
    with pytest.raises(KeyNotFound) as excinfo:
        store.read_bytes("nothing/here.bin")
    assert excinfo.value.uri == store.uri_for("nothing/here.bin")
    assert str(excinfo.value).startswith(store.uri_for("nothing/here.bin") + ": ")
    with pytest.raises(KeyNotFound):
        store.open_read("nothing/here.bin")
    assert not store.exists("nothing/here.bin")
    assert store.stat("nothing/here.bin") is None


def test_a_folder_is_not_an_object(store: Store) -> None:
    store.write_bytes("models/v1/weights.bin", b"w")
    assert not store.exists("models/v1")
    with pytest.raises(KeyNotFound):
        store.read_bytes("models/v1")


def test_json_documents(store: Store) -> None:
    store.write_json("cursors/mastodon.json", {"since_id": "109", "é": [1, 2]})
    assert store.read_json("cursors/mastodon.json") == {"since_id": "109", "é": [1, 2]}
    store.write_bytes("cursors/broken.json", b"{not json")
    with pytest.raises(StoreError, match=r"broken\.json: not valid JSON"):
        store.read_json("cursors/broken.json")


def test_writer_publishes_only_on_clean_close(store: Store) -> None:
    store.write_bytes("shard.bin", b"old version")
    with store.open_write("shard.bin") as writer:
        writer.write(b"new ")
        # Mid-write, readers still see the old object, whole.
        assert store.read_bytes("shard.bin") == b"old version"
        writer.write(b"version")
    assert store.read_bytes("shard.bin") == b"new version"
    assert writer.size == len(b"new version")
    assert writer.sha256 == hashlib.sha256(b"new version").hexdigest()

    with pytest.raises(RuntimeError), store.open_write("shard.bin") as writer:
        writer.write(b"half of a bad vers")
        raise RuntimeError("crawler crashed")
    assert store.read_bytes("shard.bin") == b"new version"

    with pytest.raises(RuntimeError), store.open_write("fresh.bin") as writer:
        writer.write(b"never complete")
        raise RuntimeError("crawler crashed")
    assert not store.exists("fresh.bin")
    assert list(store.list()) == ["shard.bin"]


def test_abandoned_writer_is_discarded_not_committed(store: Store) -> None:
    writer = store.open_write("dropped.bin")
    writer.write(b"partial")
    del writer  # garbage-collected while open: must not commit the partial bytes
    assert not store.exists("dropped.bin")
    assert list(store.list()) == []


def test_large_object_streams_both_ways(store: Store) -> None:
    chunk = os.urandom(MB)
    digest = hashlib.sha256()
    with store.open_write("models/v1/model.safetensors") as writer:
        for _ in range(11):  # above the 5 MB multipart threshold on S3
            writer.write(chunk)
            digest.update(chunk)
    read_back = hashlib.sha256()
    size = 0
    with store.open_read("models/v1/model.safetensors") as stream:
        while block := stream.read(256 * 1024):
            read_back.update(block)
            size += len(block)
    assert size == 11 * MB
    assert read_back.hexdigest() == digest.hexdigest() == writer.sha256


@pytest.mark.parametrize("key", ["raw/part-0000.jsonl", "raw/part-0000.jsonl.gz"])
def test_jsonl_round_trip(store: Store, key: str) -> None:
    count = store.write_jsonl(key, records(12_000))  # ~3 MB of JSON
    assert count == 12_000
    assert list(store.read_jsonl(key)) == list(records(12_000))
    raw = store.read_bytes(key)
    if key.endswith(".gz"):
        assert gzip.decompress(raw).count(b"\n") == 12_000
        assert len(raw) < 3 * MB * 0.7
    else:
        assert raw.count(b"\n") == 12_000
        assert json.loads(raw.splitlines()[1]) == list(records(2))[1]


def test_jsonl_gz_is_deterministic(store: Store) -> None:
    # Same records -> same bytes: re-runs publish identical content (content-hashed ids).
    store.write_jsonl("a.jsonl.gz", records(500))
    store.write_jsonl("b.jsonl.gz", records(500))
    assert store.read_bytes("a.jsonl.gz") == store.read_bytes("b.jsonl.gz")


def test_jsonl_streams_without_holding_the_file(store: Store) -> None:
    n = 12_000  # ~25 MB of JSON, ~12 MB gzipped: multipart on S3
    big_records = ({"id": i, "text": os.urandom(1024).hex()} for i in range(n))
    store.exists("warm-up")  # the S3 client's one-off setup (service model) is not the file
    tracemalloc.start()
    try:
        store.write_jsonl("big.jsonl.gz", big_records)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        stream = store.read_jsonl("big.jsonl.gz")
        first = next(stream)
        _, first_peak = tracemalloc.get_traced_memory()
        rest = sum(1 for _ in stream)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first["id"] == 0 and rest == n - 1
    stored = store.stat("big.jsonl.gz").size
    print(write_peak, first_peak, read_peak, stored)
    assert stored > 10 * MB
    assert write_peak < stored / 2, f"writing held {write_peak} bytes of a {stored}-byte file"
    assert first_peak < stored / 4, f"the first record cost {first_peak} bytes"
    assert read_peak < stored / 2, f"reading held {read_peak} bytes"


def test_jsonl_bad_line_names_uri_and_line(store: Store) -> None:
    store.write_bytes("bad.jsonl", b'{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(StoreError) as excinfo:
        list(store.read_jsonl("bad.jsonl"))
    assert excinfo.value.uri == store.uri_for("bad.jsonl")
    assert "line 3 is not valid JSON" in str(excinfo.value)
    store.write_bytes("array.jsonl", b"[1, 2]\n")
    with pytest.raises(StoreError, match="line 1 is a JSON list, expected an object"):
        list(store.read_jsonl("array.jsonl"))
    store.write_bytes("trunc.jsonl.gz", gzip.compress(b'{"a": 1}\n' * 1000)[:-20])
    with pytest.raises(StoreError, match="not a valid gzip stream"):
        list(store.read_jsonl("trunc.jsonl.gz"))


def test_failing_record_source_writes_nothing(store: Store) -> None:
    def crashing() -> Iterator[dict]:
        yield {"id": 1}
        raise ConnectionError("feed went away")

    with pytest.raises(ConnectionError):
        store.write_jsonl("raw/part.jsonl.gz", crashing())
    assert not store.exists("raw/part.jsonl.gz")
    with pytest.raises(TypeError, match="record 1 is not JSON-serializable"):
        store.write_jsonl("raw/part.jsonl", [{"ok": 1}, {"bad": {1, 2}}])
    assert not store.exists("raw/part.jsonl")


# --- listing and deleting --------------------------------------------------------------------


def test_list_is_sorted_with_plain_string_prefixes(store: Store) -> None:
    keys = ["b/x", "a0", "a/bc", "a/b/d/e", "a-b", "a/b/c"]
    for key in keys:
        store.write_bytes(key, key.encode())
    assert list(store.list()) == sorted(keys) == ["a-b", "a/b/c", "a/b/d/e", "a/bc", "a0", "b/x"]
    assert list(store.list("a/b")) == ["a/b/c", "a/b/d/e", "a/bc"]
    assert list(store.list("a/b/")) == ["a/b/c", "a/b/d/e"]
    assert list(store.list("a/b/d/e")) == ["a/b/d/e"]
    assert list(store.list("zzz")) == []
    assert list(store.list("missing/folder/")) == []


def test_delete(store: Store) -> None:
    store.write_bytes("tmp/a", b"1")
    store.write_bytes("tmp/b", b"2")
    store.delete("tmp/a")
    store.delete("tmp/a")  # absent: not an error
    assert not store.exists("tmp/a")
    assert list(store.list("tmp/")) == ["tmp/b"]


@pytest.mark.parametrize(
    "key", ["", "/abs", "trailing/", "a//b", "a/../b", "./a", "back\\slash", "nul\0", ".freshlm-x"]
)
def test_invalid_keys_are_refused(store: Store, key: str) -> None:
    with pytest.raises(StoreError, match="invalid key"):
        store.write_bytes(key, b"x")
    with pytest.raises(StoreError, match="invalid key"):
        store.read_bytes(key)
    assert list(store.list()) == []


# --- conditional writes ------------------------------------------------------------------------


def test_if_none_match_creates_once(store: Store) -> None:
    etag = store.write_bytes("registry/lock", b"owner-a", if_none_match=True)
    assert etag
    with pytest.raises(PreconditionFailed) as excinfo:
        store.write_bytes("registry/lock", b"owner-b", if_none_match=True)
    assert excinfo.value.uri == store.uri_for("registry/lock")
    assert store.read_bytes("registry/lock") == b"owner-a"


def test_if_match_is_compare_and_swap(store: Store) -> None:
    store.write_json("registry/aliases/production.json", {"model": "v1"})
    _, etag_v1 = store.read_bytes_with_etag("registry/aliases/production.json")
    etag_v2 = store.write_json(
        "registry/aliases/production.json", {"model": "v2"}, if_match=etag_v1
    )
    assert etag_v2 != etag_v1
    with pytest.raises(PreconditionFailed):  # stale ETag: someone moved the alias meanwhile
        store.write_json("registry/aliases/production.json", {"model": "v0"}, if_match=etag_v1)
    assert store.read_json("registry/aliases/production.json") == {"model": "v2"}
    with pytest.raises(PreconditionFailed):  # if_match on a missing object
        store.write_bytes("registry/aliases/staging.json", b"{}", if_match=etag_v2)
    assert not store.exists("registry/aliases/staging.json")
    with pytest.raises(ValueError):
        store.write_bytes("x", b"", if_match=etag_v2, if_none_match=True)


def test_concurrent_compare_and_swap_loses_no_update(store: Store) -> None:
    key = "registry/counter.json"
    store.write_json(key, {"n": 0})
    threads, increments = 4, 5

    def bump() -> None:
        for _ in range(increments):
            while True:
                data, etag = store.read_bytes_with_etag(key)
                try:
                    store.write_json(key, {"n": json.loads(data)["n"] + 1}, if_match=etag)
                    break
                except PreconditionFailed:
                    continue  # lost the race: re-read and try again

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.read_json(key) == {"n": threads * increments}


# --- atomic publish ------------------------------------------------------------------------------


def publish_dataset(store: Store, prefix: str = "datasets/ds1", n: int = 300) -> None:
    with store.publisher(prefix, kind="dataset", created_by={"dag_id": "curate"}) as pub:
        pub.write_jsonl("part-0000.jsonl.gz", records(n))
        pub.write_bytes("stats/langs.json", b'{"en": 1.0}')
        pub.set_manifest_fields(counts={"documents": n}, window="2024-05-01")


def test_publish_writes_data_then_manifest(store: Store) -> None:
    with store.publisher("datasets/ds1", kind="dataset", created_by={"dag_id": "x"}) as pub:
        pub.write_jsonl("part-0000.jsonl.gz", records(300))
        pub.write_bytes("stats/langs.json", b'{"en": 1.0}')
        # Data is in place, but until the block ends nothing is published.
        assert store.exists("datasets/ds1/part-0000.jsonl.gz")
        assert store.read_manifest("datasets/ds1") is None
        assert list(store.list_published()) == []
        pub.set_manifest_fields(counts={"documents": 300})
    manifest = store.read_manifest("datasets/ds1", verify=True)
    assert manifest == pub.manifest
    assert manifest.kind == "dataset" and manifest.artifact_id == "ds1"
    assert manifest.created_by == {"dag_id": "x"}
    assert manifest.fields == {"counts": {"documents": 300}}
    gz = store.read_bytes("datasets/ds1/part-0000.jsonl.gz")
    assert manifest.file("part-0000.jsonl.gz").size == len(gz)
    assert manifest.file("part-0000.jsonl.gz").sha256 == hashlib.sha256(gz).hexdigest()
    assert [f.name for f in manifest.files] == ["part-0000.jsonl.gz", "stats/langs.json"]
    doc = json.loads(store.read_bytes(f"datasets/ds1/{MANIFEST_NAME}"))
    assert doc["schema_version"] == 1 and doc["file_count"] == 2
    assert doc["total_size"] == len(gz) + len(b'{"en": 1.0}')
    assert list(store.read_jsonl(manifest.key("part-0000.jsonl.gz"))) == list(records(300))
    assert list(store.list_published()) == ["datasets/ds1"]


def test_exception_inside_publisher_publishes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.publisher("datasets/ds2", kind="dataset") as pub:
        pub.write_jsonl("part-0000.jsonl.gz", records(100))
        raise RuntimeError("dedup step failed")
    assert store.read_manifest("datasets/ds2") is None
    assert list(store.list_published("datasets/")) == []
    assert pub.manifest is None
    # A retry completes the artifact despite the leftovers of the failed attempt.
    publish_dataset(store, "datasets/ds2")
    assert store.read_manifest("datasets/ds2", verify=True) is not None


def test_republishing_identical_content_is_idempotent(store: Store) -> None:
    publish_dataset(store)
    first = store.read_bytes(f"datasets/ds1/{MANIFEST_NAME}")
    with store.publisher("datasets/ds1", kind="dataset", created_by={"dag_id": "curate"}) as pub:
        with pub.open_write("part-0000.jsonl.gz") as writer:
            jsonl.write_records(writer, records(300), compress=True)
        pub.write_bytes("stats/langs.json", b'{"en": 1.0}')
        pub.set_manifest_fields(counts={"documents": 300}, window="2024-05-01")
    assert writer.state == "skipped"  # identical data already published: not uploaded again
    assert store.read_bytes(f"datasets/ds1/{MANIFEST_NAME}") == first
    assert pub.manifest.content_sha256 == json.loads(first)["content_sha256"]


def test_republishing_different_content_is_refused(store: Store) -> None:
    publish_dataset(store)
    with (
        pytest.raises(StoreError, match="immutable"),
        store.publisher("datasets/ds1", kind="dataset") as pub,
    ):
        pub.write_jsonl("part-0000.jsonl.gz", records(300, seed=1))
    with (
        pytest.raises(StoreError, match="immutable"),
        store.publisher("datasets/ds1", kind="dataset") as pub,
    ):
        pub.write_bytes("extra.bin", b"x")
    with (
        pytest.raises(StoreError, match="different file set"),
        store.publisher("datasets/ds1", kind="dataset") as pub,
    ):
        pub.write_bytes("stats/langs.json", b'{"en": 1.0}')
    # The published artifact is untouched and still verifies.
    assert store.read_manifest("datasets/ds1", verify=True).fields["counts"] == {"documents": 300}
    store.delete_artifact("datasets/ds1")
    assert store.read_manifest("datasets/ds1") is None
    assert list(store.list("datasets/ds1/")) == []
    publish_dataset(store, n=10)  # after an explicit delete, the id may be reused
    assert store.read_manifest("datasets/ds1", verify=True).fields["counts"] == {"documents": 10}


def test_verify_detects_a_changed_or_missing_file(store: Store) -> None:
    publish_dataset(store)
    store.write_bytes("datasets/ds1/stats/langs.json", b'{"en": 0.5}')
    assert store.read_manifest("datasets/ds1") is not None  # without verify: trusted as is
    with pytest.raises(StoreError, match="does not match the manifest") as excinfo:
        store.read_manifest("datasets/ds1", verify=True)
    assert excinfo.value.uri == store.uri_for("datasets/ds1/stats/langs.json")
    store.delete("datasets/ds1/stats/langs.json")
    with pytest.raises(StoreError, match="listed in the manifest but missing"):
        store.read_manifest("datasets/ds1", verify=True)


def test_list_published_ignores_unfinished_artifacts(store: Store) -> None:
    publish_dataset(store, "datasets/b", n=5)
    publish_dataset(store, "datasets/a", n=5)
    with pytest.raises(RuntimeError), store.publisher("datasets/c", kind="dataset") as pub:
        pub.write_bytes("part.bin", b"x")
        raise RuntimeError("crash")
    publish_dataset(store, "models/m", n=5)
    assert list(store.list_published("datasets/")) == ["datasets/a", "datasets/b"]
    assert list(store.list_published()) == ["datasets/a", "datasets/b", "models/m"]


def test_publisher_refuses_bad_names_and_metadata(store: Store) -> None:
    with store.publisher("datasets/d", kind="dataset") as pub:
        with pytest.raises(StoreError, match="reserved for the manifest"):
            pub.write_bytes(MANIFEST_NAME, b"{}")
        with pytest.raises(StoreError, match="invalid file name"):
            pub.write_bytes("../escape", b"x")
        pub.write_bytes("a.bin", b"x")
        with pytest.raises(StoreError, match="written twice"):
            pub.write_bytes("a.bin", b"y")
        with pytest.raises(TypeError, match="JSON-serializable"):
            pub.set_manifest_fields(when=object())
    assert [f.name for f in store.read_manifest("datasets/d", verify=True).files] == ["a.bin"]


def test_corrupt_manifest_is_an_error_not_a_publish(store: Store) -> None:
    store.write_bytes(f"datasets/x/{MANIFEST_NAME}", b'{"schema_version": 1}')
    with pytest.raises(StoreError, match="not a valid manifest"):
        store.read_manifest("datasets/x")
    store.write_bytes(f"datasets/x/{MANIFEST_NAME}", b'{"schema_version": 99}')
    with pytest.raises(StoreError, match="schema_version 99 is not supported"):
        store.read_manifest("datasets/x")


# --- S3 specifics --------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_upload_above_threshold_is_multipart(make_s3_store, s3_bucket: str) -> None:
    store = make_s3_store(s3_bucket)  # threshold 5 MB, the S3 minimum part size
    store.write_bytes("small.bin", os.urandom(4 * MB))
    with store.open_write("model.safetensors") as writer:
        for _ in range(11):
            writer.write(os.urandom(MB))
    # S3 ETags of multipart objects end in -<number of parts>: 11 MB in 5 MB parts is 3.
    assert store.stat("model.safetensors").etag.strip('"').endswith("-3")
    assert "-" not in store.stat("small.bin").etag
    assert store.stat("model.safetensors").size == 11 * MB
