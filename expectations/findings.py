"""GX validation results turned into the gate's failures: small, JSON-able, PII-safe.

A failure is a dict::

    {"expectation": "expect_column_values_to_be_unique", "check": "unique_ids",
     "suite": "freshlm_documents", "column": "id", "severity": "critical",
     "observed": "3 of 1200 documents (0.25%)", "expected": "every id once",
     "unexpected_count": 3, "examples": ["4f0c…: '4f0c…'", …]}

``observed`` and ``expected`` are short sentences for people (Slack, logs). ``examples`` holds
at most :data:`MAX_EXAMPLES` strings of at most :data:`MAX_EXAMPLE_CHARS` characters. For the
suite that reads ``text`` the examples are document ids only (GX runs it with
``exclude_unexpected_values``): the text, where residual PII would be, never leaves the dataset.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)

from expectations.frames import json_safe
from expectations.suites import SuiteSpec

MAX_EXAMPLES = 5
MAX_EXAMPLE_CHARS = 120


def failures_of(
    spec: SuiteSpec, validation: ExpectationSuiteValidationResult, frame: pd.DataFrame
) -> list[dict[str, Any]]:
    """The failed expectations of one suite's ``validation`` on ``frame``, in suite order."""
    out = []
    for result in validation.results:
        if result.success:
            continue
        config = result.expectation_config
        column = config.kwargs.get("column")
        error = _exception_message(result)
        raised = error is not None
        if raised and column is not None and column not in frame.columns:
            # A missing column already fails the schema check by name; listing every
            # expectation that could not run on it would bury that one line.
            continue
        meta = config.meta or {}
        unexpected = (result.result or {}).get("unexpected_count")
        out.append(
            {
                "expectation": config.type,
                "check": meta.get("check", "unknown"),
                "suite": spec.suite.name,
                "column": column,
                "severity": meta.get("severity", "critical"),
                "observed": _observed(result, error, _UNITS[spec.frame]),
                "expected": meta.get("expected", config.type),
                "unexpected_count": int(unexpected) if unexpected is not None else None,
                "examples": [] if raised else _examples(spec, result, frame),
            }
        )
    return json_safe(out)


def _exception_message(result: ExpectationValidationResult) -> str | None:
    """The error that kept GX from evaluating the expectation, or None. GX reports it either
    directly or keyed by the metric that raised."""
    info = result.exception_info or {}
    candidates = [info, *(v for v in info.values() if isinstance(v, dict))]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            message = str(candidate.get("exception_message") or "error").strip()
            return message.splitlines()[0] if message else "error"
    return None


_UNITS = {"documents": "documents", "sources": "sources", "batch": "rows"}


def _observed(result: ExpectationValidationResult, error: str | None, unit: str) -> str:
    if error is not None:
        return "could not be evaluated: " + _clip(error)
    details = result.result or {}
    config = result.expectation_config
    if config.type == "expect_table_columns_to_match_set":
        mismatched = (details.get("details") or {}).get("mismatched") or {}
        parts = []
        if mismatched.get("missing"):
            parts.append(f"missing {sorted(mismatched['missing'])}")
        if mismatched.get("unexpected"):
            parts.append(f"unexpected {sorted(mismatched['unexpected'])}")
        return "; ".join(parts) or f"columns {details.get('observed_value')}"
    if "unexpected_count" in details and details.get("element_count") is not None:
        count, total = details["unexpected_count"], details["element_count"]
        percent = details.get("unexpected_percent_total")
        if percent is None:
            percent = 100.0 * count / total if total else 0.0
        return f"{count} of {total} {unit} ({percent:.2f}%)"
    if "observed_value" in details:
        value = details["observed_value"]
        if isinstance(value, float) and config.kwargs.get("column", "").endswith(
            ("_ratio", "_rate")
        ):
            return f"{value:.1%}"
        return _clip(f"{value}")
    return "failed"


def _examples(
    spec: SuiteSpec, result: ExpectationValidationResult, frame: pd.DataFrame
) -> list[str]:
    config = result.expectation_config
    details = result.result or {}
    rows = details.get("partial_unexpected_index_list") or details.get("unexpected_index_list")
    if spec.frame == "batch":
        return []
    if not spec.shows_values:
        # Run with exclude_unexpected_values: GX hands back {index column: [keys...]} only.
        keys = rows[0].get(spec.index_column, []) if rows and isinstance(rows[0], dict) else []
        return [_clip(str(k)) for k in list(keys)[:MAX_EXAMPLES]]
    if spec.frame == "sources":
        names = [row.get("source") for row in rows or [] if isinstance(row, dict)]
        return [_describe_source(frame, name) for name in names[:MAX_EXAMPLES]]
    column = config.kwargs.get("column")
    if rows and isinstance(rows[0], dict):
        examples = []
        for row in rows[:MAX_EXAMPLES]:
            key, value = row.get(spec.index_column), row.get(column)
            examples.append(_clip(f"{key}" if value == key else f"{key}: {value!r}"))
        return examples
    values = details.get("partial_unexpected_list") or []
    return [_clip(repr(v)) for v in values[:MAX_EXAMPLES]]


def _describe_source(frame: pd.DataFrame, source: Any) -> str:
    rows = frame.loc[frame["source"] == source]
    if rows.empty:
        return _clip(str(source))
    row = rows.iloc[0]
    return (
        f"{source}: {int(row['volume'])} docs vs median {row['history_median']:g} of "
        f"{int(row['history_batches'])} batches ({row['volume_ratio']:.1f}x)"
    )


_WHITESPACE = re.compile(r"\s+")


def _clip(text: str) -> str:
    text = _WHITESPACE.sub(" ", text).strip()
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[: MAX_EXAMPLE_CHARS - 1] + "…"
