"""Two publishers of one prefix, replacing a published artifact, and manifests from a bad store.

Run on the local folder and on a real S3 server (SeaweedFS), like the rest of the store suite.
"""

from __future__ import annotations

import json
import threading

import pytest

from freshlm.store import Store, StoreError
from freshlm.store.publish import manifest_key


def test_two_concurrent_publishers_never_mix_their_files(store: Store) -> None:
    """Both write their files, then race for the manifest: the loser is told, and the winner's
    manifest names exactly the winner's bytes."""
    both_written = threading.Barrier(2, timeout=30)
    outcome: dict[str, object] = {}

    def publish(who: str) -> None:
        try:
            with store.publisher("raw/s/w", kind="raw-shard", attempt_names=True) as pub:
                pub.write_bytes("records.jsonl", f"records of {who}\n".encode() * 100)
                both_written.wait()
            outcome[who] = pub.manifest
        except StoreError as exc:
            outcome[who] = exc

    threads = [threading.Thread(target=publish, args=(who,)) for who in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [v for v in outcome.values() if isinstance(v, StoreError)]
    assert len(errors) == 1, outcome
    assert "another publisher published this artifact at the same time" in str(errors[0])
    manifest = store.read_manifest("raw/s/w", verify=True)  # raises if bytes were mixed
    winner = next(k for k, v in outcome.items() if not isinstance(v, StoreError))
    data = store.read_bytes(manifest.key("records.jsonl"))
    assert data == f"records of {winner}\n".encode() * 100


def test_the_same_files_published_twice_at_once_is_one_artifact(store: Store) -> None:
    both_written = threading.Barrier(2, timeout=30)
    results: list[object] = []

    def publish() -> None:
        with store.publisher("datasets/d1", kind="dataset") as pub:
            pub.write_bytes("part.jsonl", b"same bytes\n")
            both_written.wait()
        results.append(pub.manifest)

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2
    assert store.read_manifest("datasets/d1", verify=True).content_sha256 == (
        results[0].content_sha256
    )


def test_replace_never_leaves_the_artifact_missing(store: Store) -> None:
    with store.publisher("raw/s/w", kind="raw-shard") as pub:
        pub.write_bytes("records.jsonl", b"old\n")
    seen: list[bytes] = []
    with store.publisher("raw/s/w", kind="raw-shard", replace=True) as pub:
        pub.write_bytes("records.jsonl", b"new\n")
        # While the replacement is being written, readers still get the old artifact whole.
        old = store.read_manifest("raw/s/w", verify=True)
        seen.append(store.read_bytes(old.key("records.jsonl")))
    new = store.read_manifest("raw/s/w", verify=True)
    assert seen == [b"old\n"]
    assert store.read_bytes(new.key("records.jsonl")) == b"new\n"
    # The old bytes are gone only now, and nothing else is left behind.
    assert sorted(store.list("raw/s/w/")) == sorted(
        [manifest_key("raw/s/w"), new.key("records.jsonl")]
    )


def test_a_replace_that_lost_a_race_replaces_nothing(store: Store) -> None:
    with store.publisher("raw/s/w", kind="raw-shard") as pub:
        pub.write_bytes("records.jsonl", b"old\n")
    lost = "changed by another publisher while being replaced"
    with (
        pytest.raises(StoreError, match=lost),
        store.publisher("raw/s/w", kind="raw-shard", replace=True) as pub,
    ):
        pub.write_bytes("records.jsonl", b"mine\n")
        with store.publisher("raw/s/w", kind="raw-shard", replace=True) as other:
            other.write_bytes("records.jsonl", b"theirs\n")
    manifest = store.read_manifest("raw/s/w", verify=True)
    assert store.read_bytes(manifest.key("records.jsonl")) == b"theirs\n"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../../../etc/cron.d/x", "'..' segments"),
        ("/abs/path", "must not start or end with '/'"),
        ("_MANIFEST.json", "reserved for the manifest"),
    ],
)
def test_a_manifest_with_a_bad_file_name_is_refused_when_read(store: Store, name, problem):
    with store.publisher("models/m1", kind="model") as pub:
        pub.write_bytes("weights.bin", b"w")
    doc = json.loads(store.read_bytes(manifest_key("models/m1")))
    doc["files"][0]["name"] = name
    from freshlm.store.publish import FileEntry, content_sha256

    doc["content_sha256"] = content_sha256(
        [FileEntry(f["name"], f["size"], f["sha256"]) for f in doc["files"]]
    )
    store.write_bytes(manifest_key("models/m1"), json.dumps(doc).encode())
    with pytest.raises(StoreError) as err:
        store.read_manifest("models/m1")
    assert f"manifest file name {name!r} is not valid" in str(err.value)
    assert problem in str(err.value)


def test_a_data_file_swapped_after_publish_fails_its_reader(store: Store) -> None:
    """What curation reads raw shards with: the records stream, then the swap is caught."""
    with store.publisher("raw/s/w", kind="raw-shard") as pub:
        pub.write_jsonl("records.jsonl.gz", [{"id": i} for i in range(3)])
    manifest = store.read_manifest("raw/s/w")
    assert [r["id"] for r in store.read_artifact_jsonl(manifest, "records.jsonl.gz")] == [0, 1, 2]
    store.write_jsonl(manifest.key("records.jsonl.gz"), [{"id": 9}])
    with pytest.raises(StoreError, match="does not match the manifest"):
        list(store.read_artifact_jsonl(manifest, "records.jsonl.gz"))


def test_a_replacement_kept_together_takes_no_file_from_the_old_artifact(store: Store) -> None:
    """A site whose pages link to each other by relative paths: an unchanged page of the old
    report must not stay behind in the old folder while the changed ones move."""
    with store.publisher("gate-reports/c/r", kind="gate-report") as pub:
        pub.write_bytes("site/index.html", b"run 1")
        pub.write_bytes("site/style.css", b"same")
    with store.publisher(
        "gate-reports/c/r", kind="gate-report", replace=True, keep_together=True
    ) as pub:
        pub.write_bytes("site/index.html", b"run 2")
        pub.write_bytes("site/style.css", b"same")
        index = pub.stored_key("site/index.html")
    new = store.read_manifest("gate-reports/c/r", verify=True)
    assert index == new.key("site/index.html")
    folder = index.removesuffix("index.html")
    assert new.key("site/style.css") == folder + "style.css"
    assert store.read_bytes(index) == b"run 2"
    assert sorted(store.list("gate-reports/c/r/")) == sorted(
        [manifest_key("gate-reports/c/r"), index, folder + "style.css"]
    )
