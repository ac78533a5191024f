"""Gate, publish and quarantine: the whole curate stage on the sandbox world's days, no Airflow."""

from __future__ import annotations

from datetime import timedelta

import pytest

from freshlm.curation import publish
from freshlm.curation.run import curate
from freshlm.curation.scenario_records import day_records
from freshlm.store import open_store
from freshlm.world.scenario import load_scenario

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
    shards, window = _shards(store, scenario, number)
    candidate = curate(shards, store, window=(window["start"], window["end"]))
    gate = publish.gate_candidate(
        store, candidate.uri, window=window, allowed_sources=SOURCES, run_id=run_id
    )
    return shards, window, candidate, gate


@pytest.fixture(scope="module")
def scenario():
    return load_scenario()


def test_good_day_publishes_a_dataset_with_lineage_and_a_rerun_changes_nothing(tmp_path, scenario):
    store = open_store((tmp_path / "store").as_uri())
    shards, window, candidate, gate = _night(store, scenario, 1, "night1")
    assert gate["severity"] in {"ok", "warning"} and gate["passed"]
    result = publish.read_gate_result(store, gate["report_uri"])
    assert store.exists(publish.prefix_of(store, gate["data_docs_url"]))

    published = publish.publish_dataset(
        store,
        candidate.uri,
        result,
        report_uri=gate["report_uri"],
        window=window,
        shards=shards,
        run_id="night1",
    )
    assert published["dataset_id"] == candidate.candidate_id
    assert published["documents"] == candidate.summary["kept"] > 0
    manifest = store.read_manifest(f"datasets/{published['dataset_id']}", verify=True)
    lineage = manifest.fields
    assert [s["source"] for s in lineage["shards"]] == sorted(SOURCES)
    assert all(s["window"] == window for s in lineage["shards"])
    assert lineage["parents"] == [] and lineage["gate"]["data_docs"] == gate["data_docs_url"]
    assert (
        lineage["tokens"] > 0
        and lineage["counts"]["train"] + lineage["counts"]["heldout"]
        == lineage["counts"]["documents"]
    )
    # The dedup index now holds the published documents.
    assert store.exists("dedup-index/HEAD.json")

    # Rerunning the night curates to the same id and publishes nothing new.
    again = curate(shards, store, window=(window["start"], window["end"]))
    assert again.candidate_id == candidate.candidate_id
    republished = publish.publish_dataset(
        store,
        again.uri,
        result,
        report_uri=gate["report_uri"],
        window=window,
        shards=shards,
        run_id="night1-rerun",
    )
    assert republished["already_published"] and republished["dataset_id"] == published["dataset_id"]
    assert len(publish.published_datasets(store)) == 1


def test_bad_day_is_quarantined_with_reasons_and_can_be_accepted_with_a_reason(tmp_path, scenario):
    store = open_store((tmp_path / "store").as_uri())
    shards1, window1, candidate1, gate1 = _night(store, scenario, 1, "night1")
    publish.publish_dataset(  # night 1 gives the volume band its history
        store,
        candidate1.uri,
        publish.read_gate_result(store, gate1["report_uri"]),
        report_uri=gate1["report_uri"],
        window=window1,
        shards=shards1,
        run_id="night1",
    )
    shards, window, candidate, gate = _night(store, scenario, 2, "night2")
    assert gate["severity"] == "critical" and not gate["passed"]
    result = publish.read_gate_result(store, gate["report_uri"])
    with pytest.raises(publish.PublishError, match="failed the gate"):
        publish.publish_dataset(
            store,
            candidate.uri,
            result,
            report_uri=gate["report_uri"],
            window=window,
            shards=shards,
            run_id="night2",
        )
    record = publish.quarantine_batch(
        store,
        candidate.uri,
        result,
        report_uri=gate["report_uri"],
        window=window,
        shards=shards,
        run_id="night2",
    )
    assert any(f["check"] == "duplicate_ratio" for f in record["failures"])
    assert store.read_manifest(publish.prefix_of(store, record["quarantine_uri"])) is not None
    assert [m.fields["window"] for m in publish.published_datasets(store)] == [
        _window(scenario.days[0].date)
    ]

    from expectations.gate import GateResult, accept_override

    accepted = accept_override(GateResult.from_dict(result), "spam checked by hand", "oncall")
    published = publish.publish_dataset(
        store,
        candidate.uri,
        accepted.to_dict(),
        report_uri=gate["report_uri"],
        window=window,
        shards=shards,
        run_id="night2-accepted",
    )
    manifest = store.read_manifest(f"datasets/{published['dataset_id']}")
    assert manifest.fields["gate"]["override"]["reason"] == "spam checked by hand"
    assert manifest.fields["parents"] == [publish.published_datasets(store)[0].artifact_id]
