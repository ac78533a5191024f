"""Gate, publish and quarantine: the curate and gate stages on the sandbox world's days, as the
curate DAG chains them, without Airflow."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from expectations.verdict import gate_candidate
from freshlm.artifacts import published_datasets, read_gate_report
from freshlm.curation import publish
from freshlm.curation.run import curate
from freshlm.store import open_store
from sandbox.records import day_records
from sandbox.scenario import load_scenario

SOURCES = ["tessford-courier", "tessford-social", "arxiv-cs-cl"]


def _window(day) -> dict[str, str]:
    end = day + timedelta(days=1)
    return {"start": f"{day}T00:00:00Z", "end": f"{end}T00:00:00Z"}


def _shards(store, scenario, number: int) -> tuple[list[str], dict[str, str]]:
    """Publish one raw shard per source for scenario day ``number``, as the crawl would."""
    day = scenario.days[number - 1].date
    window = _window(day)
    by_source: dict[str, list[dict]] = {}
    for record in day_records(scenario, day):
        by_source.setdefault(record["source"], []).append(record)
    uris = []
    for source, records in sorted(by_source.items()):
        prefix = f"raw/{source}/{day:%Y%m%d}"
        with store.publisher(prefix, kind="raw-shard") as pub:
            pub.write_jsonl("records.jsonl.gz", records)
            pub.write_jsonl("quarantine.jsonl.gz", [])
            pub.set_manifest_fields(source=source, window=window, records=len(records))
        uris.append(store.uri_for(prefix))
    return uris, window


def _night(store, scenario, number: int, run_id: str):
    """Crawl-equivalent shards, curation and the gate for one night."""
    shards, window = _shards(store, scenario, number)
    candidate = curate(shards, store, window=(window["start"], window["end"]))
    gate = gate_candidate(
        store, candidate.uri, window=window, allowed_sources=SOURCES, run_id=run_id
    )
    batch = publish.GatedBatch(candidate.uri, gate["report_uri"], window, shards, run_id)
    return batch, candidate, gate


def _rerun(batch: publish.GatedBatch, **changes) -> publish.GatedBatch:
    return dataclasses.replace(batch, **changes)


@pytest.fixture(scope="module")
def scenario():
    return load_scenario()


def test_good_day_publishes_a_dataset_with_lineage_and_a_rerun_changes_nothing(tmp_path, scenario):
    store = open_store((tmp_path / "store").as_uri())
    batch, candidate, gate = _night(store, scenario, 1, "night1")
    assert gate["severity"] in {"ok", "warning"} and gate["passed"]
    result = read_gate_report(store, gate["report_uri"])
    assert store.exists(store.prefix_for(gate["data_docs_url"]))

    published = publish.publish_dataset(store, batch, result)
    assert published["dataset_id"] == candidate.candidate_id
    assert published["documents"] == candidate.summary["kept"] > 0
    manifest = store.read_manifest(f"datasets/{published['dataset_id']}", verify=True)
    lineage = manifest.fields
    assert [s["source"] for s in lineage["shards"]] == sorted(SOURCES)
    assert all(s["window"] == batch.window for s in lineage["shards"])
    assert lineage["parents"] == [] and lineage["gate"]["data_docs"] == gate["data_docs_url"]
    counts = lineage["counts"]
    assert lineage["tokens"] > 0 and counts["train"] + counts["heldout"] == counts["documents"]
    # The dedup index now holds the published documents.
    assert store.exists("dedup-index/HEAD.json")

    # Rerunning the night curates to the same id and publishes nothing new.
    again = curate(batch.shards, store, window=(batch.window["start"], batch.window["end"]))
    assert again.candidate_id == candidate.candidate_id
    republished = publish.publish_dataset(
        store, _rerun(batch, candidate=again.uri, run_id="night1-rerun"), result
    )
    assert republished["already_published"]
    assert republished["dataset_id"] == published["dataset_id"]
    assert len(published_datasets(store)) == 1


def test_bad_day_is_quarantined_with_reasons_and_can_be_accepted_with_a_reason(tmp_path, scenario):
    store = open_store((tmp_path / "store").as_uri())
    night1, _, gate1 = _night(store, scenario, 1, "night1")
    # Night 1 is published first: it gives the volume band its history.
    publish.publish_dataset(store, night1, read_gate_report(store, gate1["report_uri"]))

    batch, _, gate = _night(store, scenario, 2, "night2")
    assert gate["severity"] == "critical" and not gate["passed"]
    result = read_gate_report(store, gate["report_uri"])
    with pytest.raises(publish.PublishError, match="failed the gate"):
        publish.publish_dataset(store, batch, result)
    record = publish.quarantine_batch(store, batch, result)
    assert any(f["check"] == "duplicate_ratio" for f in record["failures"])
    assert store.read_manifest(store.prefix_for(record["quarantine_uri"])) is not None
    assert [d.window for d in published_datasets(store)] == [night1.window]

    from expectations.gate import GateResult, accept_override

    accepted = accept_override(GateResult.from_dict(result), "spam checked by hand", "oncall")
    published = publish.publish_dataset(
        store, _rerun(batch, run_id="night2-accepted"), accepted.to_dict()
    )
    manifest = store.read_manifest(f"datasets/{published['dataset_id']}")
    assert manifest.fields["gate"]["override"]["reason"] == "spam checked by hand"
    assert manifest.fields["parents"] == [published_datasets(store)[0].dataset_id]
