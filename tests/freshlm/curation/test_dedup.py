"""Exact and near-duplicate removal, within a batch and across publishes."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from freshlm.curation.config import DedupConfig
from freshlm.curation.dedup_index import DedupIndex, DedupIndexError, IndexSegment
from freshlm.curation.minhash import MinHasher, estimated_jaccard
from freshlm.curation.steps import DedupStep
from freshlm.store import open_store
from tests.freshlm.curation.helpers import ARTICLE, KOREAN_ARTICLE, make_doc, run_step

WINDOW_1 = ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")
WINDOW_2 = ("2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z")


def near_copy(text: str) -> str:
    # A reposted copy: different numbers and a changed word or two.
    return text.replace("$649", "$599").replace("two full days", "two whole days")


def test_minhash_estimates_jaccard_without_bias():
    rng = np.random.default_rng(0)
    hasher = MinHasher()
    errors = []
    for _ in range(100):
        base = rng.integers(0, 2**32, 800, dtype=np.uint64).astype(np.uint32)
        other = base.copy()
        changed = int(rng.integers(50, 700))
        other[:changed] = rng.integers(0, 2**32, changed, dtype=np.uint64).astype(np.uint32)
        a, b = np.unique(base), np.unique(other)
        true = len(np.intersect1d(a, b)) / len(np.union1d(a, b))
        errors.append(estimated_jaccard(hasher.signature(a), hasher.signature(b)) - true)
    assert abs(np.mean(errors)) < 0.02
    assert np.std(errors) < 0.07  # ~sqrt(J(1-J)/112)


def test_band_keys_are_stable_across_instances():
    a = MinHasher().band_keys(ARTICLE)
    b = MinHasher(DedupConfig()).band_keys(ARTICLE)
    assert a is not None and np.array_equal(a, b)
    assert MinHasher().band_keys("tiny") is None


def test_exact_and_near_duplicates_within_a_batch():
    docs = [
        make_doc(ARTICLE, doc_id="a" * 32),
        make_doc(ARTICLE, doc_id="b" * 32),
        make_doc(near_copy(ARTICLE), doc_id="c" * 32),
        make_doc(KOREAN_ARTICLE, doc_id="d" * 32, language="ko"),
    ]
    step = DedupStep()
    kept, dropped = run_step(step, docs)
    assert [d["id"][0] for d in kept] == ["a", "d"]
    assert [(d["id"][0], d["reason"]) for d in dropped] == [
        ("b", "dedup:exact"),
        ("c", "dedup:near"),
    ]
    assert "a" * 32 in dropped[0]["detail"] and "a" * 32 in dropped[1]["detail"]
    assert kept[0]["content_hash"] and len(kept[0]["content_hash"]) == 64


def test_near_duplicates_caught_across_two_publishes(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    # Night 1: curate and publish.
    index = DedupIndex.load(store, before=WINDOW_1[0])
    kept, _ = run_step(DedupStep(index=index), [make_doc(ARTICLE, doc_id="a" * 32)])
    # Curated but not yet published: the index must not know it.
    assert len(DedupIndex.load(store)) == 0
    index.with_batch(kept).commit(store, "dataset-1", window=WINDOW_1)

    # Night 2: a near copy and an exact copy of night 1's document, plus something new.
    index2 = DedupIndex.load(store, before=WINDOW_2[0])
    assert len(index2) == 1
    docs = [
        make_doc(near_copy(ARTICLE), doc_id="b" * 32),
        make_doc(ARTICLE, doc_id="c" * 32),
        make_doc(KOREAN_ARTICLE, doc_id="d" * 32, language="ko"),
    ]
    kept2, dropped2 = run_step(DedupStep(index=index2), docs)
    assert [d["reason"] for d in dropped2] == ["dedup:near_published", "dedup:exact_published"]
    assert [d["id"][0] for d in kept2] == ["d"]

    # Re-curating night 1 ignores night 1's own segment (and later ones): same result.
    again = DedupIndex.load(store, before=WINDOW_1[0])
    assert len(again) == 0


def test_commit_is_idempotent_and_merges_concurrent_publishers(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    hasher = MinHasher()
    segments = {
        f"ds-{i}": IndexSegment.from_docs(
            [{"id": f"{i:032x}", "content_hash": f"{i:064x}", "text": ARTICLE + f" Part {i}."}],
            hasher,
        )
        for i in range(6)
    }
    errors = []

    def publish(name):
        try:
            DedupIndex().with_batch(segments[name]).commit(store, name, window=WINDOW_1)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(n,)) for n in segments]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    head = store.read_json("dedup-index/HEAD.json")
    assert sorted(s["dataset_id"] for s in head["segments"]) == sorted(segments)
    # Committing the same dataset again changes nothing.
    before = store.read_bytes("dedup-index/HEAD.json")
    DedupIndex().with_batch(segments["ds-0"]).commit(store, "ds-0", window=WINDOW_1)
    assert store.read_bytes("dedup-index/HEAD.json") == before
    assert len(DedupIndex.load(store)) == 6


def test_segment_round_trip_and_param_mismatch(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    seg = IndexSegment.from_docs(
        [{"id": "a" * 32, "content_hash": "f" * 64, "text": ARTICLE}], MinHasher()
    )
    back = IndexSegment.from_bytes(seg.to_bytes(), "mem")
    assert np.array_equal(back.bands, seg.bands) and back.ids.tolist() == seg.ids.tolist()
    with pytest.raises(DedupIndexError, match="truncated"):
        IndexSegment.from_bytes(seg.to_bytes()[:-3], "mem")
    DedupIndex().with_batch(seg).commit(store, "ds", window=WINDOW_1)
    with pytest.raises(DedupIndexError, match="MinHash parameters"):
        DedupIndex.load(store, DedupConfig(bands=20, rows=5))
