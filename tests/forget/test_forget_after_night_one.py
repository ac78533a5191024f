"""Forget one sandbox post after night 1: gone from every raw shard, candidate and dataset,
the model trained on it marked, the request audited, and the next crawl skips it.

Night 1 here is the real crawler (its own process, against the sandbox world), real curation
and the registry; the gate's verdict and the trained weights are stand-ins (their own tests
cover them), so the test runs in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from freshlm import lineage_index
from freshlm.artifacts import published_datasets
from freshlm.curation.publish import GatedBatch, publish_dataset
from freshlm.curation.run import curate
from freshlm.deny_list import read_deny_list
from freshlm.forget.request import ForgetRequestError, parse_request
from freshlm.forget.run import forget, read_forget_audit
from freshlm.registry import PRODUCTION, Lineage, get_version, move_alias, publish_version
from freshlm.registry.forgotten import forgotten_marks
from freshlm.store import open_store
from tests.crawlers.test_run import DAY1, SOURCES, crawl

WINDOW = {"start": DAY1[0], "end": DAY1[1]}
PASSED_GATE = {"passed": True, "severity": "ok", "failures": [], "statistics": {}}


@pytest.fixture
def env(tmp_path: Path, world_at_start) -> dict[str, str]:
    import os

    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES)
    return dict(
        os.environ,
        FRESHLM_HOME=str(tmp_path / "home"),
        FRESHLM_WORLD_URL=world_at_start.url,
        FRESHLM_SOURCES_FILE=str(sources),
        DEAD_PORT="9",
        FRESHLM_CRAWL_ALLOW_PRIVATE=world_at_start.url.split("//")[1],
    )


def fake_model(folder: Path, seed: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "seed": seed}))
    (folder / "model.safetensors").write_bytes(seed.encode() * 64)
    (folder / "tokenizer.json").write_text("{}")
    return folder


def every_record(store) -> list[tuple[str, dict]]:
    """Every record of every raw shard, candidate and dataset file in the store."""
    found = []
    for root in ("raw/", "candidates/", "datasets/"):
        for prefix in store.list_published(root):
            manifest = store.read_manifest(prefix)
            for entry in manifest.files:
                if ".jsonl" in entry.name:
                    for record in store.read_artifact_jsonl(manifest, entry.name):
                        found.append((f"{prefix}/{entry.name}", record))
    return found


def test_a_forgotten_post_is_gone_everywhere_marked_audited_and_never_crawled_again(
    env, world_at_start, tmp_path
):
    store = open_store((tmp_path / "home" / "store").as_uri())
    # --- night 1: crawl, curate, publish, train (stand-in weights), promote ---------------
    requests.post(f"{world_at_start.url}/_world/clock", json={"now": "day:1"}).raise_for_status()
    code, shard, stderr = crawl(env, "social")
    assert code == 0, stderr
    candidate = curate([shard["shard_uri"]], store, window=DAY1)
    batch = GatedBatch(candidate.uri, "gate-report", WINDOW, [shard["shard_uri"]], "night1")
    dataset = publish_dataset(store, batch, PASSED_GATE)
    (published,) = published_datasets(store)
    post = next(d for d in published.documents(store) if d["kind"] == "sns")
    others = [d["id"] for d in published.documents(store) if d["id"] != post["id"]]
    base, _ = publish_version(
        store, fake_model(tmp_path / "base", "base"), lineage=Lineage(kind="bootstrap")
    )
    trained, _ = publish_version(
        store,
        fake_model(tmp_path / "night1", "night1"),
        lineage=Lineage(
            kind="finetune",
            parent_version=base.version_id,
            dataset_ids=(dataset["dataset_id"],),
            extra={"run_key": "night1-run"},
        ),
    )
    move_alias(store, PRODUCTION, trained.version_id, actor="test", reason="night 1")
    with store.publisher("trainsets/night1", kind="trainset") as pub:
        pub.write_bytes("tokens.bin", b"\x00" * 64)
        pub.set_manifest_fields(mix=[{"dataset_id": dataset["dataset_id"], "role": "new"}])
    assert any(r.get("url") == post["url"] for _, r in every_record(store))

    # --- the request, from the UI ------------------------------------------------------------
    request = parse_request(
        {"item": post["url"], "item_kind": "auto", "reason": "the author deleted the post"},
        actor="dag:freshlm_forget/user:alice/run:manual__1",
        run_id="manual__1",
        requested_at="2026-11-03T09:00:00Z",
    )
    result = forget(store, request)

    # No raw shard, candidate or dataset holds it; everything else is still there.
    leftovers = [where for where, r in every_record(store) if r.get("url") == post["url"]]
    assert leftovers == []
    touched = result["touched"]
    assert [t["prefix"] for t in touched["raw_shards"]] == [store.prefix_for(shard["shard_uri"])]
    assert touched["raw_shards"][0]["removed"] == {"records.jsonl.gz": 1}
    (rewritten,) = touched["datasets"]
    assert rewritten["old"] == dataset["dataset_id"] and rewritten["new"] != rewritten["old"]
    (new_dataset,) = published_datasets(store)  # the old version is deleted, the new in place
    assert new_dataset.dataset_id == rewritten["new"]
    assert new_dataset.fields["supersedes"] == dataset["dataset_id"]
    assert sorted(d["id"] for d in new_dataset.documents(store)) == sorted(others)
    raw = store.read_manifest(store.prefix_for(shard["shard_uri"]))
    assert raw.fields["records"] == shard["records"] - 1
    assert raw.fields["forgotten"] == [
        {"request_id": request.request_id, "removed": {"records.jsonl.gz": 1}}
    ]
    # The old training set (tokens of the post) is gone: a new one is built from new datasets.
    assert store.read_manifest("trainsets/night1") is None
    assert touched["trainsets_deleted"] == ["trainsets/night1"]

    # The model trained on it is marked in the registry and its card says so; its parent not.
    marked = get_version(store, trained.version_id)
    assert marked.trained_on_forgotten_data
    assert [m["request_id"] for m in forgotten_marks(store, trained.version_id)] == [
        request.request_id
    ]
    card = store.read_bytes(marked.manifest.key("README.md")).decode()
    assert "Trained on forgotten data" in card and "the author deleted the post" in card
    assert not get_version(store, base.version_id).trained_on_forgotten_data
    assert result["retrain"] == {
        "production": trained.version_id,
        "base_version": base.version_id,
        "datasets": [rewritten["new"]],
    }

    # The audit log has who asked, why, and what was touched.
    audit = read_forget_audit(store)
    assert [r["step"] for r in audit] == ["request", "done"]
    assert audit[0]["actor"] == "dag:freshlm_forget/user:alice/run:manual__1"
    assert audit[0]["target"] == {"kind": "url", "value": request.target.value}
    assert audit[1]["touched"]["models_marked"] == [trained.version_id]

    # A second run of the same request finds nothing left to do.
    again = forget(store, request)
    assert again["touched"]["raw_shards"] == again["touched"]["datasets"] == []

    # --- the next crawl of that window skips it ----------------------------------------------
    assert read_deny_list(store).denies(post)
    code, recrawl, stderr = crawl(env, "social", DAY1, "--force")
    assert code == 0, stderr
    assert recrawl["skipped"].get("forgotten") == 1
    assert all(r.get("url") != post["url"] for _, r in every_record(store))
    assert lineage_index.holding(store, request.target) == []


def test_bad_requests_are_refused_naming_the_param():
    ok = {"actor": "a", "run_id": "r", "requested_at": "2026-11-03T00:00:00Z"}
    with pytest.raises(ForgetRequestError, match="reason"):
        parse_request({"item": "https://x.example/a", "reason": " "}, **ok)
    with pytest.raises(ForgetRequestError, match="empty"):
        parse_request({"item": "", "reason": "asked"}, **ok)
    with pytest.raises(ForgetRequestError, match="32 hexadecimal"):
        parse_request({"item": "abc", "item_kind": "document_id", "reason": "asked"}, **ok)
    with pytest.raises(ForgetRequestError, match="not an http"):
        parse_request({"item": "ftp://x/a", "item_kind": "url", "reason": "asked"}, **ok)
    author = parse_request({"item": "@Mira@Tessford.Social", "reason": "asked"}, **ok)
    assert (author.target.kind, author.target.value) == ("author", "mira@tessford.social")
