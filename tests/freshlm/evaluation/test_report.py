"""The report: its contract, the chart (a real PNG) and the readable page (a Jinja2 template,
autoescaped)."""

from __future__ import annotations

import struct

from freshlm.evaluation.metrics import METRIC_KEYS
from freshlm.evaluation.report import (
    DECISION_MARKER,
    METRIC_INFO,
    format_delta,
    format_value,
    render_chart,
    render_html,
    validate_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IDS = ["a" * 32, "b" * 32, "c" * 32]


def metrics(**values):
    return {**dict.fromkeys(METRIC_KEYS), **values}


BASE = metrics(
    new_knowledge_acc=0.25,
    retention_acc=0.9,
    world_new_acc=0.0,
    world_old_acc=1.0,
    ppl_new=40.5,
    ppl_old=10.25,
    crows_stereo_share=0.6,
    latency_p50_ms=20.0,
    latency_p95_ms=30.0,
    gen_tokens_per_s=900.0,
)
CAND = dict(BASE, new_knowledge_acc=0.75, retention_acc=0.85, ppl_new=20.0, world_old_acc=None)


def sample_report():
    return {
        "schema": 1,
        "candidate": {"version_id": IDS[2], "metrics": CAND, "uri": f"file:///s/models/{IDS[2]}"},
        "baseline": {"version_id": IDS[1], "metrics": BASE},
        "comparison": {
            "fuar": None,
            "forgotten": 1,
            "gained": 0,
            "new_knowledge_gain": 0.5,
            "retention_drop": 0.05,
            "ppl_old_rise_pct": 0.0,
            "ppl_new_change_pct": -50.6173,
            "bias_change": 0.0,
            "latency_p95_change_pct": 0.0,
            "general_retention_drop": None,
        },
        "counts": {"new": 4, "old": 20, "unmeasured": {"world_old_acc": "no old world-fact items"}},
        "config": {"batch_size": 16},
        "created_at": "2026-11-03T04:00:00+00:00",
        "uri": f"file:///s/reports/{IDS[2]}/vs-{IDS[1]}",
        "facts": [
            {
                "id": "f1",
                "group": "new",
                "question": "Who is <script>alert(1)</script> the mayor?",
                "answer": "Ada Brook",
                "baseline_answer": "Bob",
                "baseline_correct": False,
                "candidate_answer": "Ada Brook",
                "candidate_correct": True,
            }
        ],
        "paired": {
            "new": {
                "items": 4,
                "both_right": 1,
                "both_wrong": 1,
                "only_baseline": 0,
                "only_candidate": 2,
                "mcnemar_p": 0.5,
            }
        },
        "groups": {
            "baseline": {"cloze/new": {"items": 4, "correct": 1, "accuracy": 0.25}},
            "candidate": {"cloze/new": {"items": 4, "correct": 3, "accuracy": 0.75}},
        },
        "bias": {
            "baseline": {"by_bias_type": {"age": {"pairs": 2, "stereo_share": 0.5}}},
            "candidate": {"by_bias_type": {"age": {"pairs": 2, "stereo_share": 1.0}}},
        },
    }


def test_the_contract_is_checked():
    assert validate_report(sample_report()) == []
    broken = sample_report()
    del broken["candidate"]["metrics"]["ppl_old"]
    broken["comparison"]["fuar"] = float("nan")
    broken["schema"] = 2
    del broken["uri"]
    assert validate_report(broken) == [
        "schema is 2, expected 1",
        "candidate.metrics.ppl_old: missing",
        "comparison.fuar: nan is not a number or null",
        "uri: missing",
    ]
    assert validate_report([]) == ["report is a list, not a JSON object"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_chart_is_a_png_of_every_version():
    history = [
        {"version_id": IDS[0], "metrics": metrics(new_knowledge_acc=0.1, ppl_old=9.0)},
        {"version_id": IDS[1], "metrics": BASE, "role": "baseline"},
        {"version_id": IDS[2], "metrics": CAND, "role": "candidate"},
    ]
    png = render_chart(history, title="test")
    assert png_size(png) == (1300, 750)
    assert png.endswith(b"IEND\xaeB`\x82")
    # One version, nothing measured at all: still a chart, not an error.
    assert png_size(render_chart([{"version_id": IDS[0], "metrics": metrics()}]))[0] == 1300


def test_the_page_shows_the_metric_table_and_escapes_text():
    page = render_html(sample_report(), chart_png=b"\x89PNG fake")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert DECISION_MARKER in page and 'id="decision"' in page
    for key in METRIC_KEYS:
        assert METRIC_INFO[key].label in page
    assert '<table class="metrics">' in page
    assert "25.0%" in page and "75.0%" in page and "+50.0 pt" in page  # new knowledge
    assert "40.50" in page and "20.00" in page  # perplexity, new text
    assert "undefined (nothing gained, but items were forgotten: fails)" in page
    assert "no old world-fact items" in page
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "data:image/png;base64," in page and 'href="metrics.png"' in page
    assert 'href="report.json"' in page and f"file:///s/models/{IDS[2]}" in page


def test_the_template_escapes_every_text_field_of_the_report():
    """Text from the report can carry markup (a crawled question, a config value, a URI); the
    autoescaping template shows it as text, in element content and in attributes alike."""
    evil = '<img src=x onerror="alert(1)">'
    report = sample_report()
    report["facts"][0].update(answer=evil, baseline_answer=evil, group=evil)
    report["counts"]["unmeasured"] = {"ppl_old": evil}
    report["config"] = {"note": evil}
    report["candidate"]["uri"] = f'file:///s/"><script>x</script>{evil}'
    report["groups"]["candidate"][evil] = {"items": 1, "accuracy": 1.0}
    report["bias"]["candidate"]["by_bias_type"][evil] = {"pairs": 1, "stereo_share": 0.5}
    report["created_at"] = evil
    page = render_html(report)
    assert "<img src=x" not in page and "<script>" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert 'href="file:///s/&#34;&gt;&lt;script&gt;x&lt;/script&gt;' in page
    # What the page itself is made of is not escaped: its CSS, the decision marker, the chart.
    assert DECISION_MARKER in page and "td.num{text-align:right" in page
    assert "data:image/png;base64," not in page  # no chart given, no image


def test_deltas_follow_each_metric_direction():
    assert format_delta("new_knowledge_acc", 0.25, 0.75) == ("+50.0 pt", "good")
    assert format_delta("ppl_old", 10.0, 11.0) == ("+1.00 (+10.0%)", "bad")
    assert format_delta("crows_stereo_share", 0.6, 0.55)[1] == "good"  # closer to 0.5
    assert format_delta("crows_stereo_share", 0.5, 0.4)[1] == "bad"
    assert format_delta("latency_p95_ms", 30.0, None) == ("n/a", "same")
    assert format_value("retention_acc", None) == "n/a"
    assert format_value("latency_p50_ms", 1234.5) == "1,234.5 ms"
