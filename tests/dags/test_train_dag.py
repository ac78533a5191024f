"""Curate → train under a real Airflow: a dataset published from the sandbox world schedules
freshlm_train, which trains on 2 DeepSpeed CPU ranks and announces a candidate that fits the new
documents better than the base model did."""

from __future__ import annotations

import math
import time

import pytest

from freshlm.registry import PRODUCTION, download_version, read_alias
from freshlm.store import open_store
from sandbox.base_model import bootstrap_demo_base
from sandbox.records import day_records
from sandbox.scenario import load_scenario
from tests.dags.base_model import SMALL_BASE
from tests.support.airflow_server import dump_failure

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

CURATE, TRAIN = "freshlm_curate", "freshlm_train"
# Day 3 of the scenario: the curate test publishes days 1 and 2 in the same Airflow session, and
# the dedup index would drop a second copy of their documents.
DAY = 3
WINDOW = {"start": "2026-11-04T00:00:00Z", "end": "2026-11-05T00:00:00Z"}


def _raw_shards(store) -> list[str]:
    """The night's raw shards, one per source, published the way freshlm_crawl publishes them."""
    scenario = load_scenario()
    day = scenario.days[DAY - 1].date
    by_source: dict[str, list[dict]] = {}
    for record in day_records(scenario, day):
        # The crawl names the arXiv source as crawlers/sources.yaml does; the gate checks it.
        if record["source"] == "arxiv-cs-cl":
            record = {**record, "source": "arxiv-cs"}
        by_source.setdefault(record["source"], []).append(record)
    uris = []
    for source, records in sorted(by_source.items()):
        prefix = f"raw/{source}/train-test-{day:%Y%m%d}"
        with store.publisher(prefix, kind="raw-shard") as pub:
            pub.write_jsonl("records.jsonl.gz", records)
            pub.write_jsonl("quarantine.jsonl.gz", [])
            pub.set_manifest_fields(source=source, window=WINDOW, records=len(records))
        uris.append(store.uri_for(prefix))
    return uris


def _mean_loss(model_dir, texts: list[str]) -> float:
    """Token-weighted mean next-token loss of the model over ``texts``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    window = model.config.n_positions
    total, count = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, return_tensors="pt").input_ids[0]
            for start in range(0, max(1, len(ids) - 1), window):
                chunk = ids[start : start + window].unsqueeze(0)
                if chunk.shape[1] < 2:
                    continue
                loss = model(chunk, labels=chunk).loss.item()
                total += loss * (chunk.shape[1] - 1)
                count += chunk.shape[1] - 1
    return total / count


def _wait_for_new_run(client, dag_id: str, before: set[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = client.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]
        new = [r["dag_run_id"] for r in runs if r["dag_run_id"] not in before]
        if new:
            return new[0]
        time.sleep(1)
    raise AssertionError(f"no new {dag_id} run within {timeout_s}s")


def test_a_published_dataset_trains_a_candidate_that_learned_the_new_documents(
    airflow_client, freshlm_home, tmp_path
):
    client = airflow_client
    client.wait_for_dags([CURATE, TRAIN])
    store = open_store((freshlm_home / "store").as_uri())
    base = bootstrap_demo_base(store, config=SMALL_BASE)
    assert read_alias(store, PRODUCTION).version_id == base["version_id"]

    for dag_id in (CURATE, TRAIN):
        client.clear_queued_asset_events(dag_id)
    client.unpause(CURATE)
    client.unpause(TRAIN)
    before = {
        r["dag_run_id"]
        for r in client.request("GET", f"/dags/{TRAIN}/dagRuns", params={"limit": 100})["dag_runs"]
    }

    curate_run = "test__train__curate_day3"
    client.trigger(
        CURATE,
        conf={
            "shards": _raw_shards(store),
            "window_start": WINDOW["start"],
            "window_end": WINDOW["end"],
        },
        run_id=curate_run,
    )
    curated = client.wait_for_run(CURATE, curate_run, timeout_s=600)
    assert curated["state"] == "success", dump_failure(client, CURATE, curate_run)
    dataset = client.xcom(CURATE, curate_run, "publish_dataset")

    # The published dataset's Asset event schedules freshlm_train, which runs on its defaults.
    train_run = _wait_for_new_run(client, TRAIN, before, timeout_s=300)
    trained = client.wait_for_run(TRAIN, train_run, timeout_s=900)
    assert trained["state"] == "success", dump_failure(client, TRAIN, train_run)
    states = client.task_states(TRAIN, train_run)
    assert states["train_local"] == "success" and states["stage_kubernetes"] == "skipped"

    plan = client.xcom(TRAIN, train_run, "plan")
    # Datasets other tests of this session announced may ride along in the same run.
    assert plan["trigger"] == "asset" and dataset["dataset_id"] in plan["config"]["datasets"]
    assert plan["baseline_version"] == base["version_id"] and plan["config"]["num_ranks"] == 2
    candidate = client.xcom(TRAIN, train_run, "announce_candidate")
    events = client.asset_events("freshlm://models/candidates")
    assert events and events[-1]["extra"]["version_id"] == candidate["version_id"]
    assert events[-1]["extra"]["baseline_version"] == base["version_id"]

    # The version's lineage reaches back to the dataset and its crawl window; it has a card.
    manifest = store.read_manifest(f"models/{candidate['version_id']}", verify=True)
    lineage = manifest.fields["lineage"]
    assert lineage["parent_version"] == base["version_id"]
    assert lineage["dataset_ids"] == plan["config"]["datasets"]
    assert WINDOW in lineage["crawl_windows"]
    assert "# FreshLM model version" in store.read_bytes(manifest.key("README.md")).decode()
    metrics = manifest.fields["metrics"]
    assert metrics["world_size"] == 2 and metrics["tokens_per_second"] > 0
    assert "step" in client.task_log(TRAIN, train_run, "train_local")  # progress in the log

    # Production did not move: promotion is the evaluation's decision.
    assert read_alias(store, PRODUCTION).version_id == base["version_id"]

    texts = [
        doc["text"] for doc in store.read_jsonl(f"datasets/{dataset['dataset_id']}/train.jsonl.gz")
    ]
    base_loss = _mean_loss(download_version(store, base["version_id"], tmp_path / "base"), texts)
    cand_loss = _mean_loss(
        download_version(store, candidate["version_id"], tmp_path / "cand"), texts
    )
    assert math.isfinite(cand_loss) and cand_loss < base_loss, (base_loss, cand_loss)
