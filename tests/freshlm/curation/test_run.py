"""The pipeline's accounting and curate() end to end on the scenario's shards."""

from __future__ import annotations

import gzip
import json

import pytest

from freshlm.curation.candidate import dataset_id_for
from freshlm.curation.config import CurationConfig
from freshlm.curation.dedup_index import DedupIndex, commit_candidate
from freshlm.curation.run import build_pipeline, curate
from freshlm.curation.steps import DocStep, Drop, Pipeline
from freshlm.documents import document_problems
from freshlm.store import StoreError, open_store
from sandbox.records import day_records
from tests.freshlm.curation.helpers import ARTICLE, make_doc

WINDOWS = {
    1: ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z"),
    2: ("2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z"),
}


class DropOdd(DocStep):
    name = "odd"

    def process(self, doc):
        return Drop("odd", "odd id") if int(doc["id"], 16) % 2 else None


def test_pipeline_counts_every_document_and_quarantines_drops():
    quarantined = []
    pipeline = Pipeline([DropOdd()], quarantine=quarantined.append)
    docs = [make_doc("x", doc_id=f"{i:032x}") for i in range(10)]
    kept = list(pipeline(docs))
    stats = pipeline.stats()
    assert stats["docs_in"] == 10 == len(kept) + len(quarantined)
    assert stats["kept"] == 5 and stats["dropped"] == 5
    assert stats["by_reason"] == {"odd:odd": 5}
    assert stats["steps"][0] == {
        "name": "odd",
        "in": 10,
        "out": 5,
        "dropped": {"odd": 5},
        "counters": {},
    }
    assert all(d["reason"] == "odd:odd" and d["detail"] == "odd id" for d in quarantined)


def test_step_without_sink_refuses_to_lose_a_document():
    with pytest.raises(RuntimeError, match="no quarantine sink"):
        list(DropOdd()([make_doc("x", doc_id="1" * 32)]))


def test_pipeline_rejects_duplicate_step_names():
    with pytest.raises(ValueError, match="unique"):
        Pipeline([DropOdd(), DropOdd()], quarantine=list().append)


def test_full_pipeline_output_conforms_to_the_document_contract(scenario):
    from freshlm.curation.candidate import finalize

    quarantined = []
    pipeline = build_pipeline(CurationConfig(), quarantined.append)
    records = day_records(scenario, scenario.days[1].date)
    kept = [finalize(d) for d in pipeline(records)]
    assert len(kept) + len(quarantined) == len(records)
    for doc in kept + [finalize(d) for d in quarantined]:
        assert document_problems(doc) == [], doc
        assert not any(k.startswith("_") for k in doc)


def _publish_shard(store, source, window, records):
    prefix = f"raw/{source}/{window[0][:10]}"
    with store.publisher(prefix, kind="raw-shard") as pub:
        pub.write_jsonl("records.jsonl.gz", records)
        pub.write_jsonl("quarantine.jsonl.gz", [])
    return store.uri_for(prefix)


def _shards(store, scenario, day):
    records = day_records(scenario, scenario.days[day - 1].date)
    by_source: dict[str, list] = {}
    for r in records:
        by_source.setdefault(r["source"], []).append(r)
    return [_publish_shard(store, s, WINDOWS[day], rs) for s, rs in sorted(by_source.items())]


def _read(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_curate_publish_rerun_gives_same_id_and_next_night_dedups(tmp_path, scenario):
    store = open_store(f"file://{tmp_path}/store")
    shards1 = _shards(store, scenario, 1)
    first = curate(shards1, store, window=WINDOWS[1])
    summary = first.summary
    assert summary["docs_in"] == summary["kept"] + summary["dropped"]
    assert summary["kept"] == summary["train"] + summary["heldout"] > 40
    assert summary["tokens"] > 1000 and summary["docs_per_s"] > 0
    manifest = store.read_manifest(f"candidates/{first.candidate_id}", verify=True)
    assert manifest is not None
    assert {f.name for f in manifest.files} >= {
        "train.jsonl.gz",
        "heldout.jsonl.gz",
        "quarantine.jsonl.gz",
        "stats.json",
    }
    kept = [
        *store.read_jsonl(manifest.key("train.jsonl.gz")),
        *store.read_jsonl(manifest.key("heldout.jsonl.gz")),
    ]
    assert dataset_id_for(kept) == first.candidate_id
    stats = store.read_json(manifest.key("stats.json"))
    assert stats["docs_in"] == summary["docs_in"]
    assert [s["name"] for s in stats["steps"]][:3] == ["intake", "normalize", "language"]

    # Rerun before publishing: same id, nothing rewritten.
    again = curate(list(reversed(shards1)), store, window=WINDOWS[1])
    assert again.candidate_id == first.candidate_id and again.already_published

    # The gate passed: the dataset is published and the index committed.
    commit_candidate(store, f"candidates/{first.candidate_id}", "dataset-night-1")
    assert len(DedupIndex.load(store)) == summary["kept"]

    # Published-then-rerun: the same window still yields the same dataset id.
    rerun = curate(shards1, store, window=WINDOWS[1], out_dir=tmp_path / "rerun")
    assert rerun.candidate_id == first.candidate_id
    assert rerun.summary["by_reason"] == summary["by_reason"]

    # Night 2 re-crawls one of night 1's articles: dropped as published before.
    day2 = day_records(scenario, scenario.days[1].date)
    repeat = dict(day_records(scenario, scenario.days[0].date)[0])
    repeat["id"] = "f" * 32
    shard = _publish_shard(store, "repeats", WINDOWS[2], [repeat, *day2[:3]])
    second = curate([shard], store, window=WINDOWS[2])
    assert second.summary["by_reason"].get("dedup:exact_published") == 1


def test_day2_bad_batch_loses_spam_and_pii(tmp_path, scenario):
    store = open_store(f"file://{tmp_path}/store")
    result = curate(_shards(store, scenario, 2), store, window=WINDOWS[2], out_dir=tmp_path / "c")
    folder = tmp_path / "c"
    kept = _read(folder / "train.jsonl.gz") + _read(folder / "heldout.jsonl.gz")
    quarantine = _read(folder / "quarantine.jsonl.gz")
    spam_keys = {f"spam-{i}" for i in range(1, 67)}
    spam_kept = [d for d in kept if d["meta"].get("key") in spam_keys]
    spam_dropped = [d for d in quarantine if d["meta"].get("key") in spam_keys]
    assert len(spam_kept) + len(spam_dropped) == 66
    assert len(spam_dropped) >= 45, "most of the flood must go as near-duplicates"
    assert all(d["reason"] in ("dedup:near", "dedup:exact") for d in spam_dropped)
    texts = " ".join(d["text"] for d in kept)
    assert "010-1234-5678" not in texts and "@hanmail.example" not in texts
    assert "<PHONE>" in texts and "<EMAIL>" in texts
    pii_total = result.summary["stats"]["steps"][5]["counters"]
    assert pii_total["pii:phone"] >= 5 and pii_total["pii:email"] >= 5
    assert all(document_problems(d) == [] for d in kept)
    # The post tagged "en" that is Korean comes out as Korean.
    assert any(d["language"] == "ko" and d["meta"].get("key") for d in kept)


def test_curate_refuses_unpublished_shard(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    with pytest.raises(StoreError, match="not published"):
        curate([store.uri_for("raw/nothing/here")], store, window=WINDOWS[1])


def test_malformed_record_is_quarantined_not_fatal(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    good = make_doc(ARTICLE, doc_id="a" * 32)
    shard = _publish_shard(store, "odd", WINDOWS[1], [good, {"id": "b" * 32, "text": 5}])
    result = curate([shard], store, window=WINDOWS[1], out_dir=tmp_path / "c")
    assert result.summary["by_reason"] == {"intake:malformed": 1}
    assert result.summary["kept"] == 1
