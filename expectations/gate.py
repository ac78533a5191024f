"""The quality gate: run the suites on a candidate dataset, build Data Docs, give a verdict.

Usage (inside a task; importing this module is cheap, Great Expectations loads on first run)::

    from expectations.gate import run_gate, accept_override
    result = run_gate(docs, GateConfig(), GateContext(window_start=…, window_end=…,
                      allowed_sources=[…], volume_history={…}),
                      quarantine=dropped, data_docs_dir=work / "data_docs")
    if result.severity == "critical" and params["accept_batch"]:
        result = accept_override(result, params["accept_reason"], user=…)
    result.passed        # publish?   result.severity   # alert?

Verdict: ``severity`` is ``critical`` when a critical expectation failed (quarantine the whole
batch, publish nothing), ``warning`` when only warnings failed (publish and alert), else ``ok``.
``passed`` says whether the batch may be published: no critical failure, or an operator's
recorded override.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from expectations.config import GateConfig, GateContext

if TYPE_CHECKING:
    from expectations.frames import DocumentsInput

Verdict = Literal["ok", "warning", "critical"]
MAX_REASON_CHARS = 2000


@dataclasses.dataclass(frozen=True)
class GateResult:
    """What the gate decided, JSON-able via :meth:`to_dict` / :meth:`to_json`.

    ``failures``: see :mod:`expectations.findings` (no document text, ever).
    ``statistics``: ``documents``, ``quarantined``, ``quarantined_by_reason`` (curation's drops),
    ``sources`` (source -> kept, quarantined, volume, history_batches, history_median,
    volume_ratio), ``volume_by_source`` (what the next run's ``GateContext.volume_history``
    should be fed), ``duplicate_ratio``, ``toxicity_rate``, ``window``, ``expectations``
    (evaluated / failed per severity) and ``seconds`` (load, validate, data_docs, total).
    ``data_docs_index``: the built site's ``index.html``; the site is its folder.
    ``override``: ``{"reason", "user", "accepted_at", "severity"}`` once an operator accepted a
    failed batch (:func:`accept_override`), else ``None``.
    """

    passed: bool
    severity: Verdict
    failures: list[dict[str, Any]]
    statistics: dict[str, Any]
    data_docs_index: Path | None
    override: dict[str, Any] | None = None

    @property
    def critical_failures(self) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["severity"] == "critical"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [f for f in self.failures if f["severity"] == "warning"]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["data_docs_index"] = str(self.data_docs_index) if self.data_docs_index else None
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """The inverse of :meth:`to_dict` (a result read back from the store or an XCom)."""
        index = data.get("data_docs_index")
        return cls(
            passed=bool(data["passed"]),
            severity=data["severity"],
            failures=list(data["failures"]),
            statistics=dict(data["statistics"]),
            data_docs_index=Path(index) if index else None,
            override=dict(data["override"]) if data.get("override") else None,
        )


def run_gate(
    docs: DocumentsInput,
    config: GateConfig | None = None,
    context: GateContext | None = None,
    *,
    quarantine: DocumentsInput | None = None,
    data_docs_dir: Path | str,
) -> GateResult:
    """Validate a candidate dataset and build its Data Docs in ``data_docs_dir``.

    ``docs``: the kept documents (train + heldout) as a DataFrame, an iterable of dicts, or a
    ``.jsonl[.gz]`` path or list of paths. ``quarantine``: what curation dropped, same forms,
    each with a ``reason``; it feeds the duplicate ratio, the per-source volumes and the
    "quarantined by reason" counts. ``context`` is required (the window and sources are not
    guessable); ``config`` defaults to :class:`GateConfig`.

    Raises ``ValueError``/``TypeError``/``FileNotFoundError`` for unusable input (a clear
    message, nothing half-built); a batch that merely breaks expectations is a result, not an
    exception.
    """
    # Great Expectations and pandas load here, not at import: DAG files import this module.
    from expectations import docs_site, findings, frames, suites

    if context is None:
        raise TypeError("run_gate needs a GateContext (crawl window, allowed sources)")
    config = config or GateConfig()
    started = time.perf_counter()
    kept = frames.load_documents(docs)
    dropped = frames.load_documents(quarantine, columns=frames.QUARANTINE_COLUMNS)
    tables = {
        "documents": frames.documents_frame(kept, config),
        "sources": frames.sources_frame(kept, dropped, config, context),
        "batch": frames.batch_frame(kept, dropped, config),
    }
    specs = suites.build_suites(config, context)
    loaded = time.perf_counter()

    site = docs_site.DocsSite(Path(data_docs_dir), run_name=context.run_name or "freshlm-gate")
    failures: list[dict[str, Any]] = []
    evaluated = 0
    for spec in specs:
        frame = tables[spec.frame]
        validation = site.validate(spec.suite, spec.frame, frame, _result_format(spec, frame))
        evaluated += len(validation.results)
        failures += findings.failures_of(spec, validation, frame)
    validated = time.perf_counter()
    index = site.build()
    finished = time.perf_counter()

    severity: Verdict = "ok"
    if any(f["severity"] == "critical" for f in failures):
        severity = "critical"
    elif failures:
        severity = "warning"
    batch = tables["batch"].iloc[0]
    sources = tables["sources"]
    statistics = frames.json_safe(
        {
            "documents": len(kept),
            "quarantined": len(dropped),
            "quarantined_by_reason": frames.quarantine_by_reason(dropped),
            "sources": {
                row["source"]: {k: _none_if_nan(v) for k, v in row.items() if k != "source"}
                for row in sources.to_dict(orient="records")
            },
            "volume_by_source": {
                row["source"]: int(row["volume"])
                for row in sources.to_dict(orient="records")
                if row["volume"] > 0
            },
            "duplicate_ratio": float(batch["duplicate_ratio"]),
            "toxicity_rate": float(batch["toxicity_rate"]),
            "window": {"start": _iso(context.window_start), "end": _iso(context.window_end)},
            "expectations": {
                "evaluated": evaluated,
                "failed_critical": sum(f["severity"] == "critical" for f in failures),
                "failed_warning": sum(f["severity"] == "warning" for f in failures),
            },
            "seconds": {
                "load": round(loaded - started, 3),
                "validate": round(validated - loaded, 3),
                "data_docs": round(finished - validated, 3),
                "total": round(finished - started, 3),
            },
        }
    )
    return GateResult(
        passed=severity != "critical",
        severity=severity,
        failures=failures,
        statistics=statistics,
        data_docs_index=index,
    )


def accept_override(
    result: GateResult, reason: str, user: str, *, accepted_at: datetime | None = None
) -> GateResult:
    """``result`` accepted by an operator: ``passed`` becomes true and the acceptance is recorded
    in ``override`` (reason, user, time, the severity that was overridden). Failures and
    severity stay as they were, so the record shows what was accepted.

    ``reason`` and ``user`` must be non-blank; ``reason`` at most :data:`MAX_REASON_CHARS`.
    ``accepted_at`` defaults to now (pass the run's logical date for a reproducible record).
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(
            "accepting a batch that failed the gate needs a reason: say why it is safe to "
            "publish (e.g. 'flood is the festival announcement, checked by hand')"
        )
    if len(reason.strip()) > MAX_REASON_CHARS:
        raise ValueError(
            f"the reason is {len(reason.strip())} characters; at most {MAX_REASON_CHARS}"
        )
    if not isinstance(user, str) or not user.strip():
        raise ValueError("accepting a batch needs the user who accepts it")
    when = accepted_at or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("accepted_at must be timezone-aware")
    return dataclasses.replace(
        result,
        passed=True,
        override={
            "reason": reason.strip(),
            "user": user.strip(),
            "accepted_at": _iso(when),
            "severity": result.severity,
        },
    )


def _result_format(spec: Any, frame: Any) -> dict[str, Any]:
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 10}
    if not spec.shows_values:
        # Keys of offending rows but never their values: the text suite's values are text.
        result_format["exclude_unexpected_values"] = True
    if spec.index_column and spec.index_column in frame.columns:
        result_format["unexpected_index_column_names"] = [spec.index_column]
    return result_format


def _none_if_nan(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    return value


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
