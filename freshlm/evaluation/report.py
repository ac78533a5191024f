"""The evaluation report: its JSON schema, a readable HTML page and a chart across versions.

A report is published under ``reports/<candidate>/vs-<baseline>/`` (see
:mod:`freshlm.evaluation.evaluate`) with these files:

* ``report.json`` — the machine-readable report (:data:`REPORT_SCHEMA`), described below;
* ``report.html`` — a self-contained page (inline CSS, the chart embedded as a data URI):
  candidate vs baseline per metric with deltas, the forgetting figures, per-group and paired
  comparisons, the world facts before/after, the bias breakdown, the configuration, links.
  It is rendered from the Jinja2 template ``templates/report.html.j2`` with autoescaping, so
  text from the report (a question, an answer) can never inject markup;
* ``metrics.png`` — the chart: each metric across model versions in lineage order;
* ``items.jsonl.gz`` — every item's result for both models (chosen index, scores).

``report.json``::

    {"schema": 1,
     "candidate": {"version_id": str, "metrics": M},
     "baseline":  {"version_id": str, "metrics": M},
     "comparison": {"fuar": float|None, "forgotten": int, "gained": int,
                    "new_knowledge_gain": float, "retention_drop": float,
                    "ppl_old_rise_pct": float, "ppl_new_change_pct": float,
                    "bias_change": float, "latency_p95_change_pct": float,
                    "general_retention_drop": float},
     "counts": {"new": int, "old": int, "world_new": int, "world_old": int,
                "new_texts": int, "new_tokens": int, "old_texts": int, "old_tokens": int,
                "crows_pairs": int, "latency_prompts": int,
                "general": int, "general_screened": int,
                "unmeasured": {metric: why}},
     "config": EvalConfig as a dict,
     "created_at": ISO 8601 UTC, "uri": the report's store URI,
     "facts": [{"id", "group", "span_type", "question", "answer", "choices",
                "baseline_answer", "baseline_correct", "candidate_answer",
                "candidate_correct"}],
     "general": {"base_version", "questions": int, "screened": int,
                 "base_said_acc": 1.0|None, "max_new_tokens", "seconds", "uri",
                 "rows": [{"id", "topic", "question", "answers", "baseline_said",
                           "baseline_correct", "candidate_said", "candidate_correct"}]},
     "controls": {"world_new_wrong_question": {"items": int, "baseline": float|None,
                                               "candidate": float|None}},
     "paired": {"new"|"old"|"world_new"|"world_old"|"general": Paired},
     "groups": {"baseline"|"candidate": {"<kind>/<group>": {"items", "correct", "accuracy"}}},
     "bias": {"baseline"|"candidate": BiasResult}, "latency": {... LatencyResult},
     "perplexity": {"baseline"|"candidate": {"new"|"old": Perplexity}},
     "history": [{"version_id", "metrics": M, "source"}], "timings": {...},
     "files": {"json", "html", "png", "items": URI}}

``M`` has the keys of :data:`~freshlm.evaluation.metrics.METRIC_KEYS`, each a float, or None
when it could not be measured (no items, no text); ``counts["unmeasured"]`` says why. A
comparison figure is None when either side's metric is. Signs: see
:func:`freshlm.evaluation.metrics.compare`. The keys above ``facts`` are the contract the
promotion gate reads (:func:`validate_report` checks them); the rest is for people.

Importing this module is cheap; matplotlib is imported only to draw the chart, headless (the
Agg canvas, no pyplot, so no global backend is touched), and Jinja2 only to render the page.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from freshlm.artifacts import REPORT_JSON
from freshlm.evaluation.metrics import METRIC_KEYS

REPORT_SCHEMA = 1
REPORT_HTML = "report.html"
CHART_PNG = "metrics.png"
ITEMS_JSONL = "items.jsonl.gz"

COMPARISON_KEYS = (
    "fuar",
    "forgotten",
    "gained",
    "new_knowledge_gain",
    "retention_drop",
    "ppl_old_rise_pct",
    "ppl_new_change_pct",
    "bias_change",
    "latency_p95_change_pct",
    "general_retention_drop",
)
DECISION_MARKER = "<!-- freshlm:decision -->"


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    label: str
    better: str  # "higher" | "lower" | "closer to 0.5"
    unit: str
    description: str


METRIC_INFO: dict[str, MetricInfo] = {
    "new_knowledge_acc": MetricInfo(
        "New knowledge", "higher", "", "cloze items from the new held-out documents"
    ),
    "retention_acc": MetricInfo(
        "Retention", "higher", "", "cloze items from older text the model knew"
    ),
    "world_new_acc": MetricInfo(
        "World facts (new)", "higher", "", "facts that appeared or changed recently"
    ),
    "world_old_acc": MetricInfo("World facts (old)", "higher", "", "facts that still hold"),
    "world_new_said_acc": MetricInfo(
        "World facts (new), said",
        "higher",
        "",
        "the new facts' questions asked in the chat template: the answer written contains it",
    ),
    "world_old_said_acc": MetricInfo(
        "World facts (old), said",
        "higher",
        "",
        "the old facts' questions asked in the chat template: the answer written contains it",
    ),
    "general_said_acc": MetricInfo(
        "General knowledge, said",
        "higher",
        "",
        "general questions the base model answered right at v0, asked in the chat template: "
        "the answer written contains the reference or an alias (the base: 100%)",
    ),
    "ppl_new": MetricInfo("Perplexity, new text", "lower", "", "held-out new documents"),
    "ppl_old": MetricInfo(
        "Perplexity, old text", "lower", "", "held-out documents of earlier datasets"
    ),
    "crows_stereo_share": MetricInfo(
        "CrowS-Pairs stereotype share",
        "closer to 0.5",
        "",
        "share of pairs where the more stereotypical sentence is preferred",
    ),
    "latency_p50_ms": MetricInfo("Latency p50", "lower", "ms", "greedy generation per prompt"),
    "latency_p95_ms": MetricInfo("Latency p95", "lower", "ms", "greedy generation per prompt"),
    "gen_tokens_per_s": MetricInfo("Generation speed", "higher", "tokens/s", "greedy, batch 1"),
}

#: The chart's panels: title, metrics, y label, log scale.
PANELS: tuple[tuple[str, tuple[str, ...], str, bool], ...] = (
    (
        "Accuracy",
        (
            "new_knowledge_acc",
            "retention_acc",
            "world_new_acc",
            "world_old_acc",
            "world_new_said_acc",
            "world_old_said_acc",
            "general_said_acc",
        ),
        "accuracy",
        False,
    ),
    ("Perplexity", ("ppl_new", "ppl_old"), "perplexity (log scale)", True),
    ("Social bias (CrowS-Pairs)", ("crows_stereo_share",), "stereotype share", False),
    ("Generation latency", ("latency_p50_ms", "latency_p95_ms"), "ms per prompt", False),
    ("Generation speed", ("gen_tokens_per_s",), "tokens/s", False),
)


# --- schema -----------------------------------------------------------------------------------


def validate_report(doc: Any) -> list[str]:
    """Problems with a report's contract part (empty when it is valid)."""
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        return [f"report is a {type(doc).__name__}, not a JSON object"]
    if doc.get("schema") != REPORT_SCHEMA:
        problems.append(f"schema is {doc.get('schema')!r}, expected {REPORT_SCHEMA}")
    for side in ("candidate", "baseline"):
        part = doc.get(side)
        if not isinstance(part, Mapping):
            problems.append(f"{side}: missing")
            continue
        if not isinstance(part.get("version_id"), str):
            problems.append(f"{side}.version_id: missing")
        metrics = part.get("metrics")
        if not isinstance(metrics, Mapping):
            problems.append(f"{side}.metrics: missing")
            continue
        for key in METRIC_KEYS:
            if key not in metrics:
                problems.append(f"{side}.metrics.{key}: missing")
            elif not _is_number_or_none(metrics[key]):
                problems.append(f"{side}.metrics.{key}: {metrics[key]!r} is not a number or null")
    comparison = doc.get("comparison")
    if not isinstance(comparison, Mapping):
        problems.append("comparison: missing")
    else:
        for key in COMPARISON_KEYS:
            if key not in comparison:
                problems.append(f"comparison.{key}: missing")
            elif not _is_number_or_none(comparison[key]):
                problems.append(f"comparison.{key}: {comparison[key]!r} is not a number or null")
    for key, kind in (("counts", Mapping), ("config", Mapping), ("created_at", str), ("uri", str)):
        if not isinstance(doc.get(key), kind):
            problems.append(f"{key}: missing")
    return problems


def _is_number_or_none(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- formatting -------------------------------------------------------------------------------


def format_value(key: str, value: Any) -> str:
    """A metric value for people: accuracies and shares as percentages."""
    if value is None:
        return "n/a"
    if key.endswith("_acc") or key == "crows_stereo_share":
        return f"{value * 100:.1f}%"
    if key.startswith("ppl_"):
        return f"{value:,.2f}"
    if key.startswith("latency_"):
        return f"{value:,.1f} ms"
    if key == "gen_tokens_per_s":
        return f"{value:,.1f}"
    return f"{value}"


def format_delta(key: str, baseline: Any, candidate: Any) -> tuple[str, str]:
    """``(text, css class)`` of the change from baseline to candidate: ``good``, ``bad`` or
    ``same``, from the metric's better direction."""
    if baseline is None or candidate is None:
        return "n/a", "same"
    delta = candidate - baseline
    info = METRIC_INFO[key]
    if info.better == "closer to 0.5":
        gain = abs(baseline - 0.5) - abs(candidate - 0.5)
    elif info.better == "lower":
        gain = -delta
    else:
        gain = delta
    css = "same" if abs(gain) < 1e-12 else ("good" if gain > 0 else "bad")
    if key.endswith("_acc") or key == "crows_stereo_share":
        text = f"{delta * 100:+.1f} pt"
    else:
        relative = f" ({(candidate / baseline - 1) * 100:+.1f}%)" if baseline else ""
        text = f"{delta:+,.2f}{relative}"
    return text, css


def short_id(version_id: str) -> str:
    return version_id[:8]


# --- the chart --------------------------------------------------------------------------------


def render_chart(history: Sequence[Mapping[str, Any]], *, title: str | None = None) -> bytes:
    """PNG bytes: one panel per metric group (:data:`PANELS`), x = the versions of ``history``
    (``[{"version_id", "metrics", "role"?}]``, lineage order, oldest first). Missing values
    leave gaps; the candidate's column is shaded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if not history:
        raise ValueError("render_chart needs at least one version")
    labels = []
    for entry in history:
        role = entry.get("role")
        labels.append(short_id(str(entry["version_id"])) + (f"\n({role})" if role else ""))
    xs = list(range(len(history)))
    figure = Figure(figsize=(13, 7.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 3).flatten()
    # One style per line of the fullest panel, so overlapping lines stay visible.
    styles = (("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--"), ("X", ":"))
    for ax, (panel_title, keys, ylabel, log_scale) in zip(axes, PANELS, strict=False):
        plotted = False
        top = 0.0
        for key, (marker, line) in zip(keys, styles, strict=False):
            values = [_as_float(entry.get("metrics", {}).get(key)) for entry in history]
            if all(math.isnan(v) for v in values):
                continue
            ax.plot(xs, values, marker=marker, linestyle=line, label=METRIC_INFO[key].label)
            top = max([top, *(v for v in values if not math.isnan(v))])
            plotted = True
        if _is_share(keys):
            ax.set_ylim(-0.02, 1.02)
        if "crows_stereo_share" in keys:
            ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="unbiased (0.5)")
        if log_scale and plotted:
            ax.set_yscale("log")
            plain = FuncFormatter(lambda v, _pos: f"{v:g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
        elif plotted and not _is_share(keys):
            ax.set_ylim(
                0, top * 1.1 or 1.0
            )  # latency and speed: a zero baseline keeps changes honest
        for i, entry in enumerate(history):
            if entry.get("role") == "candidate":
                ax.axvspan(i - 0.4, i + 0.4, color="tab:green", alpha=0.08)
        ax.set_title(panel_title)
        ax.set_ylabel(ylabel)
        ax.set_xticks(xs, labels, fontsize=8)
        ax.set_xlim(-0.5, len(history) - 0.5)
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend(fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
    legend_ax = axes[len(PANELS)]
    legend_ax.axis("off")
    lines = ["Model versions (lineage order)"] + [
        f"{short_id(str(e['version_id']))}  {e['version_id']}"
        + (f"  {e['role']}" if e.get("role") else "")
        for e in history[-12:]
    ]
    legend_ax.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=7.5)
    if title:
        figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _is_share(keys: Sequence[str]) -> bool:
    return all(k.endswith("_acc") or k == "crows_stereo_share" for k in keys)


def _as_float(value: Any) -> float:
    return float(value) if _is_number_or_none(value) and value is not None else math.nan


# --- the page ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f5f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
.good{color:#0a7d28;font-weight:600}.bad{color:#b3261e;font-weight:600}.same{color:#666}
.decision{border:2px dashed #999;padding:.6rem 1rem;background:#fafafa}
code{font-size:.85rem}img{max-width:100%;border:1px solid #eee}
.muted{color:#666;font-size:.88rem}
"""
TEMPLATE = "report.html.j2"
_FACT_KEYS = (
    "question",
    "answer",
    "group",
    "baseline_answer",
    "baseline_correct",
    "candidate_answer",
    "candidate_correct",
    "baseline_said",
    "baseline_said_correct",
    "candidate_said",
    "candidate_said_correct",
)
_PAIRED_KEYS = ("items", "both_right", "both_wrong", "only_baseline", "only_candidate", "mcnemar_p")


@functools.cache
def _environment() -> Any:
    """The Jinja2 environment of ``templates/`` beside this module, autoescaping everything."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: Mapping[str, Any], *, chart_png: bytes | None = None) -> str:
    """The report as one self-contained HTML page (see the module docstring), rendered from
    ``templates/report.html.j2`` with autoescaping: text from the report is always escaped."""
    cand, base = report["candidate"], report["baseline"]
    counts = report.get("counts") or {}
    facts = report.get("facts") or []
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            title=(
                f"FreshLM evaluation: candidate {short_id(cand['version_id'])} vs production "
                f"{short_id(base['version_id'])}"
            ),
            css=_CSS,
            decision_marker=DECISION_MARKER,
            candidate_id=cand["version_id"],
            baseline_id=base["version_id"],
            created_at=report.get("created_at", ""),
            uri=report.get("uri", ""),
            metric_rows=_metric_rows(base["metrics"], cand["metrics"]),
            unmeasured=list((counts.get("unmeasured") or {}).items()),
            comparison_rows=_comparison_rows(report["comparison"]),
            paired_rows=[
                [name, *(p.get(k) for k in _PAIRED_KEYS)]
                for name, p in (report.get("paired") or {}).items()
            ],
            chart_data=base64.b64encode(chart_png).decode("ascii") if chart_png else None,
            fact_rows=[
                {key: fact.get(key) for key in _FACT_KEYS}
                for fact in facts
                if isinstance(fact, Mapping)
            ],
            any_stale=any(fact.get("group") == "stale" for fact in facts),
            general=_general(report),
            control=_control(report),
            group_rows=_group_rows(report.get("groups") or {}),
            bias_rows=_bias_rows(report.get("bias") or {}),
            count_rows=[(k, v) for k, v in counts.items() if k != "unmeasured"],
            config_rows=list((report.get("config") or {}).items()),
            report_json=REPORT_JSON,
            chart_file=CHART_PNG,
            items_file=ITEMS_JSONL,
            model_links=[
                (label, (report.get(side) or {}).get("uri"))
                for side, label in (
                    ("candidate", "candidate model"),
                    ("baseline", "production model"),
                )
                if (report.get(side) or {}).get("uri")
            ],
            store_json=(report.get("files") or {}).get("json"),
        )
    )


def _metric_rows(base: Mapping[str, Any], cand: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for key in METRIC_KEYS:
        info = METRIC_INFO[key]
        b, c = base.get(key), cand.get(key)
        delta, css = format_delta(key, b, c)
        rows.append(
            {
                "label": info.label,
                "description": info.description,
                "baseline": format_value(key, b),
                "candidate": format_value(key, c),
                "delta": delta,
                "css": css,
                "better": info.better,
            }
        )
    return rows


def _comparison_rows(comparison: Mapping[str, Any]) -> list[tuple[str, Any]]:
    fuar = comparison.get("fuar")
    if fuar is not None:
        fuar_text = f"{fuar:.3f}"
    elif comparison.get("forgotten"):
        fuar_text = "undefined (nothing gained, but items were forgotten: fails)"
    else:
        fuar_text = "undefined (nothing gained)"
    rows: list[tuple[str, Any]] = [
        ("forgetting ratio (FUAR-like)", fuar_text),
        ("forgotten items", comparison.get("forgotten")),
        ("gained items", comparison.get("gained")),
    ]
    for key in COMPARISON_KEYS[3:]:
        rows.append((key, _signed(key, comparison.get(key))))
    return rows


def _signed(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2f}%" if "pct" in key else f"{value:+.4f}"


def _control(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The wrong-question control's accuracies, formatted; None when it has no items."""
    control = (report.get("controls") or {}).get("world_new_wrong_question") or {}
    if not control.get("items"):
        return None
    return {
        "items": control["items"],
        "baseline": format_value("world_new_acc", control.get("baseline")),
        "candidate": format_value("world_new_acc", control.get("candidate")),
    }


def _general(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The general-knowledge set for the page: its size, where it came from, and the questions
    on which the two models differ (lost: the baseline right, the candidate wrong)."""
    general = report.get("general")
    if not isinstance(general, Mapping):
        return None
    rows = [row for row in general.get("rows") or [] if isinstance(row, Mapping)]
    changed = [
        {
            "question": row.get("question"),
            "answer": " / ".join(row.get("answers") or []),
            "baseline_said": row.get("baseline_said") or "",
            "baseline_correct": row.get("baseline_correct"),
            "candidate_said": row.get("candidate_said") or "",
            "candidate_correct": row.get("candidate_correct"),
        }
        for row in rows
        if row.get("baseline_correct") != row.get("candidate_correct")
    ]
    return {
        "questions": general.get("questions"),
        "screened": general.get("screened"),
        "base_version": general.get("base_version"),
        "base_said_acc": format_value("general_said_acc", general.get("base_said_acc")),
        "changed": changed,
    }


def _side_by_side(
    base: Mapping[str, Any], cand: Mapping[str, Any], count: str, value: str, metric: str
) -> list[list[Any]]:
    """One row per key of either side: key, its count, baseline and candidate ``value``
    formatted as ``metric``."""
    rows = []
    for key in sorted(set(base) | set(cand)):
        b, c = base.get(key, {}), cand.get(key, {})
        rows.append(
            [
                key,
                b.get(count, c.get(count)),
                format_value(metric, b.get(value)),
                format_value(metric, c.get(value)),
            ]
        )
    return rows


def _group_rows(groups: Mapping[str, Any]) -> list[list[Any]]:
    return _side_by_side(
        groups.get("baseline", {}), groups.get("candidate", {}), "items", "accuracy", "x_acc"
    )


def _bias_rows(bias: Mapping[str, Any]) -> list[list[Any]]:
    if not (bias.get("baseline") and bias.get("candidate")):
        return []
    return _side_by_side(
        bias["baseline"].get("by_bias_type", {}),
        bias["candidate"].get("by_bias_type", {}),
        "pairs",
        "stereo_share",
        "crows_stereo_share",
    )
