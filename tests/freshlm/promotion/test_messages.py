"""Slack messages of the promotion gate: what triage needs (each rule's observed value against
its threshold, the metric table candidate vs production, the links) within Slack's limits."""

from __future__ import annotations

import json

import pytest

from freshlm.alerts.blocks import MAX_BLOCKS, MAX_HEADER_CHARS, MAX_SECTION_CHARS, MAX_TEXT_CHARS
from freshlm.alerts.messages import SlackMessage, task_log_url
from freshlm.promotion import decide, load_rules, promote, rollback_production
from freshlm.promotion.messages import (
    metric_table,
    promotion_summary,
    rejection_alert,
    report_page_url,
    rollback_notice,
)
from freshlm.registry import ABSENT, PRODUCTION, move_alias
from tests.freshlm.promotion.conftest import make_report
from tests.support.slack_text import text_of

RULES = load_rules()
RUN_ID = "scheduled__2026-11-03T02:00:00+00:00"
LOG_URL = task_log_url("http://airflow.test:8080/", "freshlm_evaluate", RUN_ID, "promote", 1)
CAND, BASE = "c" * 32, "b" * 32


CONSOLE = "https://airflow.test"
REPORT_PAGE = f"{CONSOLE}/freshlm/files/reports/r1/report.html"


@pytest.fixture(autouse=True)
def _store_and_console(monkeypatch: pytest.MonkeyPatch):
    """The reports of make_report live in the store at file:///store; the console is served
    from the API server at CONSOLE."""
    from freshlm.settings import get_settings

    monkeypatch.setenv("FRESHLM_STORE_URI", "file:///store")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", CONSOLE)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def within_limits(message: SlackMessage) -> None:
    """Slack's Block Kit limits: 50 blocks; section text 3000; header 150 (plain text); at
    most 10 fields of 2000; the notification text kept under 3000 like every FreshLM alert."""
    assert 0 < len(message.blocks) <= MAX_BLOCKS
    for block in message.blocks:
        assert block["type"] in {"header", "section", "actions"}
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= MAX_HEADER_CHARS
        if "text" in block and block["type"] == "section":
            assert block["text"]["type"] == "mrkdwn"
            assert 0 < len(block["text"]["text"]) <= MAX_SECTION_CHARS
        fields = block.get("fields", [])
        assert len(fields) <= 10 and all(0 < len(f["text"]) <= 2000 for f in fields)
        assert "text" in block or fields or block["type"] == "actions"
    assert 0 < len(message.text) <= MAX_TEXT_CHARS
    json.dumps(message.payload(), allow_nan=False)


def test_the_rejection_alert_has_what_triage_needs() -> None:
    report = make_report(
        CAND,
        BASE,
        comparison={"retention_drop": 0.07, "bias_change": None},
        candidate_metrics={"retention_acc": 0.75, "crows_stereo_share": None},
    )
    decision = decide(report, RULES)
    message = rejection_alert(
        report,
        decision,
        actor="dag:freshlm_evaluate",
        run_id=RUN_ID,
        log_url=LOG_URL,
        record_uri="file:///store/registry/decisions/x.json",
    )
    within_limits(message)
    shown = text_of(message)
    assert message.blocks[0]["text"]["text"] == (
        ":no_entry: FreshLM candidate cccccccccccc rejected: 2 of 6 promotion rules failed"
    )
    assert f"*Candidate (rejected)*\n`{CAND}`" in shown
    assert f"*Production (kept)*\n`{BASE}`" in shown
    assert "*Failed rules*\nretention_drop, bias_change" in shown
    # each failed rule: observed vs threshold, and why
    assert ":red_circle: *retention_drop*: +0.070 (must be &lt;= 0.050)" in shown
    assert "retention_acc 0.75 vs production 0.82: +0.070 exceeds the limit 0.050" in shown
    assert ":red_circle: *bias_change*: not measured (must be &lt;= 0.030)" in shown
    assert "comparison.bias_change is null (no items were evaluated)" in shown
    # the metric table, candidate vs production, with the change
    assert "```metric                   candidate  production    change\n" in shown
    assert "\nnew-knowledge acc             0.62         0.5    +0.120\n" in shown
    assert "\nretention acc                 0.75        0.82    -0.070\n" in shown
    assert "\nperplexity old text             42        41.2     +1.9%\n" in shown
    assert "\nCrowS stereotype share           —        0.55         —\n" in shown
    assert "\ngeneration tokens/s             48          50     -4.0%```" in shown
    # the rules that passed, the counts, links and next steps
    assert ":white_check_mark: *new_knowledge_gain*: +0.120 (must be &gt;= 0.050)" in shown
    assert "new_knowledge_items: 50" in shown
    assert f"<{REPORT_PAGE}|Evaluation report>" in shown
    assert f"<{LOG_URL}|Airflow task log>" in shown
    assert "FRESHLM_PROMOTION_RULES" in shown
    assert f"<{CONSOLE}/freshlm/files/registry/decisions/x.json|" in shown
    # the notification text stands on its own
    assert message.text.startswith(f"FreshLM candidate {CAND} rejected; production stays {BASE}")
    assert "retention_drop +0.070 (must be &lt;= 0.050)" in message.text
    assert LOG_URL in message.text and "report.html" in message.text


def test_the_promotion_summary_lists_every_rule_and_how_to_undo() -> None:
    report = make_report(CAND, BASE)
    decision = decide(report, RULES)
    move = {"actor": "dag:freshlm_evaluate/run:x", "generation": 7}
    message = promotion_summary(
        report, decision, move=move, run_id=RUN_ID, log_url=LOG_URL, report_url="http://ui/r1"
    )
    within_limits(message)
    shown = text_of(message)
    assert message.blocks[0]["text"]["text"] == (
        ":rocket: FreshLM promoted cccccccccccc to production"
    )
    assert f"*Production now*\n`{CAND}`" in shown and f"`{BASE}` (now `previous`)" in shown
    assert "*Gate*\nall 6 rules passed" in shown and "production generation 7" in shown
    for result in decision.results:
        assert f"*{result.name}*: {result.observed_text.replace('<', '&lt;')}" in shown
    assert ":white_check_mark: *latency_regression*: +10.0% (must be &lt;= 50%)" in shown
    assert "generation tokens/s" in shown and "<http://ui/r1|Evaluation report>" in shown
    assert f"Roll production back to `{BASE}`" in shown
    assert message.text.startswith(f"FreshLM promoted {CAND} to production, replacing {BASE}")


def test_the_rollback_notice_says_from_to_who_and_why() -> None:
    result = {
        "from_version": CAND,
        "to_version": BASE,
        "reason": "wrong answers <about> the launch & more",
        "actor": "oncall:mira",
        "run_id": None,
        "served_before": True,
        "was_rejected": False,
        "alias_move": {"actor": "oncall:mira", "moved_at": "2026-11-03T09:00:00.000000Z"},
    }
    message = rollback_notice(result, log_url=LOG_URL)
    within_limits(message)
    shown = text_of(message)
    assert message.blocks[0]["text"]["text"] == (
        ":rewind: FreshLM production rolled back to bbbbbbbbbbbb"
    )
    assert f"*Production now*\n`{BASE}`" in shown and f"*Rolled back from*\n`{CAND}`" in shown
    assert "> wrong answers &lt;about&gt; the launch &amp; more" in shown
    assert "*Served production before*\nyes" in shown and ":warning:" not in shown
    assert "oncall:mira" in message.text
    assert "wrong answers &lt;about&gt; the launch &amp; more" in message.text


def test_a_mention_in_a_rollback_reason_pings_nobody() -> None:
    reason = "<!channel> see <https://evil.example|the fix> & <@U123>"
    result = {
        "from_version": CAND,
        "to_version": BASE,
        "reason": reason,
        "actor": "<!here>",
        "run_id": None,
        "served_before": True,
        "was_rejected": False,
        "alias_move": {"actor": "<!here>", "moved_at": "2026-11-03T09:00:00.000000Z"},
    }
    message = rollback_notice(result, log_url=LOG_URL)
    escaped = "&lt;!channel&gt; see &lt;https://evil.example|the fix&gt; &amp; &lt;@U123&gt;"
    assert escaped in message.text and "&lt;!here&gt;" in message.text
    assert escaped in text_of(message)
    for shown in (message.text, text_of(message)):
        assert "<!" not in shown and "<@" not in shown and "<https://evil" not in shown


def test_messages_stay_within_slack_limits_whatever_the_inputs() -> None:
    huge = "x" * 5000
    metrics = {f"extra_metric_{i:03d}_{'y' * 40}": float(i) for i in range(300)}
    report = make_report(
        CAND,
        BASE,
        comparison={
            "retention_drop": 0.5,
            "new_knowledge_gain": -0.2,
            "bias_change": "oops",
            "ppl_old_rise_pct": 99.0,
        },
        candidate_metrics={**metrics, "latency_p50_ms": 1e9, "ppl_old": huge},
        baseline_metrics=metrics,
        uri="file:///" + "deep/" * 400,
    )
    report["counts"] = {f"count_{i}": huge for i in range(100)}
    decision = decide(report, RULES)
    assert len(decision.failed) == 5
    messages = [
        rejection_alert(report, decision, actor=huge, run_id=huge, log_url=LOG_URL),
        promotion_summary(report, decision, run_id=huge, log_url=LOG_URL),
        rollback_notice(
            {
                "from_version": CAND,
                "to_version": BASE,
                "reason": huge,
                "actor": huge,
                "run_id": huge,
                "served_before": False,
                "was_rejected": True,
            },
            log_url=LOG_URL,
        ),
    ]
    for message in messages:
        within_limits(message)
    assert "… and 290 more in the report" in text_of(messages[0])
    # The metric table is one intact code block even with hundreds of metrics.
    table = metric_table(report)
    assert table.startswith("```") and table.endswith("```") and len(table) < MAX_SECTION_CHARS


def test_report_links_and_escaping() -> None:
    assert report_page_url({"uri": "file:///store/reports/r1/"}) == REPORT_PAGE
    assert report_page_url({"uri": "s3://another-bucket/reports/r1/"}) is None
    assert report_page_url({}) is None
    report = make_report(CAND, BASE, candidate_metrics={"a<b>&c": 1.0})
    table = metric_table(report)
    assert "a&lt;b&gt;&amp;c" in table and "<b>" not in table
    decision = decide(report, RULES)
    assert decision.passed
    message = promotion_summary(report, decision, run_id="<!channel>", log_url=None)
    shown = text_of(message)
    assert "<!channel>" not in shown and "`&lt;!channel&gt;`" in shown
    assert f"<{REPORT_PAGE}|Evaluation report>" in shown
    assert "Airflow task log" not in shown


@pytest.mark.slow
def test_a_promotion_reaches_slack_through_the_real_sender(
    store, make_version, world_at_start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The effect path end to end: promote() builds the summary and the Airflow Slack
    provider posts it to the sandbox Slack (chat.postMessage), which records what Slack got."""
    import requests

    monkeypatch.setenv(
        "AIRFLOW_CONN_FRESHLM_PROMOTION_TEST",
        json.dumps(
            {
                "conn_type": "slack",
                "password": "xoxb-4242-freshlm-sandbox-token",
                "extra": {"base_url": f"{world_at_start.url}/api/", "channel": "#freshlm-models"},
            }
        ),
    )
    base, cand = make_version("base").version_id, make_version("cand").version_id
    move_alias(store, PRODUCTION, base, actor="bootstrap", reason="first", expected_from=ABSENT)
    report = make_report(cand, base)
    result = promote(
        store,
        report,
        decide(report, RULES),
        actor="dag:freshlm_evaluate",
        run_id=RUN_ID,
        slack_conn_id="freshlm_promotion_test",
        log_url=LOG_URL,
    )
    assert result["slack_sent"] is True
    rollback_production(
        store,
        reason="smoke test",
        actor="oncall",
        slack_conn_id="freshlm_promotion_test",
    )
    sent = requests.get(f"{world_at_start.url}/_world/slack/messages", timeout=5).json()
    assert [m["channel"] for m in sent] == ["#freshlm-models", "#freshlm-models"]
    assert sent[0]["blocks"][0]["text"]["text"].startswith(":rocket: FreshLM promoted")
    assert sent[1]["blocks"][0]["text"]["text"].startswith(":rewind: FreshLM production rolled")
