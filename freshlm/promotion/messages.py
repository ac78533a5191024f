"""Slack messages of the promotion gate, in the conventions of :mod:`freshlm.alerts.messages`.

* :func:`promotion_summary` — the candidate passed and is production now: each rule's observed
  value against its threshold, the metric table (candidate vs the production it replaced), the
  links, and how to undo it.
* :func:`rejection_alert` — the candidate failed: the failed rules with observed vs threshold
  and why, the metric table (candidate vs production), the rules that passed, links to the
  evaluation report and the Airflow task log, and what to do next.
* :func:`rollback_notice` — production was rolled back: from, to, who, why.

Links and URL buttons open console pages (the report as the console serves it, the Roll back
form, the models page) and the Airflow task log, clickable on any store backend; fixed phrases
come from :mod:`freshlm.alerts.texts` in the configured alert language.

Same limits as every FreshLM alert (at most 50 blocks, 3000 characters per section, 150 per
header, 10 fields of 2000; fallback text under 3000) and every dynamic string escaped for
mrkdwn. Building a message does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from freshlm.alerts.blocks import (
    MAX_SECTION_CHARS,
    MAX_TEXT_CHARS,
    actions,
    button,
    clip,
    esc,
    fields,
    fit,
    header,
    section,
    sections,
)
from freshlm.alerts.links import models_url, rollback_url
from freshlm.alerts.messages import SlackMessage
from freshlm.alerts.pages import stored_file_page
from freshlm.alerts.texts import t
from freshlm.promotion.rules import Decision, RuleResult

# (metric key, label, how the change is shown: "diff" = candidate - production, "rel" = %)
METRIC_ROWS: tuple[tuple[str, str, str], ...] = (
    ("new_knowledge_acc", "new-knowledge acc", "diff"),
    ("retention_acc", "retention acc", "diff"),
    ("world_new_acc", "world acc (new)", "diff"),
    ("world_old_acc", "world acc (old)", "diff"),
    ("world_new_said_acc", "world facts said (new)", "diff"),
    ("world_old_said_acc", "world facts said (old)", "diff"),
    ("general_said_acc", "general knowledge said", "diff"),
    ("ppl_new", "perplexity new text", "rel"),
    ("ppl_old", "perplexity old text", "rel"),
    ("crows_stereo_share", "CrowS stereotype share", "diff"),
    ("latency_p50_ms", "latency p50 (ms)", "rel"),
    ("latency_p95_ms", "latency p95 (ms)", "rel"),
    ("gen_tokens_per_s", "generation tokens/s", "rel"),
)
MAX_EXTRA_METRICS = 10
MAX_COUNTS_SHOWN = 10
MAX_REASON_CHARS = 1500


def report_page_url(report: Mapping[str, Any]) -> str | None:
    """The evaluation report's page as the console serves it (``<report>/report.html``); None
    without a uri or for a report outside the configured store."""
    uri = report.get("uri")
    if not isinstance(uri, str) or not uri:
        return None
    return stored_file_page(uri.rstrip("/") + "/report.html")


def short_id(version_id: str | None) -> str:
    """The first 12 characters of a version id (as in headers), or ``nothing``."""
    return version_id[:12] if version_id else "nothing"


def metric_table(report: Mapping[str, Any]) -> str:
    """The candidate's metrics next to production's, as a monospace table (mrkdwn code
    block): metric, candidate, production, change (difference for accuracies and shares,
    percent for perplexities, latencies and throughput)."""
    cand = dict(report.get("candidate", {}).get("metrics") or {})
    base = dict(report.get("baseline", {}).get("metrics") or {})
    rows = [(label, cand.get(key), base.get(key), how) for key, label, how in METRIC_ROWS]
    known = {key for key, _, _ in METRIC_ROWS}
    extras = sorted(k for k in set(cand) | set(base) if k not in known)
    rows += [(k, cand.get(k), base.get(k), "diff") for k in extras[:MAX_EXTRA_METRICS]]
    width = max(len("metric"), *(len(clip(str(r[0]), 28)) for r in rows))
    lines = [f"{'metric':<{width}}  {'candidate':>10}  {'production':>10}  {'change':>8}"]
    for label, c, b, how in rows:
        lines.append(
            f"{clip(str(label), 28):<{width}}  {_num(c):>10}  {_num(b):>10}  "
            f"{_change(c, b, how):>8}"
        )
    if len(extras) > MAX_EXTRA_METRICS:
        lines.append(f"… and {len(extras) - MAX_EXTRA_METRICS} more in the report")
    return "```" + esc("\n".join(lines)) + "```"


def promotion_summary(
    report: Mapping[str, Any],
    decision: Decision,
    *,
    move: Any = None,
    actor: str | None = None,
    run_id: str | None = None,
    report_url: str | None = None,
    log_url: str | None = None,
) -> SlackMessage:
    """The message for a candidate that passed the gate and is production now.

    ``move`` is the registry's :class:`~freshlm.registry.AliasMove` (or its dict) of the
    promotion; ``report_url`` defaults to :func:`report_page_url`.
    """
    report_url = report_url or report_page_url(report)
    move_doc = _as_dict(move)
    generation = move_doc.get("generation")
    n = len(decision.results)
    skipped = sum(not r.measured for r in decision.results)
    blocks: list[dict[str, Any]] = [
        header(t("promo.header", version=short_id(decision.candidate))),
        fields(
            [
                (t("promo.production_now"), f"`{esc(decision.candidate)}`"),
                (
                    t("promo.replaced"),
                    f"`{esc(decision.baseline or t('nothing'))}` (now `previous`)",
                ),
                (
                    t("promo.gate"),
                    t("promo.gate_value", n=n) + (t("promo.skipped", n=skipped) if skipped else ""),
                ),
                (t("run"), f"`{esc(run_id or 'n/a')}`"),
                (t("by"), esc(move_doc.get("actor") or actor or "n/a")),
                (t("promo.move"), t("promo.generation", n=generation) if generation else "n/a"),
            ]
        ),
    ]
    blocks += sections(t("promo.rules"), _rule_lines(decision.results))
    table = metric_table(report)
    blocks.append(section(t("promo.metrics") + "\n" + table))
    blocks += _counts(report)
    blocks.append(section(_links(report_url, log_url)))
    blocks += actions(
        [
            button(t("button.open_report"), report_url, style="primary"),
            button(t("button.rollback"), rollback_url(), style="danger")
            if decision.baseline
            else None,
            button(t("button.open_log"), log_url),
        ]
    )
    blocks.append(section(t("promo.misbehaves", previous=esc(decision.baseline or "previous"))))
    text = (
        f"FreshLM promoted {decision.candidate} to production, replacing "
        f"{decision.baseline or 'nothing'}: all {n} gate rules passed. "
        + _compact(decision.results)
        + f" Report: {report_url or 'n/a'} Log: {log_url or 'n/a'}"
    )
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=fit(blocks))


def rejection_alert(
    report: Mapping[str, Any],
    decision: Decision,
    *,
    actor: str | None = None,
    run_id: str | None = None,
    report_url: str | None = None,
    log_url: str | None = None,
    record_uri: str | None = None,
) -> SlackMessage:
    """The alert for a candidate the gate rejected (production unchanged).

    ``record_uri`` is where the decision record was written (shown so people can find it).
    """
    report_url = report_url or report_page_url(report)
    failed = decision.failed
    n = len(decision.results)
    blocks: list[dict[str, Any]] = [
        header(
            t(
                "reject.header",
                version=short_id(decision.candidate),
                failed=len(failed),
                n=n,
            )
        ),
        fields(
            [
                (t("reject.candidate"), f"`{esc(decision.candidate)}`"),
                (t("reject.production"), f"`{esc(decision.baseline or t('nothing'))}`"),
                (t("reject.failed_rules"), esc(", ".join(r.name for r in failed) or t("none"))),
                (t("run"), f"`{esc(run_id or 'n/a')}`"),
                (t("by"), esc(actor or "n/a")),
                (t("reject.rules_file"), f"`{esc(clip(decision.rules_source, 200))}`"),
            ]
        ),
    ]
    blocks += sections(t("reject.failed_title"), _rule_lines(failed, detail=True))
    blocks.append(section(t("reject.metrics") + "\n" + metric_table(report)))
    passed = [r for r in decision.results if r.passed]
    if passed:
        blocks += sections(t("reject.passed"), _rule_lines(passed))
    blocks += _counts(report)
    blocks.append(section(_links(report_url, log_url)))
    # Production did not move, so there is nothing to roll back: the report and the log.
    blocks += actions(
        [
            button(t("button.open_report"), report_url, style="primary"),
            button(t("button.open_log"), log_url),
        ]
    )
    record_url = stored_file_page(record_uri)
    blocks += sections(
        f"*{t('next_steps')}*",
        [
            t("reject.step1"),
            t("reject.step2"),
            t("reject.step3", rules=esc(clip(decision.rules_source, 200))),
            t(
                "reject.kept",
                where=t("reject.kept_at", uri=f"<{record_url}|{esc(short_id(decision.candidate))}>")
                if record_url
                else "",
            ),
        ],
    )
    text = (
        f"FreshLM candidate {decision.candidate} rejected; production stays "
        f"{decision.baseline or 'unset'}. Failed: "
        + "; ".join(
            f"{r.name} {r.observed_text} (must be {r.comparison} {r.threshold_text})"
            for r in failed
        )
        + f". Report: {report_url or 'n/a'} Log: {log_url or 'n/a'}"
    )
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=fit(blocks))


def rollback_notice(result: Mapping[str, Any], *, log_url: str | None = None) -> SlackMessage:
    """The notice for a production rollback; ``result`` is what
    :func:`freshlm.promotion.rollback.rollback_production` returns."""
    to_version = result["to_version"]
    from_version = result["from_version"]
    move = _as_dict(result.get("alias_move"))
    reason = clip(str(result.get("reason") or move.get("reason") or ""), MAX_REASON_CHARS)
    blocks: list[dict[str, Any]] = [
        header(t("rollback.header", version=short_id(to_version))),
        fields(
            [
                (t("promo.production_now"), f"`{esc(to_version)}`"),
                (t("rollback.from"), f"`{esc(from_version)}` (now `previous`)"),
                (t("by"), esc(move.get("actor") or result.get("actor") or "n/a")),
                (t("run"), f"`{esc(result.get('run_id') or 'n/a')}`"),
                (t("rollback.when"), esc(move.get("moved_at") or "n/a")),
                (
                    t("rollback.served_before"),
                    t("yes") if result.get("served_before") else t("no"),
                ),
            ]
        ),
        section(t("rollback.why") + "\n> " + esc(reason).replace("\n", "\n> ")),
    ]
    warnings = []
    if result.get("was_rejected"):
        warnings.append(t("rollback.was_rejected"))
    if not result.get("served_before"):
        warnings.append(t("rollback.never_served"))
    if warnings:
        blocks.append(section("\n".join(warnings)))
    blocks.append(section(_links(None, log_url)))
    blocks += actions(
        [
            button(t("button.models"), models_url(), style="primary"),
            button(t("button.open_log"), log_url),
        ]
    )
    text = (
        f"FreshLM production rolled back from {from_version} to {to_version} by "
        f"{move.get('actor') or result.get('actor') or 'n/a'}: {reason}. Log: {log_url or 'n/a'}"
    )
    return SlackMessage(text=clip(text, MAX_TEXT_CHARS), blocks=fit(blocks))


# --- pieces ------------------------------------------------------------------------------------


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if hasattr(value, "to_dict"):
        return dict(value.to_dict())
    return dict(value)


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return clip(str(value), 10)
    return f"{value:.4g}"


def _change(cand: Any, base: Any, how: str) -> str:
    numeric = (
        isinstance(cand, int | float)
        and isinstance(base, int | float)
        and not isinstance(cand, bool)
        and not isinstance(base, bool)
    )
    if not numeric:
        return "—"
    if how == "rel":
        return f"{(cand - base) / base * 100:+.1f}%" if base else "—"
    return f"{cand - base:+.3f}"


def _rule_lines(results: Sequence[RuleResult], *, detail: bool = False) -> list[str]:
    lines = []
    for r in results:
        if r.passed and not r.measured:
            icon = ":white_circle:"
        elif r.passed:
            icon = ":white_check_mark:"
        else:
            icon = ":red_circle:"
        line = (
            f"{icon} *{esc(r.name)}*: {esc(r.observed_text)} (must be {esc(r.comparison)} "
            f"{esc(r.threshold_text)})"
        )
        if r.optional:
            line += " _optional_"
        if detail or not r.measured:
            line += f"\n      {esc(clip(r.detail, 600))}"
        lines.append(line)
    return lines or ["(none)"]


def _compact(results: Sequence[RuleResult]) -> str:
    return "; ".join(f"{r.name} {r.observed_text}" for r in results) + "."


def _counts(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    counts = report.get("counts")
    if not isinstance(counts, Mapping) or not counts:
        return []
    parts = [
        f"{esc(clip(str(k), 60))}: {esc(clip(str(v), 60))}"
        for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))
        if not isinstance(v, Mapping | list)
    ]
    if not parts:
        return []
    if len(parts) > MAX_COUNTS_SHOWN:
        parts = [*parts[:MAX_COUNTS_SHOWN], f"… {len(parts) - MAX_COUNTS_SHOWN} more"]
    return [section(clip("*Evaluated* " + " · ".join(parts), MAX_SECTION_CHARS))]


def _links(report_url: str | None, log_url: str | None) -> str:
    parts = []
    if report_url:
        parts.append(f":bar_chart: <{report_url}|{t('link.report')}>")
    if log_url:
        parts.append(f":scroll: <{log_url}|{t('link.log')}>")
    return "  ·  ".join(parts) if parts else t("no_links")
