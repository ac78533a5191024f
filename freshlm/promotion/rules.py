"""The promotion gate's rules and the decision they give on an evaluation report.

The rules live in one YAML file (``freshlm/promotion/rules.yaml``, or the file the caller
passes, e.g. from ``FRESHLM_PROMOTION_RULES``): each names a threshold and whether it may be
missing. :func:`load_rules` reads and validates it into a frozen :class:`PromotionRules`;
a mistake is a :class:`RulesError` naming the file and the field (``rules.retention_drop.
threshold``), so a typo stops the gate before it decides anything.

:func:`decide` applies every rule to an evaluation report and returns a :class:`Decision`
with one :class:`RuleResult` per rule, in a fixed order, each with its observed value, its
threshold and a sentence a person can act on. The candidate passes only if every rule passes.
A figure the report lacks (missing key, ``null`` because there were no items, NaN) fails its
rule, saying so, unless the rule is ``optional``: then it passes as *not measured*.

The report is the evaluation stage's dict (schema 1)::

    {"schema": 1,
     "candidate": {"version_id": str, "metrics": M}, "baseline": {"version_id": str, "metrics": M},
     "comparison": {"new_knowledge_gain": float, "retention_drop": float,
                    "general_retention_drop": float, "ppl_old_rise_pct": float,
                    "bias_change": float, "latency_p95_change_pct": float, ...},
     "counts": {...}, "uri": str}

with ``M`` holding ``new_knowledge_acc``, ``retention_acc``, ``ppl_old``,
``crows_stereo_share``, ``latency_p50_ms``, ``latency_p95_ms``, … (floats or null). Signs: a
positive ``retention_drop`` is forgetting, a positive ``bias_change`` is more stereotyped,
positive ``*_pct`` are rises.

Importing this module is cheap (PyYAML only when a file is loaded), so a DAG file may.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

DEFAULT_RULES_FILE = Path(__file__).resolve().with_name("rules.yaml")
REPORT_SCHEMA = 1
RULES_SCHEMA = 1
LATENCY_PERCENTILES = ("p50", "p95")
# A value equal to its threshold passes; this absorbs float rounding (0.60 - 0.55 < 0.05).
_TOLERANCE = 1e-9

Comparison = Literal[">=", "<="]
Unit = Literal["fraction", "pct"]


class RulesError(ValueError):
    """The rules file is invalid; the message names the file and the field."""


class ReportError(ValueError):
    """The evaluation report is not a schema-1 report; the message says what is wrong."""


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """What a rule checks; fixed in code (only thresholds and optionality are configured)."""

    name: str
    symbol: str
    comparison: Comparison
    unit: Unit
    comparison_key: str
    metric: str
    description: str
    upper_bound: float | None  # largest sensible threshold (fractions: 1)


RULE_SPECS: tuple[RuleSpec, ...] = (
    RuleSpec(
        "new_knowledge_gain",
        "δ",
        ">=",
        "fraction",
        "new_knowledge_gain",
        "new_knowledge_acc",
        "new-knowledge accuracy gain over production",
        1.0,
    ),
    RuleSpec(
        "retention_drop",
        "ε",
        "<=",
        "fraction",
        "retention_drop",
        "retention_acc",
        "retention accuracy drop vs production (forgetting)",
        1.0,
    ),
    RuleSpec(
        "general_retention_drop",
        "ε_g",
        "<=",
        "fraction",
        "general_retention_drop",
        "general_said_acc",
        "drop vs production on the general knowledge the base had (forgetting)",
        1.0,
    ),
    RuleSpec(
        "ppl_old_rise",
        "ρ",
        "<=",
        "pct",
        "ppl_old_rise_pct",
        "ppl_old",
        "old-text perplexity rise vs production",
        None,
    ),
    RuleSpec(
        "bias_change",
        "ε_b",
        "<=",
        "fraction",
        "bias_change",
        "crows_stereo_share",
        "CrowS-Pairs stereotype share rise vs production",
        1.0,
    ),
    RuleSpec(
        "latency_regression",
        "λ",
        "<=",
        "pct",
        "latency_p95_change_pct",  # p95; p50 is computed from the metrics
        "latency_p50_ms",
        "generation latency rise vs production",
        None,
    ),
)
RULE_NAMES: tuple[str, ...] = tuple(s.name for s in RULE_SPECS)
_SPECS = {s.name: s for s in RULE_SPECS}


# --- the rules --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RuleConfig:
    """One rule's setting: its threshold and whether its figure may be missing."""

    threshold: float
    optional: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "optional": self.optional}


@dataclasses.dataclass(frozen=True)
class PromotionRules:
    """The gate's thresholds (see ``rules.yaml`` for why each default is what it is).

    * ``new_knowledge_gain`` (δ): ``comparison.new_knowledge_gain >= δ``.
    * ``retention_drop`` (ε): ``comparison.retention_drop <= ε``.
    * ``general_retention_drop`` (ε_g): ``comparison.general_retention_drop <= ε_g`` (the
      general-knowledge set the base answered right at v0).
    * ``ppl_old_rise`` (ρ, percent): ``comparison.ppl_old_rise_pct <= ρ``.
    * ``bias_change`` (ε_b): ``comparison.bias_change <= ε_b``.
    * ``latency_regression`` (λ, percent): the rise of ``latency_percentile`` latency;
      ``p50`` is computed from the two reports' ``latency_p50_ms``, ``p95`` is
      ``comparison.latency_p95_change_pct``.

    ``source`` says where the rules came from (a path, or ``"(code)"``); it goes into every
    decision record.
    """

    new_knowledge_gain: RuleConfig
    retention_drop: RuleConfig
    general_retention_drop: RuleConfig
    ppl_old_rise: RuleConfig
    bias_change: RuleConfig
    latency_regression: RuleConfig
    latency_percentile: Literal["p50", "p95"] = "p50"
    source: str = "(code)"

    def __post_init__(self) -> None:
        for spec in RULE_SPECS:
            config = getattr(self, spec.name)
            where = f"{self.source}: rules.{spec.name}"
            if not isinstance(config, RuleConfig):
                raise RulesError(f"{where}: expected a RuleConfig, got {type(config).__name__}")
            _check_threshold(config.threshold, spec, f"{where}.threshold")
            if not isinstance(config.optional, bool):
                raise RulesError(f"{where}.optional: must be true or false, not {config.optional}")
        if self.latency_percentile not in LATENCY_PERCENTILES:
            raise RulesError(
                f"{self.source}: rules.latency_regression.percentile: must be one of "
                f"{', '.join(LATENCY_PERCENTILES)}, not {self.latency_percentile!r}"
            )

    def rule(self, name: str) -> RuleConfig:
        if name not in _SPECS:
            raise KeyError(f"no promotion rule {name!r}; the rules are {', '.join(RULE_NAMES)}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """The rules as the YAML's ``rules`` mapping (plus ``source``)."""
        rules = {name: self.rule(name).to_dict() for name in RULE_NAMES}
        rules["latency_regression"]["percentile"] = self.latency_percentile
        return {"schema": RULES_SCHEMA, "rules": rules, "source": self.source}


def _check_threshold(value: object, spec: RuleSpec, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RulesError(f"{where}: must be a number, not {value!r}")
    if not math.isfinite(value):
        raise RulesError(f"{where}: must be a finite number, not {value!r}")
    if value < 0:
        raise RulesError(
            f"{where}: must be at least 0, not {value!r} (a negative threshold would let a "
            "candidate through that is worse than production)"
        )
    if spec.upper_bound is not None and value > spec.upper_bound:
        raise RulesError(
            f"{where}: must be at most {spec.upper_bound:g}, not {value!r} (accuracies and "
            "shares are fractions: 0.05 means 5 points)"
        )
    return float(value)


def rules_from_dict(doc: object, source: str = "(code)") -> PromotionRules:
    """Validate a parsed rules document (the YAML's structure) into :class:`PromotionRules`."""
    if not isinstance(doc, Mapping):
        raise RulesError(f"{source}: expected a mapping with 'schema' and 'rules'")
    unknown = sorted(set(doc) - {"schema", "rules"})
    if unknown:
        raise RulesError(f"{source}: unknown top-level keys {unknown}; expected schema, rules")
    if doc.get("schema", RULES_SCHEMA) != RULES_SCHEMA:
        raise RulesError(
            f"{source}: schema: this FreshLM reads schema {RULES_SCHEMA}, not {doc['schema']!r}"
        )
    rules = doc.get("rules")
    if not isinstance(rules, Mapping):
        raise RulesError(f"{source}: rules: expected a mapping of rule name to settings")
    unknown = sorted(set(rules) - set(RULE_NAMES))
    if unknown:
        raise RulesError(
            f"{source}: rules: unknown rules {unknown}; the rules are {', '.join(RULE_NAMES)}"
        )
    missing = [name for name in RULE_NAMES if name not in rules]
    if missing:
        raise RulesError(
            f"{source}: rules: missing {missing}; every rule must be listed with its threshold "
            f"(see {DEFAULT_RULES_FILE} for the defaults and why)"
        )
    configs: dict[str, Any] = {}
    percentile: Any = "p50"
    for spec in RULE_SPECS:
        raw = rules[spec.name]
        where = f"{source}: rules.{spec.name}"
        if not isinstance(raw, Mapping):
            raise RulesError(f"{where}: expected a mapping with 'threshold', not {raw!r}")
        allowed = {"threshold", "optional"} | (
            {"percentile"} if spec.name == "latency_regression" else set()
        )
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise RulesError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
        if "threshold" not in raw:
            raise RulesError(f"{where}.threshold: missing")
        optional = raw.get("optional", False)
        if not isinstance(optional, bool):
            raise RulesError(f"{where}.optional: must be true or false, not {optional!r}")
        threshold = _check_threshold(raw["threshold"], spec, f"{where}.threshold")
        configs[spec.name] = RuleConfig(threshold=threshold, optional=optional)
        if spec.name == "latency_regression":
            percentile = raw.get("percentile", "p50")
    return PromotionRules(**configs, latency_percentile=percentile, source=source)


def load_rules(path: str | Path | None = None) -> PromotionRules:
    """The rules from ``path`` (default: the packaged ``rules.yaml``), validated.

    Raises :class:`RulesError` naming the file (and field) for a missing file, invalid YAML or
    an invalid value.
    """
    import yaml

    file = Path(path).expanduser() if path else DEFAULT_RULES_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(f"{file}: promotion rules file not found") from None
    except OSError as exc:
        raise RulesError(f"{file}: cannot read the promotion rules ({exc})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{file}: not valid YAML ({exc})") from None
    return rules_from_dict(doc, str(file))


# --- the decision -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RuleResult:
    """One rule applied to one report.

    ``observed`` is the figure compared (None when not measured), ``comparison`` ``">="`` or
    ``"<="`` (``observed <comparison> threshold`` passes), ``unit`` ``"fraction"`` or
    ``"pct"``, ``detail`` the sentence for people (what was compared and why it passed or
    failed).
    """

    name: str
    description: str
    observed: float | None
    threshold: float
    comparison: str
    passed: bool
    detail: str
    unit: str = "fraction"
    optional: bool = False

    @property
    def measured(self) -> bool:
        return self.observed is not None

    @property
    def observed_text(self) -> str:
        return "not measured" if self.observed is None else format_value(self.observed, self.unit)

    @property
    def threshold_text(self) -> str:
        return format_value(self.threshold, self.unit, signed=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RuleResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})


@dataclasses.dataclass(frozen=True)
class Decision:
    """The gate's verdict on one report: every rule's result, in :data:`RULE_NAMES` order."""

    candidate: str
    baseline: str | None
    results: tuple[RuleResult, ...]
    report_uri: str | None = None
    rules_source: str = "(code)"

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def reasons(self) -> list[str]:
        """One line per failed rule: name, observed vs threshold, and the detail."""
        return [
            f"{r.name}: {r.observed_text} (must be {r.comparison} {r.threshold_text}); {r.detail}"
            if r.measured
            else f"{r.name}: {r.detail}"
            for r in self.failed
        ]

    def summary(self) -> str:
        """One line: the verdict and each rule's observed value against its threshold."""
        verdict = "passed" if self.passed else f"failed {len(self.failed)} of {len(self.results)}"
        parts = [
            f"{r.name} {r.observed_text} {r.comparison} {r.threshold_text}"
            f" {'ok' if r.passed else 'FAIL'}"
            for r in self.results
        ]
        return f"promotion gate {verdict}: " + "; ".join(parts)

    def result(self, name: str) -> RuleResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no result for rule {name!r} in this decision")

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "baseline": self.baseline,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
            "failed_rules": [r.name for r in self.failed],
            "reasons": self.reasons,
            "report_uri": self.report_uri,
            "rules_source": self.rules_source,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Decision:
        return cls(
            candidate=doc["candidate"],
            baseline=doc.get("baseline"),
            results=tuple(RuleResult.from_dict(r) for r in doc["results"]),
            report_uri=doc.get("report_uri"),
            rules_source=doc.get("rules_source", "(code)"),
        )


def format_value(value: float, unit: str, *, signed: bool = True) -> str:
    """``+0.080`` for fractions, ``+3.2%`` for percentages (unsigned for thresholds)."""
    if unit == "pct":
        return f"{value:+.1f}%" if signed else f"{value:g}%"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def check_report(report: object) -> Mapping[str, Any]:
    """The report if it is a schema-1 evaluation report with both version ids; otherwise
    :class:`ReportError`. Missing figures are not an error here: their rules fail instead."""
    if not isinstance(report, Mapping):
        raise ReportError(f"an evaluation report is a mapping, not {type(report).__name__}")
    if report.get("schema") != REPORT_SCHEMA:
        raise ReportError(
            f"evaluation report schema {report.get('schema')!r}; the promotion gate reads "
            f"schema {REPORT_SCHEMA}"
        )
    for side in ("candidate", "baseline"):
        part = report.get(side)
        if not isinstance(part, Mapping):
            raise ReportError(f"evaluation report has no '{side}' mapping")
        vid = part.get("version_id")
        if side == "candidate" and (not isinstance(vid, str) or not vid):
            raise ReportError("evaluation report: candidate.version_id must be a version id")
        if side == "baseline" and vid is not None and (not isinstance(vid, str) or not vid):
            raise ReportError("evaluation report: baseline.version_id must be a version id")
        metrics = part.get("metrics")
        if metrics is not None and not isinstance(metrics, Mapping):
            raise ReportError(f"evaluation report: {side}.metrics must be a mapping")
    if report["candidate"]["version_id"] == report["baseline"].get("version_id"):
        raise ReportError(
            f"evaluation report compares {report['candidate']['version_id']} with itself; "
            "evaluate the candidate against the production version"
        )
    comparison = report.get("comparison")
    if comparison is not None and not isinstance(comparison, Mapping):
        raise ReportError("evaluation report: comparison must be a mapping")
    return report


def _figure(container: Mapping[str, Any] | None, key: str, where: str) -> tuple[float | None, str]:
    """``(value, "")`` or ``(None, why it is not usable)``."""
    if container is None or key not in container:
        return None, f"{where}.{key} is missing from the report"
    value = container[key]
    if value is None:
        return None, f"{where}.{key} is null (no items were evaluated)"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, f"{where}.{key} is not a finite number ({value!r})"
    return float(value), ""


def _metric_pair(report: Mapping[str, Any], metric: str) -> str:
    """``"0.620 vs production 0.540"`` when both sides have the metric, else ``""``."""
    cand, _ = _figure(report["candidate"].get("metrics"), metric, "candidate.metrics")
    base, _ = _figure(report["baseline"].get("metrics"), metric, "baseline.metrics")
    if cand is None or base is None:
        return ""
    return f"{metric} {cand:.4g} vs production {base:.4g}"


def _latency(report: Mapping[str, Any], percentile: str) -> tuple[float | None, str, str]:
    """The latency rise in percent at ``percentile``: ``(value, why missing, context)``."""
    metric = f"latency_{percentile}_ms"
    cand, why_c = _figure(report["candidate"].get("metrics"), metric, "candidate.metrics")
    base, why_b = _figure(report["baseline"].get("metrics"), metric, "baseline.metrics")
    context = (
        f"{percentile} {cand:.4g} ms vs production {base:.4g} ms"
        if cand is not None and base is not None
        else ""
    )
    if percentile == "p95":
        value, _ = _figure(report.get("comparison"), "latency_p95_change_pct", "comparison")
        if value is not None:
            return value, "", context
    if cand is None or base is None:
        return None, why_c or why_b, context
    if base <= 0:
        return None, f"baseline.metrics.{metric} is {base:g} ms; a rise cannot be computed", context
    return (cand - base) / base * 100.0, "", context


def _apply(
    spec: RuleSpec, config: RuleConfig, report: Mapping[str, Any], percentile: str
) -> RuleResult:
    description = f"{spec.description} ({spec.symbol}, {spec.comparison} "
    description += format_value(config.threshold, spec.unit, signed=False) + ")"
    if spec.name == "latency_regression":
        description = f"{percentile} {description}"
        observed, why, context = _latency(report, percentile)
    else:
        observed, why = _figure(report.get("comparison"), spec.comparison_key, "comparison")
        context = _metric_pair(report, spec.metric)
    common = {
        "name": spec.name,
        "description": description,
        "threshold": config.threshold,
        "comparison": spec.comparison,
        "unit": spec.unit,
        "optional": config.optional,
    }
    if observed is None:
        if config.optional:
            detail = f"not measured: {why}; the rule is optional, so it does not block promotion"
        else:
            detail = (
                f"not measured: {why}; a required rule fails without its figure (fix the "
                "evaluation, or mark the rule optional in the rules file)"
            )
        return RuleResult(observed=None, passed=config.optional, detail=detail, **common)

    tolerance = _TOLERANCE * max(1.0, abs(config.threshold))
    if spec.comparison == ">=":
        passed = observed >= config.threshold - tolerance
    else:
        passed = observed <= config.threshold + tolerance
    shown = format_value(observed, spec.unit)
    limit = format_value(config.threshold, spec.unit, signed=False)
    if passed and spec.comparison == ">=":
        verdict = f"{shown} meets the required {limit}"
    elif passed:
        verdict = f"{shown} is within the limit {limit}"
    elif spec.comparison == ">=":
        verdict = f"{shown} is below the required {limit}"
    else:
        verdict = f"{shown} exceeds the limit {limit}"
    detail = f"{context}: {verdict}" if context else verdict
    return RuleResult(observed=observed, passed=passed, detail=detail, **common)


def decide(report: Mapping[str, Any], rules: PromotionRules | None = None) -> Decision:
    """Apply every rule (default: :func:`load_rules` ``()``) to ``report``.

    Raises :class:`ReportError` if ``report`` is not a schema-1 report with a candidate and a
    baseline; a figure missing from a valid report fails (or, if optional, skips) its rule.
    """
    check_report(report)
    if rules is None:
        rules = load_rules()
    results = tuple(
        _apply(spec, rules.rule(spec.name), report, rules.latency_percentile) for spec in RULE_SPECS
    )
    uri = report.get("uri")
    return Decision(
        candidate=report["candidate"]["version_id"],
        baseline=report["baseline"].get("version_id"),
        results=results,
        report_uri=uri if isinstance(uri, str) and uri else None,
        rules_source=rules.source,
    )
