"""A store holding what two nights of FreshLM leave behind, built with the stages' own code on
the sandbox world's first two days: raw shards, a batch the real gate passed and curation
published, the bad day's batch the gate refused and curation quarantined (with its Data Docs),
two model versions with production moved from one to the other, an evaluation report and the
monitor's history."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from freshlm.artifacts import (
    REPORT_JSON,
    REPORT_KIND,
    read_gate_report,
    report_prefix,
)
from freshlm.curation.publish import publish_dataset, quarantine_batch
from freshlm.monitoring.history import record_check
from freshlm.registry import PRODUCTION, Lineage, ModelVersion, move_alias, publish_version
from freshlm.store import Store
from sandbox.scenario import load_scenario
from tests.freshlm.curation.test_publish import _night as curate_and_gate
from tests.freshlm.promotion.conftest import make_report
from tests.freshlm.registry.conftest import write_fake_model


@dataclasses.dataclass(frozen=True)
class Night:
    """What the fixture store holds, for tests to name."""

    dataset_id: str
    quarantined_id: str
    good_shards: list[str]
    bad_shards: list[str]
    base: ModelVersion
    tuned: ModelVersion
    report_prefix: str
    data_docs_uri: str


def build_night(store: Store, tmp_path: Path) -> Night:
    scenario = load_scenario()
    # Night 1 is published first: it gives the gate's volume band its history.
    good, _, good_gate = curate_and_gate(store, scenario, 1, "night1")
    published = publish_dataset(store, good, read_gate_report(store, good_gate["report_uri"]))
    bad, _, bad_gate = curate_and_gate(store, scenario, 2, "night2")
    assert not bad_gate["passed"], bad_gate
    quarantine_batch(store, bad, read_gate_report(store, bad_gate["report_uri"]))

    base, _ = publish_version(
        store,
        write_fake_model(tmp_path / "base", "base"),
        lineage=Lineage(kind="bootstrap", source="training.bootstrap"),
        metrics={"heldout_perplexity": 61.0},
    )
    tuned, _ = publish_version(
        store,
        write_fake_model(tmp_path / "tuned", "tuned"),
        lineage=Lineage(
            kind="finetune",
            parent_version=base.version_id,
            base_model=base.version_id,
            dataset_ids=(published["dataset_id"],),
            crawl_windows=(good.window,),
            code_revision="abc1234",
        ),
        metrics={"heldout_perplexity": 42.5},
    )
    move_alias(store, PRODUCTION, base.version_id, actor="bootstrap", reason="the base model")
    prefix = report_prefix(tuned.version_id, base.version_id)
    report = make_report(tuned.version_id, base.version_id, uri=store.uri_for(prefix))
    report["created_at"] = "2026-11-03T03:10:00Z"
    with store.publisher(prefix, kind=REPORT_KIND) as pub:
        pub.write_bytes(REPORT_JSON, json.dumps(report).encode())
        pub.write_bytes("report.html", b"<html><body><h1>Evaluation report</h1></body></html>")
        pub.write_bytes("metrics.png", b"\x89PNG\r\n\x1a\n fake chart bytes")
    move_alias(
        store,
        PRODUCTION,
        tuned.version_id,
        actor="freshlm_evaluate/promote",
        reason="learned 12 new facts",
        report=store.uri_for(prefix),
    )
    for day, lag in (("2026-11-03", 26.0), ("2026-11-04", 49.5)):
        check = {
            "checked_at": f"{day}T06:00:00Z",
            "freshness": {
                "lag_hours": lag,
                "production": tuned.version_id,
                "gate_rejection_streak": 0 if lag < 30 else 1,
                "promotion_rejection_streak": 0,
            },
            "canaries": {"accuracy": 0.75},
            "findings": []
            if lag < 30
            else [{"kind": "lag", "severity": "warning", "what": f"{lag} h behind", "action": "x"}],
        }
        record_check(store, check, f"scheduled__{day}")
    return Night(
        dataset_id=published["dataset_id"],
        quarantined_id=store.prefix_for(bad.candidate).rsplit("/", 1)[-1],
        good_shards=good.shards,
        bad_shards=bad.shards,
        base=base,
        tuned=tuned,
        report_prefix=prefix,
        data_docs_uri=bad_gate["data_docs_url"],
    )
