"""Evaluate → promote or reject → roll back, under a real Airflow.

A candidate fine-tuned on a sandbox-world dataset is evaluated against production and promoted
(production moves, the audit log has the metrics, Slack gets the summary); a deliberately
damaged candidate (the good one with its weights scrambled by noise: forgetting forced) is
rejected with the failing rules named, production stays, and the Slack sink gets the alert with
the metric table; ``freshlm_rollback`` then moves production back to the base with a reason.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import requests

from expectations.verdict import gate_candidate
from freshlm.artifacts import read_gate_report
from freshlm.curation import publish as publishing
from freshlm.curation.run import curate
from freshlm.registry import (
    PRODUCTION,
    Lineage,
    download_version,
    publish_version,
    read_alias,
    read_audit,
)
from freshlm.store import open_store
from sandbox.base_model import bootstrap_demo_base
from sandbox.records import day_records
from sandbox.scenario import load_scenario
from tests.dags.base_model import SMALL_BASE
from tests.support.airflow_server import dump_failure
from training.config import TrainConfig
from training.launch_local import run_local_training

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

EVALUATE, ROLLBACK = "freshlm_evaluate", "freshlm_rollback"
# Day 4 of the scenario: the other Airflow tests publish days 1 to 3 in this session's store.
DAY = 4
WINDOW = {"start": "2026-11-05T00:00:00Z", "end": "2026-11-06T00:00:00Z"}
SOURCES = ["arxiv-cs", "tessford-courier", "tessford-social"]


def _publish_day(store) -> str:
    """Curate, gate and publish the scenario's day 4 in this process (as freshlm_curate does)."""
    scenario = load_scenario()
    day = scenario.days[DAY - 1].date
    by_source: dict[str, list[dict]] = {}
    for record in day_records(scenario, day):
        if record["source"] == "arxiv-cs-cl":  # the arXiv source as crawlers/sources.yaml names it
            record = {**record, "source": "arxiv-cs"}
        by_source.setdefault(record["source"], []).append(record)
    shards = []
    for source, records in sorted(by_source.items()):
        prefix = f"raw/{source}/evaluate-test-{day:%Y%m%d}"
        with store.publisher(prefix, kind="raw-shard") as pub:
            pub.write_jsonl("records.jsonl.gz", records)
            pub.write_jsonl("quarantine.jsonl.gz", [])
            pub.set_manifest_fields(source=source, window=WINDOW, records=len(records))
        shards.append(store.uri_for(prefix))
    candidate = curate(shards, store, window=(WINDOW["start"], WINDOW["end"]))
    gate = gate_candidate(
        store, candidate.uri, window=WINDOW, allowed_sources=SOURCES, run_id="evaluate-test"
    )
    assert gate["passed"], gate
    batch = publishing.GatedBatch(candidate.uri, gate["report_uri"], WINDOW, shards, "eval")
    result = read_gate_report(store, gate["report_uri"])
    return publishing.publish_dataset(store, batch, result)["dataset_id"]


def _damaged_copy(store, version_id: str, dataset_id: str, work: Path) -> str:
    """The version's weights with noise of their own scale added: a model that forgot."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = download_version(store, version_id, work / "source")
    model = AutoModelForCausalLM.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.add_(noise * param.std().clamp(min=1e-3) * 1.5)
    damaged = work / "damaged"
    model.save_pretrained(damaged)
    tokenizer.save_pretrained(damaged)
    version, _ = publish_version(
        store,
        damaged,
        lineage=Lineage(
            kind="finetune",
            parent_version=version_id,
            source="tests: weights scrambled with noise",
            dataset_ids=[dataset_id],
            crawl_windows=[WINDOW],
        ),
        metrics={},
        created_by={"test": "evaluate"},
    )
    return version.version_id


def _slack(world) -> list[dict]:
    return requests.get(f"{world.url}/_world/slack/messages").json()


def _text(message: dict) -> str:
    return message["text"] + str(message.get("blocks"))


def test_a_good_candidate_is_promoted_a_damaged_one_rejected_and_rollback_restores(
    airflow_client, freshlm_home, world, tmp_path
):
    client = airflow_client
    client.wait_for_dags([EVALUATE, ROLLBACK])
    store = open_store((freshlm_home / "store").as_uri())
    base = bootstrap_demo_base(store, config=SMALL_BASE)["version_id"]
    if read_alias(store, PRODUCTION).version_id != base:
        pytest.fail("another test moved production; this test expects the small base there")
    requests.post(f"{world.url}/_world/clock", json={"now": f"day:{DAY}"}).raise_for_status()
    dataset = _publish_day(store)
    good = run_local_training(
        TrainConfig(
            datasets=(dataset,),
            base_version=base,
            # The defaults freshlm_train plans with (FRESHLM_TRAIN_EPOCHS, _LEARNING_RATE).
            epochs=20,
            learning_rate=2e-3,
            num_ranks=2,
            store_uri=store.root_uri,
            work_dir=str(tmp_path / "work"),
        )
    )["version_id"]

    # --- promoted ------------------------------------------------------------------------------
    requests.delete(f"{world.url}/_world/slack/messages").raise_for_status()
    # Candidates announced by other tests' training runs must not start evaluations here.
    client.clear_queued_asset_events(EVALUATE)
    client.unpause(EVALUATE)
    try:
        _promote_reject_and_roll_back(client, store, world, base, good, dataset, tmp_path)
    finally:
        client.pause(EVALUATE)


def _promote_reject_and_roll_back(client, store, world, base, good, dataset, tmp_path) -> None:
    run = "test__evaluate__good"
    client.trigger(EVALUATE, conf={"candidate": good}, run_id=run)
    final = client.wait_for_run(EVALUATE, run, timeout_s=900)
    assert final["state"] == "success", dump_failure(client, EVALUATE, run)
    decision = client.xcom(EVALUATE, run, "decide")
    assert decision["passed"], decision["reasons"]
    report = client.xcom(EVALUATE, run, "evaluate")
    cand, prod = report["candidate"]["metrics"], report["baseline"]["metrics"]
    assert report["baseline"]["version_id"] == base
    assert cand["new_knowledge_acc"] > prod["new_knowledge_acc"]
    # The world is at day 4: its new facts are scored, and so is their wrong-question control,
    # which travels with the summary (the demo prints it).
    control = report["controls"]["world_new_wrong_question"]
    assert control["items"] == report["counts"]["world_new"] > 1
    assert 0 <= control["candidate"] <= 1
    assert read_alias(store, PRODUCTION).version_id == good
    move = read_audit(store, PRODUCTION)[-1]
    assert move.version_id == good and move.from_version_id == base
    assert f"run:{run}" in move.actor and move.metrics
    assert store.exists(report["uri"].removeprefix(store.root_uri + "/") + "/report.html")
    messages = _slack(world)
    assert len(messages) == 1 and good[:8] in _text(messages[0]), messages

    # --- rejected -------------------------------------------------------------------------------
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        damaged = _damaged_copy(store, good, dataset, Path(work))
    requests.delete(f"{world.url}/_world/slack/messages").raise_for_status()
    run = "test__evaluate__damaged"
    client.trigger(EVALUATE, conf={"candidate": damaged}, run_id=run)
    final = client.wait_for_run(EVALUATE, run, timeout_s=900)
    assert final["state"] == "failed"
    states = client.task_states(EVALUATE, run)
    assert states["reject"] == "failed" and states["promote"] == "skipped", states
    decision = client.xcom(EVALUATE, run, "decide")
    assert not decision["passed"]
    failed = set(decision["failed_rules"])
    assert failed & {"retention_drop", "ppl_old_rise", "new_knowledge_gain"}, decision
    assert read_alias(store, PRODUCTION).version_id == good  # production stays
    messages = _slack(world)
    assert len(messages) == 1, messages  # the gate's alert; no second task-failure alert
    alert = _text(messages[0])
    assert damaged[:8] in alert and good[:8] in alert
    for rule in failed:
        assert rule in alert
    assert "report.html" in alert and f"/runs/{run}/tasks/" in alert

    # --- rolled back ----------------------------------------------------------------------------
    requests.delete(f"{world.url}/_world/slack/messages").raise_for_status()
    client.unpause(ROLLBACK)
    run = "test__rollback"
    client.trigger(ROLLBACK, conf={"version": base, "reason": "test: back to the base"}, run_id=run)
    final = client.wait_for_run(ROLLBACK, run, timeout_s=300)
    assert final["state"] == "success", dump_failure(client, ROLLBACK, run)
    assert read_alias(store, PRODUCTION).version_id == base
    move = read_audit(store, PRODUCTION)[-1]
    assert move.version_id == base and "test: back to the base" in move.reason
    assert any("test: back to the base" in _text(m) for m in _slack(world))

    # A version that is not in the registry is refused with the versions that are.
    run = "test__rollback__unknown"
    client.trigger(ROLLBACK, conf={"version": "f" * 32, "reason": "typo"}, run_id=run)
    assert client.wait_for_run(ROLLBACK, run, timeout_s=300)["state"] == "failed"
    assert base in client.task_log(ROLLBACK, run, "roll_back")
    assert read_alias(store, PRODUCTION).version_id == base
