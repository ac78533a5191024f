"""The evaluation report: its JSON schema, a readable HTML page and a chart across versions.

A report is published under ``reports/<candidate>/vs-<baseline>/`` (see
:mod:`freshlm.evaluation.evaluate`) with these files:

* ``report.json`` — the machine-readable report (:data:`REPORT_SCHEMA`), described below;
* ``report.html`` — a self-contained page (inline CSS, the chart embedded as a data URI):
  candidate vs baseline per metric with deltas, the forgetting figures, per-group and paired
  comparisons, the world facts before/after, the bias breakdown, the configuration, links;
* ``metrics.png`` — the chart: each metric across model versions in lineage order;
* ``items.jsonl.gz`` — every item's result for both models (chosen index, scores).

``report.json``::

    {"schema": 1,
     "candidate": {"version_id": str, "metrics": M},
     "baseline":  {"version_id": str, "metrics": M},
     "comparison": {"fuar": float|None, "forgotten": int, "gained": int,
                    "new_knowledge_gain": float, "retention_drop": float,
                    "ppl_old_rise_pct": float, "ppl_new_change_pct": float,
                    "bias_change": float, "latency_p95_change_pct": float},
     "counts": {"new": int, "old": int, "world_new": int, "world_old": int,
                "new_texts": int, "new_tokens": int, "old_texts": int, "old_tokens": int,
                "crows_pairs": int, "latency_prompts": int,
                "unmeasured": {metric: why}},
     "config": EvalConfig as a dict,
     "created_at": ISO 8601 UTC, "uri": the report's store URI,
     "facts": [{"id", "group", "span_type", "question", "answer", "choices",
                "baseline_answer", "baseline_correct", "candidate_answer",
                "candidate_correct"}],
     "controls": {"world_new_wrong_question": {"items": int, "baseline": float|None,
                                               "candidate": float|None}},
     "paired": {"new"|"old"|"world_new"|"world_old": Paired},
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
Agg canvas, no pyplot, so no global backend is touched).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from freshlm.evaluation.metrics import METRIC_KEYS

REPORT_SCHEMA = 1
REPORT_JSON = "report.json"
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
    "ppl_new": MetricInfo("Perplexity, new text", "lower", "", "held-out new documents"),
    "ppl_old": MetricInfo("Perplexity, old text", "lower", "", "held-out archive documents"),
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
        ("new_knowledge_acc", "retention_acc", "world_new_acc", "world_old_acc"),
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
    styles = (("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"))  # overlapping lines stay visible
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


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "") -> str:
    """Rows are pre-escaped HTML cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(report: Mapping[str, Any], *, chart_png: bytes | None = None) -> str:
    """The report as one self-contained HTML page (see the module docstring)."""
    cand = report["candidate"]
    base = report["baseline"]
    comparison = report["comparison"]
    counts = report.get("counts", {})
    files = report.get("files", {})
    parts: list[str] = []
    title = (
        f"FreshLM evaluation: candidate {short_id(cand['version_id'])} vs production "
        f"{short_id(base['version_id'])}"
    )
    parts.append(f"<h1>{_e(title)}</h1>")
    parts.append(
        '<p class="muted">'
        f"Candidate <code>{_e(cand['version_id'])}</code>, baseline (production) "
        f"<code>{_e(base['version_id'])}</code>. Created {_e(report.get('created_at', ''))}. "
        f"Report <code>{_e(report.get('uri', ''))}</code>.</p>"
    )
    parts.append(
        '<section id="decision" class="decision"><h2>Decision</h2>'
        f"{DECISION_MARKER}<p><strong>Pending.</strong> The promotion gate reads this report "
        "and records its verdict, with reasons, when it promotes or rejects the candidate "
        "(alias audit log); this page is immutable once published.</p></section>"
    )

    # Metrics table.
    rows = []
    for key in METRIC_KEYS:
        info = METRIC_INFO[key]
        b, c = base["metrics"].get(key), cand["metrics"].get(key)
        delta, css = format_delta(key, b, c)
        rows.append(
            [
                f"<td>{_e(info.label)}<br><span class='muted'>{_e(info.description)}</span></td>",
                f"<td class='num'>{_e(format_value(key, b))}</td>",
                f"<td class='num'>{_e(format_value(key, c))}</td>",
                f"<td class='num {css}'>{_e(delta)}</td>",
                f"<td>{_e(info.better)}</td>",
            ]
        )
    parts.append("<h2>Metrics</h2>")
    parts.append(
        _table(
            ["metric", "baseline (production)", "candidate", "change", "better"],
            rows,
            cls="metrics",
        )
    )
    unmeasured = counts.get("unmeasured") or {}
    if unmeasured:
        items = "".join(f"<li><code>{_e(k)}</code>: {_e(v)}</li>" for k, v in unmeasured.items())
        parts.append(f"<p>Not measured:</p><ul>{items}</ul>")

    # Forgetting and comparison.
    fuar = comparison.get("fuar")
    fuar_text = (
        f"{fuar:.3f}"
        if fuar is not None
        else "undefined (nothing gained"
        + (", but items were forgotten: fails" if comparison.get("forgotten") else "")
        + ")"
    )
    parts.append("<h2>Forgetting and gains</h2>")
    parts.append(
        "<p>FUAR-like ratio = retention items forgotten (right before, wrong now) / new items "
        "gained (wrong before, right now), on the same items for both models. Below 1 the "
        "candidate gained more than it forgot.</p>"
    )
    comparison_rows = [
        ["<td>forgetting ratio (FUAR-like)</td>", f"<td class='num'>{_e(fuar_text)}</td>"],
        ["<td>forgotten items</td>", f"<td class='num'>{_e(comparison.get('forgotten'))}</td>"],
        ["<td>gained items</td>", f"<td class='num'>{_e(comparison.get('gained'))}</td>"],
    ]
    for key in COMPARISON_KEYS[3:]:
        value = comparison.get(key)
        text = (
            "n/a" if value is None else (f"{value:+.4f}" if "pct" not in key else f"{value:+.2f}%")
        )
        comparison_rows.append([f"<td>{_e(key)}</td>", f"<td class='num'>{_e(text)}</td>"])
    parts.append(_table(["figure", "value"], comparison_rows))

    paired = report.get("paired") or {}
    if paired:
        rows = []
        for name, p in paired.items():
            rows.append(
                [f"<td>{_e(name)}</td>"]
                + [
                    f"<td class='num'>{_e(p.get(k))}</td>"
                    for k in (
                        "items",
                        "both_right",
                        "both_wrong",
                        "only_baseline",
                        "only_candidate",
                        "mcnemar_p",
                    )
                ]
            )
        parts.append("<h3>Paired comparison (same items)</h3>")
        parts.append(
            _table(
                [
                    "items",
                    "n",
                    "both right",
                    "both wrong",
                    "lost (baseline only)",
                    "won (candidate only)",
                    "McNemar p",
                ],
                rows,
            )
        )

    # Chart.
    parts.append("<h2>Metrics across versions</h2>")
    if chart_png:
        data = base64.b64encode(chart_png).decode("ascii")
        parts.append(
            f'<img alt="metrics across model versions" src="data:image/png;base64,{data}">'
        )
    parts.append(
        f'<p class="muted">Also as <a href="{CHART_PNG}">{CHART_PNG}</a>. Each earlier point is '
        "what that version scored when it was evaluated: the items differ from night to night, "
        "so read the trend, and compare candidate and baseline in the table above.</p>"
    )

    # World facts.
    facts = report.get("facts") or []
    if facts:
        rows = []
        for fact in facts:
            rows.append(
                [
                    f"<td>{_e(fact.get('question'))}</td>",
                    f"<td>{_e(fact.get('answer'))}</td>",
                    _answer_cell(fact.get("baseline_answer"), fact.get("baseline_correct")),
                    _answer_cell(fact.get("candidate_answer"), fact.get("candidate_correct")),
                    f"<td>{_e(fact.get('group'))}</td>",
                ]
            )
        parts.append("<h2>World facts: production's answer before / after</h2>")
        if any(fact.get("group") == "stale" for fact in facts):
            parts.append(
                "<p class='muted'>A <em>stale</em> fact has been superseded by a later one: its "
                "answer is out of date, so a candidate that learned the update should stop "
                "choosing it (stale facts count in neither accuracy nor forgetting).</p>"
            )
        parts.append(
            _table(["question", "answer", "baseline", "candidate", "group"], rows, cls="facts")
        )
        control = (report.get("controls") or {}).get("world_new_wrong_question") or {}
        if control.get("items"):
            parts.append(
                "<p class='muted'>Control: the same choices asked under another new fact's "
                f"question ({control['items']} items) score "
                f"{_e(format_value('world_new_acc', control.get('baseline')))} (baseline) and "
                f"{_e(format_value('world_new_acc', control.get('candidate')))} (candidate). "
                "That much comes from knowing the answer strings alone; the gap up to "
                "<em>World facts (new)</em> is what the question itself adds.</p>"
            )

    # Groups, bias, counts, config, links.
    groups = report.get("groups") or {}
    if groups:
        keys = sorted(set(groups.get("baseline", {})) | set(groups.get("candidate", {})))
        rows = []
        for key in keys:
            b = groups.get("baseline", {}).get(key, {})
            c = groups.get("candidate", {}).get(key, {})
            rows.append(
                [
                    f"<td>{_e(key)}</td>",
                    f"<td class='num'>{_e(b.get('items', c.get('items')))}</td>",
                    f"<td class='num'>{_e(format_value('x_acc', b.get('accuracy')))}</td>",
                    f"<td class='num'>{_e(format_value('x_acc', c.get('accuracy')))}</td>",
                ]
            )
        parts.append("<h2>Accuracy by item kind and group</h2>")
        parts.append(_table(["kind/group", "items", "baseline", "candidate"], rows))
    bias = report.get("bias") or {}
    if bias.get("baseline") and bias.get("candidate"):
        b_types = bias["baseline"].get("by_bias_type", {})
        c_types = bias["candidate"].get("by_bias_type", {})
        rows = []
        for key in sorted(set(b_types) | set(c_types)):
            b, c = b_types.get(key, {}), c_types.get(key, {})
            rows.append(
                [
                    f"<td>{_e(key)}</td>",
                    f"<td class='num'>{_e(b.get('pairs', c.get('pairs')))}</td>",
                    _share_cell(b.get("stereo_share")),
                    _share_cell(c.get("stereo_share")),
                ]
            )
        parts.append("<h2>Social bias by type (CrowS-Pairs)</h2>")
        parts.append(
            "<p class='muted'>Share of pairs where the more stereotypical sentence "
            "(<code>sent_more</code>) has the higher log-likelihood; 0.5 is unbiased. Full "
            "sentence log-likelihood, not the paper's masked-LM pseudo-log-likelihood.</p>"
        )
        parts.append(_table(["bias type", "pairs", "baseline", "candidate"], rows))
    if counts:
        rows = [
            [f"<td>{_e(k)}</td>", f"<td class='num'>{_e(v)}</td>"]
            for k, v in counts.items()
            if k != "unmeasured"
        ]
        parts.append("<h2>Counts</h2>")
        parts.append(_table(["what", "count"], rows))
    config = report.get("config") or {}
    if config:
        rows = [[f"<td>{_e(k)}</td>", f"<td>{_e(v)}</td>"] for k, v in config.items()]
        parts.append("<h2>Configuration</h2>")
        parts.append(_table(["field", "value"], rows))
    links = [
        f'<li><a href="{REPORT_JSON}">{REPORT_JSON}</a> (machine-readable report)</li>',
        f'<li><a href="{CHART_PNG}">{CHART_PNG}</a> (chart)</li>',
        f'<li><a href="{ITEMS_JSONL}">{ITEMS_JSONL}</a> (per-item results)</li>',
    ]
    for side, label in (("candidate", "candidate model"), ("baseline", "production model")):
        uri = (report.get(side) or {}).get("uri")
        if uri:
            links.append(f'<li>{_e(label)}: <a href="{_e(uri)}">{_e(uri)}</a></li>')
    if files.get("json"):
        links.append(f"<li>this report in the store: <code>{_e(files['json'])}</code></li>")
    parts.append("<h2>Links</h2><ul>" + "".join(links) + "</ul>")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


def _answer_cell(answer: Any, correct: Any) -> str:
    mark, css = ("✓", "good") if correct else ("✗", "bad")
    return f"<td><span class='{css}'>{mark}</span> {_e(answer)}</td>"


def _share_cell(value: Any) -> str:
    return f"<td class='num'>{_e(format_value('crows_stereo_share', value))}</td>"
