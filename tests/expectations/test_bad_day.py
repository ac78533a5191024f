"""The sandbox world's four days through the real curation steps and the gate: the good days
pass, the bad day (spam flood, PII posts) is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from expectations.config import GateConfig, GateContext
from expectations.gate import run_gate
from freshlm.curation.candidate import finalize
from freshlm.curation.config import CurationConfig
from freshlm.curation.run import build_pipeline
from sandbox.records import day_records
from sandbox.scenario import load_scenario


def test_only_the_bad_day_fails_the_gate(tmp_path: Path) -> None:
    scenario = load_scenario()
    history: dict[str, list[int]] = {}
    verdicts = {}
    for day in scenario.days:
        records = day_records(scenario, day.date)
        for record in records:
            record["_shard"] = f"file:///raw/{record['source']}/{day.date}"
        dropped: list[dict] = []
        pipeline = build_pipeline(
            CurationConfig(), lambda doc, sink=dropped: sink.append(finalize(doc))
        )
        kept = [finalize(doc) for doc in pipeline(iter(records))]
        start = datetime(day.date.year, day.date.month, day.date.day, tzinfo=UTC)
        context = GateContext(
            window_start=start,
            window_end=start + timedelta(days=1),
            allowed_sources=sorted({r["source"] for r in records} | set(history)),
            volume_history=history,
        )
        result = run_gate(
            kept,
            GateConfig(),
            context,
            quarantine=dropped,
            data_docs_dir=tmp_path / str(day.date),
        )
        verdicts[day.number] = (result.severity, {f["check"] for f in result.failures})
        if day.bad_batch:
            assert result.statistics["quarantined_by_reason"].get("dedup:near", 0) > 30
        if result.passed:  # history is what was published
            for source, volume in result.statistics["volume_by_source"].items():
                history.setdefault(source, []).append(volume)
    assert verdicts == {
        1: ("ok", set()),
        2: ("critical", {"duplicate_ratio"}),
        3: ("ok", set()),
        4: ("ok", set()),
    }
