"""Retention: expired raw shards and quarantine go, unless a live model's lineage needs them;
a dry run only reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from freshlm.registry import PRODUCTION, Lineage, move_alias, publish_version
from freshlm.retention.sweep import Policy, RetentionError, sweep
from freshlm.store import open_store

NOW = datetime(2026, 12, 20, tzinfo=UTC)
OLD = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}  # 47 days before NOW
RECENT = {"start": "2026-12-10T00:00:00Z", "end": "2026-12-11T00:00:00Z"}


def publish(store, prefix: str, kind: str, **fields) -> str:
    with store.publisher(prefix, kind=kind) as pub:
        pub.write_bytes("data.jsonl.gz", prefix.encode())
        pub.set_manifest_fields(**fields)
    return store.uri_for(prefix)


@pytest.fixture
def world(tmp_path: Path):
    """A store with old, recent and lineage-needed artifacts; production trained on d1."""
    store = open_store((tmp_path / "store").as_uri())
    needed_shard = publish(store, "raw/social/night1", "raw-shard", window=OLD)
    publish(store, "raw/social/old-unused", "raw-shard", window=OLD)
    publish(store, "raw/social/recent", "raw-shard", window=RECENT)
    needed_candidate = publish(
        store, "candidates/c1", "candidate-dataset", window=[OLD["start"], OLD["end"]]
    )
    publish(store, "quarantine/batches/c2", "quarantined-batch", window=OLD)
    publish(store, "candidates/c2", "candidate-dataset", window=[OLD["start"], OLD["end"]])
    publish(
        store,
        "datasets/d1",
        "dataset",
        window=OLD,
        shards=[{"uri": needed_shard}],
        candidate=needed_candidate,
    )
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (folder / "model.safetensors").write_bytes(b"w" * 32)
    (folder / "tokenizer.json").write_text("{}")
    version, _ = publish_version(
        store, folder, lineage=Lineage(kind="finetune", base_model="x", dataset_ids=("d1",))
    )
    move_alias(store, PRODUCTION, version.version_id, actor="test", reason="live")
    return store, version.version_id


def test_a_dry_run_reports_what_would_go_and_deletes_nothing(world):
    store, _ = world
    report = sweep(store, now=NOW, policy=Policy(30, 30), dry_run=True)
    assert sorted(report["would_delete"]) == [
        "candidates/c2",
        "quarantine/batches/c2",
        "raw/social/old-unused",
    ]
    assert sorted(report["kept_for_lineage"]) == ["candidates/c1", "raw/social/night1"]
    assert store.read_manifest("quarantine/batches/c2") is not None
    assert list(store.list("retention/")) == []


def test_expired_quarantine_is_deleted_and_what_lineage_needs_is_kept(world):
    store, live = world
    report = sweep(store, now=NOW, policy=Policy(30, 30), dry_run=False, run_id="daily-1")
    assert store.read_manifest("quarantine/batches/c2") is None
    assert store.read_manifest("candidates/c2") is None
    assert list(store.list("candidates/c2/")) == []
    assert store.read_manifest("raw/social/old-unused") is None
    # Needed by production's lineage, or not expired yet: kept, and the report says why.
    decisions = {r["prefix"]: r["decision"] for r in report["artifacts"]}
    assert decisions["candidates/c1"] == f"kept: lineage of {live}"
    assert decisions["raw/social/night1"] == f"kept: lineage of {live}"
    assert decisions["raw/social/recent"] == "kept: not expired"
    assert store.read_manifest("raw/social/night1") is not None
    assert store.read_json("retention/reports/daily-1.json")["deleted"] == report["deleted"]


def test_a_longer_setting_keeps_more(world):
    store, _ = world
    report = sweep(store, now=NOW, policy=Policy(raw_days=60, quarantine_days=30))
    assert sorted(report["would_delete"]) == ["candidates/c2", "quarantine/batches/c2"]


def test_a_naive_time_is_refused(world):
    store, _ = world
    with pytest.raises(RetentionError, match="timezone"):
        sweep(store, now=datetime(2026, 12, 20))


def test_checkpoints_of_a_published_version_go_and_an_unfinished_runs_stay(world):
    store, live = world
    spent = "runs/" + "a" * 32 + "/checkpoints/step-40"
    unfinished = "runs/" + "b" * 32 + "/checkpoints/step-8"
    publish(store, spent, "checkpoint", run_key="a" * 32, version_id=live, step=40)
    publish(store, unfinished, "checkpoint", run_key="b" * 32, version_id="f" * 32, step=8)

    dry = sweep(store, now=NOW, policy=Policy(30, 30), dry_run=True)
    assert spent in dry["would_delete"] and unfinished not in dry["would_delete"]
    assert store.read_manifest(spent) is not None

    report = sweep(store, now=NOW, policy=Policy(30, 30), dry_run=False, run_id="daily-2")
    assert store.read_manifest(spent) is None and list(store.list(spent + "/")) == []
    assert store.read_manifest(unfinished) is not None  # its run may still resume
    rows = {r["prefix"]: r for r in report["artifacts"]}
    assert rows[spent]["decision"] == "deleted" and rows[spent]["kind"] == "checkpoint"
    assert rows[unfinished]["decision"] == "kept: run not finished"
    assert report["bytes_freed"] >= rows[spent]["bytes"] > 0
