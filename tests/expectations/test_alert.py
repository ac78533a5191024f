"""The gate's Slack alert for triage: a real gate failure's alert carries the failed
expectations with observed vs expected, the counts, both links and the next steps, within
Slack's limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from expectations.alert import gate_alert
from expectations.gate import GateResult, accept_override, run_gate
from freshlm.alerts.messages import task_log_url
from tests.expectations import batches as b
from tests.support.slack_text import text_of, within_limits

RUN_ID = "scheduled__2026-11-03T02:00:00+00:00"
LOG_URL = task_log_url("http://airflow.test:8080/", "freshlm_curate", RUN_ID, "gate", 2)
DOCS_URL = "http://store.test/datasets/cand-1/data_docs/index.html"


@pytest.fixture(scope="module")
def bad_day(tmp_path_factory: pytest.TempPathFactory) -> GateResult:
    """A gate result with a critical PII failure, a duplicate ratio, and a dry-source warning."""
    docs = [d for d in b.clean_batch() if d["source"] != "arxiv-cs"]
    docs[3]["text"] += " call +44 20 7946 0958 tonight"
    dropped = [b.doc(900 + i, "tessford-social", reason="dedup:near") for i in range(50)]
    dropped += [b.doc(990, reason="quality:gopher_min_words")]
    history = {s: [20, 21, 19] for s in b.SOURCES}
    return run_gate(
        docs,
        b.config(),
        b.context(volume_history=history),
        quarantine=dropped,
        data_docs_dir=tmp_path_factory.mktemp("gate") / "docs",
    )


def test_a_critical_gate_alert_has_what_triage_needs(bad_day: GateResult) -> None:
    assert bad_day.severity == "critical"
    message = gate_alert(
        bad_day,
        dag_id="freshlm_curate",
        run_id=RUN_ID,
        task_id="gate",
        log_url=LOG_URL,
        data_docs_url=DOCS_URL,
    )
    within_limits(message)
    shown = text_of(message)
    pii = next(f for f in bad_day.failures if f["check"] == "residual_pii")
    assert message.blocks[0]["text"]["text"].startswith(":no_entry: FreshLM gate CRITICAL")
    # where: DAG, run, window
    assert "freshlm_curate" in shown and RUN_ID in shown
    assert "2026-11-02T00:00:00Z → 2026-11-03T00:00:00Z" in shown
    # what came in, per source, with counts
    assert "*Documents*\n40 kept, 51 quarantined" in shown
    assert "`tessford-social`: 70 delivered (20 kept, 50 quarantined), 3.5x the median 20" in shown
    assert "`arxiv-cs`: 0 delivered (0 kept, 0 quarantined), 0.0x the median 20" in shown
    # what failed: observed vs expected, critical first
    assert "*Failed expectations*\n2 critical, 1 warning" in shown
    assert (
        ":red_circle: *residual_pii* (critical) on `residual_pii_phone`\n"
        "      observed: 1 of 40 documents (2.50%)\n"
        "      expected: no phone left in text or title (the scrubber's rules)\n"
        f"      e.g. `{pii['examples'][0]}`"
    ) in shown
    assert "*duplicate_ratio* (critical)" in shown and "observed: 54.9%" in shown
    assert "expected: duplicate ratio &lt;= 30%" in shown
    assert shown.index("duplicate_ratio") < shown.index("source_dry")
    assert "arxiv-cs: 0 docs vs median 20 of 3 batches (0.0x)" in shown
    assert "7946" not in shown and "7946" not in message.text  # ids, never the PII itself
    # quarantined, and why
    assert (
        "*whole batch: 40 documents* by the gate — critical: duplicate_ratio, residual_pii" in shown
    )
    assert "• 50 by curation: `dedup:near`" in shown
    assert "• 1 by curation: `quality:gopher_min_words`" in shown
    # links and next steps
    assert f"<{LOG_URL}|Airflow task log>" in shown
    assert f"<{DOCS_URL}|Data Docs>" in shown
    assert "*Clear* the failed tasks of this run" in shown
    assert '`accept_batch=true` and `accept_reason="why it is safe"`' in shown
    # the fallback text stands on its own
    assert "CRITICAL" in message.text and "duplicate_ratio, residual_pii" in message.text
    assert LOG_URL in message.text and DOCS_URL in message.text


def test_a_data_docs_site_outside_the_store_gets_no_unclickable_link(bad_day: GateResult) -> None:
    # bad_day's site lies in a temporary folder, not in the configured store: a file:// link
    # would open nothing for anyone reading Slack, so the alert leaves it out.
    message = gate_alert(bad_day, dag_id="d", run_id="r", task_id="gate", log_url=None)
    shown = text_of(message)
    assert "file://" not in shown and "file://" not in message.text
    assert "Airflow task log" not in shown and "(no links available)" in shown
    assert not [b for b in message.blocks if b["type"] == "actions"]


def test_an_accepted_batch_says_who_accepted_it_and_why(bad_day: GateResult) -> None:
    accepted = accept_override(bad_day, "spam flood checked by hand", user="mira")
    message = gate_alert(
        accepted.to_dict(), dag_id="d", run_id="r", task_id="gate", log_url=LOG_URL
    )
    shown = text_of(message)
    assert message.blocks[0]["text"]["text"].startswith(":white_check_mark:")
    assert "accepted by mira" in shown and "spam flood checked by hand" in shown
    assert "whole batch" not in shown


def test_a_warning_alert_says_the_batch_was_published(tmp_path: Path) -> None:
    docs = b.clean_batch()
    docs[0]["language"] = "fr"
    result = run_gate(docs, b.config(), b.context(), data_docs_dir=tmp_path / "docs")
    message = gate_alert(result, dag_id="d", run_id="r", task_id="gate", log_url=LOG_URL)
    shown = text_of(message)
    assert "warning: batch published" in message.blocks[0]["text"]["text"]
    assert ":large_yellow_circle: *allowed_languages* (warning)" in shown
    assert "The batch was published" in shown and "whole batch" not in shown


def test_hundreds_of_failures_stay_within_slack_s_limits(bad_day: GateResult) -> None:
    failure: dict[str, Any] = {
        "expectation": "expect_column_values_to_be_between",
        "check": "schema",
        "column": "x" * 300,
        "severity": "critical",
        "observed": "o" * 2000,
        "expected": "e" * 2000,
        "unexpected_count": 1,
        "examples": ["<EMAIL>" * 40] * 5,
    }
    data = bad_day.to_dict()
    data["failures"] = [failure] * 300
    data["statistics"]["sources"] = {
        f"source-{i}": {"kept": 1, "quarantined": 0, "volume": 1, "history_batches": 0}
        for i in range(100)
    }
    message = gate_alert(data, dag_id="d" * 200, run_id="r", task_id="t", log_url=LOG_URL)
    within_limits(message)
    shown = text_of(message)
    assert "… and 288 more in the Data Docs" in shown and "… and 85 more" in shown
    assert "&lt;EMAIL&gt;" in shown and "<EMAIL>" not in shown  # mrkdwn-escaped
