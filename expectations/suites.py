"""The gate's Great Expectations 1.x suites, as code.

Four suites, each run against one frame from :mod:`expectations.frames`:

=================== ========== ===============================================================
suite               frame      checks
=================== ========== ===============================================================
freshlm_documents   documents  row count, schema (columns, types, not-null, formats, ranges,
                               enumerations), unique ids and content hashes, allowed sources
                               and languages, published dates inside the crawl window
freshlm_text        documents  non-blank text, text length per source kind, residual PII (one
                               expectation per scrubber PII type, on ``residual_pii_<type>``)
freshlm_sources     sources    each source's volume within the band around its history
                               (flood above, dry source below)
freshlm_batch       batch      duplicate ratio, toxicity rate
=================== ========== ===============================================================

``freshlm_text`` is the only suite that reads ``text``, and it runs with no sample values
(:attr:`SuiteSpec.shows_values` false): neither Data Docs nor a Slack alert may ever show a
document's text, which is where residual PII would be. Its failures name documents by id.

Every expectation carries ``severity`` (GX's own field) and the same in ``meta`` together with
``check`` (a name from :data:`expectations.config.CHECKS`) and ``expected`` (the rule in words,
for Slack); its ``description`` — what Data Docs show — is ``[severity] check: expected``.
Built-in expectations only: aggregates are judged on derived frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any, Literal

import great_expectations as gx
from great_expectations.expectations.row_conditions import Column

from expectations.config import GateConfig, GateContext
from expectations.frames import PII_COLUMN_PREFIX, PUBLISHED_COLUMN, derived_columns
from freshlm.documents import DOCUMENT_FIELDS, SPLITS

SUITE_DOCUMENTS = "freshlm_documents"
SUITE_TEXT = "freshlm_text"
SUITE_SOURCES = "freshlm_sources"
SUITE_BATCH = "freshlm_batch"

KINDS = ("news", "sns", "paper")
FrameName = Literal["documents", "sources", "batch"]

# GX type names per contract field. Strings and dicts live in object columns, which GX checks
# value by value; numbers get a numeric dtype, which GX checks as a whole.
_TYPE_NAMES: dict[str, list[str]] = {
    "id": ["str"],
    "source": ["str"],
    "kind": ["str"],
    "url": ["str"],
    "title": ["str"],  # null allowed: map expectations skip nulls
    "text": ["str"],
    "language": ["str"],
    "language_score": ["float", "float64", "int", "int64"],
    "published_at": ["str"],
    "fetched_at": ["str"],
    "author": ["str"],  # null allowed
    "content_hash": ["str"],
    "n_chars": ["int", "int64"],
    "n_words": ["int", "int64"],
    "pii": ["dict"],
    "toxicity": ["float", "float64", "int", "int64"],
    "split": ["str"],
    "shard": ["str"],
    "meta": ["dict"],
}
_NULLABLE = {"title", "author"}
_ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]00:00)$"
_FORMATS: dict[str, tuple[str, str]] = {
    "id": (r"^[0-9a-f]{32}$", "32 lowercase hex digits"),
    "content_hash": (r"^[0-9a-f]{64}$", "a sha256 hex digest"),
    "url": (r"^https?://\S+$", "an http(s) URL"),
    "published_at": (_ISO_UTC, "ISO 8601 UTC"),
    "fetched_at": (_ISO_UTC, "ISO 8601 UTC"),
}
_RANGES: dict[str, tuple[float, float | None]] = {
    "language_score": (0.0, 1.0),
    "toxicity": (0.0, 1.0),
    "n_chars": (0, None),
    "n_words": (0, None),
}


@dataclasses.dataclass(frozen=True)
class SuiteSpec:
    """A suite and how to run it: on which frame, whether results may carry sample values,
    and which column names a row in examples."""

    suite: gx.ExpectationSuite
    frame: FrameName
    shows_values: bool
    index_column: str | None


def build_suites(config: GateConfig, context: GateContext) -> list[SuiteSpec]:
    """The gate's suites for ``config`` and ``context`` (see the module docstring)."""
    return [
        SuiteSpec(_suite(SUITE_DOCUMENTS, _documents(config, context)), "documents", True, "id"),
        SuiteSpec(_suite(SUITE_TEXT, _text(config)), "documents", False, "id"),
        SuiteSpec(_suite(SUITE_SOURCES, _sources(config)), "sources", True, "source"),
        SuiteSpec(_suite(SUITE_BATCH, _batch(config)), "batch", True, None),
    ]


def _suite(name: str, expectations: list[gx.expectations.Expectation]) -> gx.ExpectationSuite:
    # Built whole (not with add_expectation, which needs an active context) so suites can be
    # made and inspected without one.
    return gx.ExpectationSuite(name=name, expectations=expectations)


def _tagger(config: GateConfig) -> Callable[..., dict[str, Any]]:
    """Keyword arguments that tag an expectation with its check, severity and rule in words."""

    def tag(check: str, expected: str, **extra: Any) -> dict[str, Any]:
        severity = config.severity_of(check)
        return {
            "severity": severity,
            "meta": {"check": check, "severity": severity, "expected": expected, **extra},
            "notes": f"**{severity}** · {check}: {expected}",
            "description": f"[{severity}] {check}: {expected}",
        }

    return tag


def _documents(config: GateConfig, context: GateContext) -> list[gx.expectations.Expectation]:
    E, tag = gx.expectations, _tagger(config)
    fields = list(DOCUMENT_FIELDS)
    earliest = context.window_start - timedelta(days=config.late_arrival_days)
    out: list[gx.expectations.Expectation] = [
        E.ExpectTableRowCountToBeBetween(
            min_value=config.min_documents,
            **tag("row_count", f"at least {config.min_documents} document(s)"),
        ),
        E.ExpectTableColumnsToMatchSet(
            # The frame carries the derived columns too; the contract is the rest.
            column_set=[*fields, *derived_columns(config.resolved_pii()[0])],
            exact_match=True,
            **tag("schema", "exactly the contract's fields"),
        ),
    ]
    for field in fields:
        names = _TYPE_NAMES[field]
        out.append(
            E.ExpectColumnValuesToBeInTypeList(
                column=field,
                type_list=names,
                **tag("schema", f"{field} is {' or '.join(sorted(set(names)))}", field=field),
            )
        )
        if field not in _NULLABLE:
            out.append(
                E.ExpectColumnValuesToNotBeNull(
                    column=field, **tag("schema", f"{field} is never null", field=field)
                )
            )
    for field, (regex, meaning) in _FORMATS.items():
        out.append(
            E.ExpectColumnValuesToMatchRegex(
                column=field, regex=regex, **tag("schema", f"{field} is {meaning}", field=field)
            )
        )
    for field, (low, high) in _RANGES.items():
        words = f"{field} >= {low}" if high is None else f"{low} <= {field} <= {high}"
        out.append(
            E.ExpectColumnValuesToBeBetween(
                column=field, min_value=low, max_value=high, **tag("schema", words, field=field)
            )
        )
    out += [
        E.ExpectColumnValuesToBeInSet(
            column="kind", value_set=list(KINDS), **tag("schema", f"kind in {list(KINDS)}")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="split", value_set=list(SPLITS), **tag("schema", f"split in {list(SPLITS)}")
        ),
        E.ExpectColumnValuesToBeUnique(column="id", **tag("unique_ids", "every id once")),
        E.ExpectColumnValuesToBeUnique(
            column="content_hash", **tag("unique_content_hashes", "every content_hash once")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="source",
            value_set=sorted(context.allowed_sources),
            **tag("allowed_sources", f"source in {sorted(context.allowed_sources)}"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="language",
            value_set=sorted(config.allowed_languages),
            **tag("allowed_languages", f"language in {sorted(config.allowed_languages)}"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column=PUBLISHED_COLUMN,
            min_value=earliest.astimezone(UTC),
            max_value=context.window_end.astimezone(UTC),
            strict_max=True,
            **tag(
                "published_in_window",
                f"published_at in [{_iso(earliest)}, {_iso(context.window_end)})"
                f" (the window {_iso(context.window_start)} .. {_iso(context.window_end)},"
                f" catching up at most {config.late_arrival_days} days)",
            ),
        ),
    ]
    return out


def _text(config: GateConfig) -> list[gx.expectations.Expectation]:
    E, tag = gx.expectations, _tagger(config)
    out: list[gx.expectations.Expectation] = [
        E.ExpectColumnValuesToMatchRegex(
            column="text", regex=r"\S", **tag("text_not_empty", "text has a non-blank character")
        )
    ]
    for kind, (low, high) in sorted(config.text_length.items()):
        out.append(
            E.ExpectColumnValueLengthsToBeBetween(
                column="text",
                min_value=low,
                max_value=high,
                row_condition=Column("kind") == kind,
                **tag("text_length", f"{low} to {high} characters for kind {kind}", kind=kind),
            )
        )
    for pii_type in config.resolved_pii()[0]:
        out.append(
            E.ExpectColumnValuesToBeBetween(
                column=PII_COLUMN_PREFIX + pii_type,
                min_value=0,
                max_value=0,
                **tag(
                    "residual_pii",
                    f"no {pii_type} left in text or title (the scrubber's rules)",
                    pii_type=pii_type,
                ),
            )
        )
    return out


def _sources(config: GateConfig) -> list[gx.expectations.Expectation]:
    E, tag = gx.expectations, _tagger(config)
    low, high = config.volume_band
    window = (
        f"median of the last {config.volume_history_window} batches; sources with fewer than "
        f"{config.volume_history_min} are skipped"
    )
    return [
        E.ExpectColumnValuesToBeBetween(
            column="volume_ratio",
            max_value=high,
            **tag("source_flood", f"volume <= {high:g}x the {window}"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="volume_ratio",
            min_value=low,
            **tag("source_dry", f"volume >= {low:g}x the {window}"),
        ),
    ]


def _batch(config: GateConfig) -> list[gx.expectations.Expectation]:
    E, tag = gx.expectations, _tagger(config)
    return [
        E.ExpectColumnMaxToBeBetween(
            column="duplicate_ratio",
            max_value=config.max_duplicate_ratio,
            **tag("duplicate_ratio", f"duplicate ratio <= {config.max_duplicate_ratio:.0%}"),
        ),
        E.ExpectColumnMaxToBeBetween(
            column="toxicity_rate",
            max_value=config.max_toxicity_rate,
            **tag(
                "toxicity_rate",
                f"share of documents with toxicity >= {config.toxic_document_score:g} "
                f"<= {config.max_toxicity_rate:.0%}",
            ),
        ),
    ]


def _iso(when: Any) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
