"""The gate's rules: one validated config, one result per rule with its observed value, and a
clear failure for a figure the report lacks (unless the rule is optional)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from freshlm.promotion.rules import (
    DEFAULT_RULES_FILE,
    RULE_NAMES,
    Decision,
    PromotionRules,
    ReportError,
    RuleConfig,
    RulesError,
    decide,
    load_rules,
    rules_from_dict,
)
from tests.freshlm.promotion.conftest import make_report

DEFAULTS = load_rules()


def write_rules(tmp_path: Path, **changes: dict) -> Path:
    """The packaged rules file with some rules' settings replaced (None removes the rule)."""
    doc = yaml.safe_load(DEFAULT_RULES_FILE.read_text())
    for name, settings in changes.items():
        if settings is None:
            del doc["rules"][name]
        else:
            doc["rules"][name] = settings
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_packaged_rules_are_the_documented_defaults() -> None:
    assert DEFAULTS.new_knowledge_gain == RuleConfig(0.05)
    assert DEFAULTS.retention_drop == RuleConfig(0.05)
    assert DEFAULTS.ppl_old_rise == RuleConfig(5.0)
    assert DEFAULTS.bias_change == RuleConfig(0.03)
    assert DEFAULTS.latency_regression == RuleConfig(50.0)
    assert DEFAULTS.latency_percentile == "p50"
    assert DEFAULTS.source == str(DEFAULT_RULES_FILE)
    assert load_rules(None) == DEFAULTS
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.latency_percentile = "p95"  # type: ignore[misc]
    # Every rule's default says why, in a comment inside its block.
    text = DEFAULT_RULES_FILE.read_text()
    for name in RULE_NAMES:
        block = text.split(f"  {name}:\n", 1)[1].split("threshold:", 1)[0]
        assert block.strip().startswith("#") and len(block) > 100, name


def test_another_rules_file_can_be_loaded(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        bias_change={"threshold": 0.1, "optional": True},
        latency_regression={"threshold": 15, "percentile": "p95"},
    )
    rules = load_rules(str(path))
    assert rules.bias_change == RuleConfig(0.1, optional=True)
    assert rules.latency_regression == RuleConfig(15.0) and rules.latency_percentile == "p95"
    assert rules.source == str(path)
    doc = rules.to_dict()
    assert rules_from_dict({"schema": doc["schema"], "rules": doc["rules"]}) == (
        dataclasses.replace(rules, source="(code)")
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"retention_drop": {"threshold": "two"}}, "rules.retention_drop.threshold: must be a num"),
        ({"retention_drop": {"threshold": True}}, "rules.retention_drop.threshold: must be a num"),
        ({"retention_drop": {"threshold": -0.1}}, "rules.retention_drop.threshold: must be at le"),
        ({"retention_drop": {"threshold": 2}}, "rules.retention_drop.threshold: must be at most 1"),
        (
            {"ppl_old_rise": {"threshold": float("nan")}},
            "rules.ppl_old_rise.threshold: must be a f",
        ),
        ({"ppl_old_rise": {}}, "rules.ppl_old_rise.threshold: missing"),
        ({"ppl_old_rise": 5}, "rules.ppl_old_rise: expected a mapping"),
        ({"bias_change": {"threshold": 0.1, "optinal": True}}, "rules.bias_change: unknown keys"),
        ({"bias_change": {"threshold": 0.1, "optional": "no"}}, "rules.bias_change.optional"),
        (
            {"latency_regression": {"threshold": 20, "percentile": "p99"}},
            "rules.latency_regression.percentile: must be one of p50, p95",
        ),
        ({"new_knowledge_gain": None}, "rules: missing ['new_knowledge_gain']"),
        ({"new_knowlege_gain": {"threshold": 0.1}}, "unknown rules ['new_knowlege_gain']"),
    ],
)
def test_invalid_rules_name_the_file_and_field(tmp_path: Path, change: dict, message: str) -> None:
    path = write_rules(tmp_path, **change)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_unreadable_rules_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="promotion rules file not found"):
        load_rules(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(bad)
    bad.write_text("schema: 2\nrules: {}\n")
    with pytest.raises(RulesError, match="schema: this FreshLM reads schema 1"):
        load_rules(bad)
    bad.write_text("- a list\n")
    with pytest.raises(RulesError, match="expected a mapping"):
        load_rules(bad)
    with pytest.raises(RulesError, match=r"\(code\): rules.bias_change.threshold"):
        dataclasses.replace(DEFAULTS, bias_change=RuleConfig(-1.0), source="(code)")


def test_a_good_candidate_passes_every_rule_with_its_observed_value() -> None:
    decision = decide(make_report(), DEFAULTS)
    assert decision.passed and decision.failed == () and decision.reasons == []
    assert [r.name for r in decision.results] == list(RULE_NAMES)
    observed = {r.name: r.observed for r in decision.results}
    assert observed == {
        "new_knowledge_gain": 0.12,
        "retention_drop": 0.01,
        "general_retention_drop": 0.01,
        "ppl_old_rise": 1.94,
        "bias_change": 0.01,
        "latency_regression": pytest.approx(10.0),  # p50: 110 ms vs 100 ms
    }
    nk = decision.result("new_knowledge_gain")
    assert (nk.threshold, nk.comparison, nk.passed) == (0.05, ">=", True)
    assert nk.detail == "new_knowledge_acc 0.62 vs production 0.5: +0.120 meets the required 0.050"
    assert "δ" in nk.description
    latency = decision.result("latency_regression")
    assert latency.detail.startswith("p50 110 ms vs production 100 ms: +10.0% is within")
    assert (decision.candidate, decision.baseline) == ("c" * 32, "b" * 32)
    assert decision.report_uri == "file:///store/reports/r1"
    assert decision.rules_source == str(DEFAULT_RULES_FILE)
    assert "promotion gate passed" in decision.summary()
    assert "retention_drop +0.010 <= 0.050 ok" in decision.summary()


@pytest.mark.parametrize(
    ("rule", "comparison", "metrics", "observed", "words"),
    [
        ("new_knowledge_gain", {"new_knowledge_gain": 0.03}, {}, 0.03, "below the required 0.050"),
        ("retention_drop", {"retention_drop": 0.06}, {}, 0.06, "exceeds the limit 0.050"),
        ("ppl_old_rise", {"ppl_old_rise_pct": 12.5}, {}, 12.5, "exceeds the limit 5%"),
        ("bias_change", {"bias_change": 0.05}, {}, 0.05, "exceeds the limit 0.030"),
        ("latency_regression", {}, {"latency_p50_ms": 180.0}, 80.0, "+80.0% exceeds the limit 50%"),
    ],
)
def test_each_rule_fails_on_its_own(
    rule: str, comparison: dict, metrics: dict, observed: float, words: str
) -> None:
    report = make_report(comparison=comparison, candidate_metrics=metrics)
    decision = decide(report, DEFAULTS)
    assert not decision.passed
    [failed] = decision.failed
    assert failed.name == rule and failed.observed == pytest.approx(observed)
    assert words in failed.detail
    [reason] = decision.reasons
    assert reason.startswith(f"{rule}: {failed.observed_text} (must be {failed.comparison} ")
    assert f"{rule} {failed.observed_text}" in decision.summary() and "FAIL" in decision.summary()


def test_a_value_equal_to_its_threshold_passes_despite_float_rounding() -> None:
    gain = 0.60 - 0.55  # 0.04999999999999993
    assert gain < 0.05
    report = make_report(comparison={"new_knowledge_gain": gain, "retention_drop": 0.02})
    assert decide(report, DEFAULTS).passed
    report = make_report(comparison={"new_knowledge_gain": 0.0499})
    assert not decide(report, DEFAULTS).passed


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (..., "comparison.retention_drop is missing from the report"),
        (None, "comparison.retention_drop is null (no items were evaluated)"),
        (math.nan, "comparison.retention_drop is not a finite number (nan)"),
        ("0.01", "comparison.retention_drop is not a finite number ('0.01')"),
    ],
)
def test_a_missing_figure_fails_its_rule_with_a_clear_detail(value: object, why: str) -> None:
    decision = decide(make_report(comparison={"retention_drop": value}), DEFAULTS)
    [failed] = decision.failed
    assert failed.name == "retention_drop" and failed.observed is None
    assert failed.observed_text == "not measured"
    assert failed.detail.startswith(f"not measured: {why}; a required rule fails")
    assert "mark the rule optional" in failed.detail


def test_an_optional_rule_passes_when_not_measured_but_applies_when_measured() -> None:
    rules = dataclasses.replace(DEFAULTS, bias_change=RuleConfig(0.03, optional=True))
    decision = decide(make_report(comparison={"bias_change": None}), rules)
    bias = decision.result("bias_change")
    assert decision.passed and bias.passed and bias.optional and not bias.measured
    assert "optional, so it does not block promotion" in bias.detail
    decision = decide(make_report(comparison={"bias_change": 0.2}), rules)
    assert [r.name for r in decision.failed] == ["bias_change"]


def test_latency_percentiles() -> None:
    p95 = dataclasses.replace(DEFAULTS, latency_percentile="p95")
    # p95 reads the evaluation's comparison figure ...
    result = decide(make_report(comparison={"latency_p95_change_pct": 60.0}), p95).result(
        "latency_regression"
    )
    assert not result.passed and result.observed == 60.0
    assert result.description.startswith("p95 ")
    # ... and falls back to the metrics when the comparison lacks it.
    report = make_report(comparison={"latency_p95_change_pct": ...})
    assert decide(report, p95).result("latency_regression").observed == pytest.approx(
        (190 - 170) / 170 * 100
    )
    # p50 needs both medians, and a positive baseline.
    report = make_report(candidate_metrics={"latency_p50_ms": None})
    result = decide(report, DEFAULTS).result("latency_regression")
    assert not result.passed and "candidate.metrics.latency_p50_ms is null" in result.detail
    report = make_report(baseline_metrics={"latency_p50_ms": 0.0})
    result = decide(report, DEFAULTS).result("latency_regression")
    assert not result.passed and "a rise cannot be computed" in result.detail
    # Faster is fine.
    report = make_report(candidate_metrics={"latency_p50_ms": 40.0})
    assert decide(report, DEFAULTS).result("latency_regression").observed == pytest.approx(-60.0)


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ([], "a mapping"),
        ({**make_report(), "schema": 2}, "schema 2"),
        ({k: v for k, v in make_report().items() if k != "baseline"}, "no 'baseline'"),
        (make_report(candidate=""), "candidate.version_id"),
        (make_report(candidate="a" * 32, baseline="a" * 32), "with itself"),
        ({**make_report(), "comparison": [1]}, "comparison must be a mapping"),
    ],
)
def test_a_malformed_report_is_refused(report: object, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        decide(report, DEFAULTS)  # type: ignore[arg-type]


def test_the_decision_round_trips_and_uses_the_packaged_rules_by_default() -> None:
    decision = decide(make_report(comparison={"retention_drop": 0.3}))
    assert decision.rules_source == str(DEFAULT_RULES_FILE)
    doc = decision.to_dict()
    assert doc["passed"] is False and doc["failed_rules"] == ["retention_drop"]
    assert [r["name"] for r in doc["results"]] == list(RULE_NAMES)
    assert Decision.from_dict(doc) == decision
    with pytest.raises(KeyError, match="no promotion rule"):
        PromotionRules.rule(DEFAULTS, "speed")
