"""What the gate is parametrized by: thresholds (:class:`GateConfig`) and the batch's situation
(:class:`GateContext`).

Both are plain frozen dataclasses with no Great Expectations import, so a DAG file can build them
(or validate UI Params against them) without paying GX's import time (DESIGN invariant 5).

Severity: every check has a name (the ``CHECKS`` keys) and a default severity. ``critical``
quarantines the whole batch and publishes nothing; ``warning`` publishes and alerts. An operator
can move a check between the two with ``GateConfig.severities``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Literal

Severity = Literal["critical", "warning"]
# text -> {PII type: matches}; the scrubber's own detection, so the gate finds what it removes.
PIIDetector = Callable[[str], Mapping[str, int]]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning")

# Check name -> (default severity, what it protects). The names are stable: they appear in each
# expectation's ``meta["check"]``, in GateResult.failures and in Slack.
CHECKS: Mapping[str, tuple[Severity, str]] = MappingProxyType(
    {
        "row_count": ("critical", "the batch has documents at all"),
        "schema": ("critical", "contract fields present, with their types, formats and ranges"),
        "text_not_empty": ("critical", "every document has non-blank text"),
        "text_length": ("warning", "text length within the bounds of its source kind"),
        "unique_ids": ("critical", "document ids are unique"),
        "unique_content_hashes": ("critical", "no exact duplicate left after dedup"),
        "allowed_sources": ("critical", "every document comes from a configured source"),
        "allowed_languages": ("warning", "every document is in a language we train on"),
        "residual_pii": ("critical", "no PII left after scrubbing (the scrubber's own patterns)"),
        "toxicity_rate": ("critical", "share of toxic documents below the threshold"),
        "duplicate_ratio": ("critical", "share of duplicates in what the crawl delivered"),
        "source_flood": ("critical", "no source delivers far more than its recent history"),
        "source_dry": ("warning", "no source delivers far less than its recent history"),
        "published_in_window": (
            "critical",
            "published dates inside the crawl window (or a few days late: catch-up)",
        ),
    }
)

_DEFAULT_TEXT_LENGTH: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        # Characters of curated text. Generous on purpose: these catch truncation and
        # concatenation bugs, not the odd long article (that is curation's quality filter's job).
        "news": (200, 200_000),
        "sns": (5, 10_000),
        "paper": (100, 200_000),
    }
)


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gate. Defaults suit the nightly FreshLM batch.

    ``text_length``: kind -> (min, max) characters of ``text``, both inclusive.
    ``allowed_languages``: ISO 639-1 codes a document may carry (``und``: curation keeps texts
    too short to identify).
    ``toxic_document_score``: a document is *toxic* when its ``toxicity`` is at least this.
    ``max_toxicity_rate``: the largest allowed share of toxic documents in the batch.
    ``max_duplicate_ratio``: the largest allowed share of duplicates among the documents the
    crawl delivered: kept documents repeating a ``content_hash`` plus those curation dropped
    with a reason in ``duplicate_reasons``.
    ``duplicate_reasons``: quarantine reasons that count as duplicates. Within-batch ones only
    by default: re-crawling what was published before is not a flood.
    ``volume_band``: (low, high) multiples of a source's median volume over its recent history;
    a source outside the band is a *dry source* (below) or a *flood* (above).
    ``volume_history_min``: fewer published batches of history than this, and the volume checks
    skip the source (too little to know what normal is).
    ``volume_history_window``: how many of the most recent batches make the median.
    ``min_documents``: the smallest batch worth publishing.
    ``late_arrival_days``: how far before the window a document's ``published_at`` may lie.
    A crawl catches up on what an earlier night could not read (a feed served broken, a
    source down): those items are new to every published dataset and belong in this batch.
    Anything older, or anything dated at or after the window's end (a clock or parsing bug),
    fails ``published_in_window``.
    ``pii_types`` / ``pii_detector``: the PII types checked and a function text -> {type:
    count}. ``None`` (the default) means the scrubber's own: its ``PLACEHOLDERS`` types and its
    ``detect_pii`` (``freshlm.pii``: ``scrub``'s counts, run where the scrubber's
    combined prefilter matches), so the gate applies to the output exactly the patterns,
    prefilters and validators (Luhn, digit counts, IPv6 parsing) the scrubber uses.
    Tests may pass their own.
    ``severities``: check name -> severity, overriding the defaults in :data:`CHECKS`.
    """

    text_length: Mapping[str, tuple[int, int]] = dataclasses.field(
        default_factory=lambda: dict(_DEFAULT_TEXT_LENGTH)
    )
    allowed_languages: tuple[str, ...] = ("en", "ko", "und")
    toxic_document_score: float = 0.1
    max_toxicity_rate: float = 0.02
    max_duplicate_ratio: float = 0.3
    duplicate_reasons: tuple[str, ...] = ("dedup:exact", "dedup:near")
    volume_band: tuple[float, float] = (0.2, 5.0)
    volume_history_min: int = 3
    volume_history_window: int = 7
    min_documents: int = 1
    late_arrival_days: int = 7
    pii_types: tuple[str, ...] | None = None
    pii_detector: PIIDetector | None = None
    severities: Mapping[str, Severity] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        for kind, bounds in self.text_length.items():
            if len(bounds) != 2 or not 0 <= bounds[0] <= bounds[1]:
                problems.append(f"text_length[{kind!r}]={bounds!r}: need (min, max), 0<=min<=max")
        if not self.allowed_languages:
            problems.append("allowed_languages is empty")
        for name in ("toxic_document_score", "max_toxicity_rate", "max_duplicate_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name}={getattr(self, name)!r}: need a share from 0 to 1")
        low, high = self.volume_band
        if not 0.0 <= low < high:
            problems.append(f"volume_band={self.volume_band!r}: need (low, high), 0<=low<high")
        if self.volume_history_min < 1 or self.volume_history_window < self.volume_history_min:
            problems.append("need 1 <= volume_history_min <= volume_history_window")
        if self.min_documents < 0:
            problems.append(f"min_documents={self.min_documents!r}: need >= 0")
        if self.late_arrival_days < 0:
            problems.append(f"late_arrival_days={self.late_arrival_days!r}: need >= 0")
        for check, severity in self.severities.items():
            if check not in CHECKS:
                problems.append(f"severities: unknown check {check!r}; known: {', '.join(CHECKS)}")
            elif severity not in SEVERITIES:
                problems.append(f"severities[{check!r}]={severity!r}: need one of {SEVERITIES}")
        if (self.pii_types is None) != (self.pii_detector is None):
            problems.append("pii_types and pii_detector go together: give both or neither")
        if self.pii_detector is not None and not callable(self.pii_detector):
            problems.append("pii_detector must be callable: text -> {type: count}")
        if problems:
            raise ValueError("invalid GateConfig: " + "; ".join(problems))

    def severity_of(self, check: str) -> Severity:
        """The severity of ``check`` under this config."""
        return self.severities.get(check, CHECKS[check][0])

    def resolved_pii(self) -> tuple[tuple[str, ...], PIIDetector]:
        """The PII types the gate checks and the detector it applies: configured or the
        scrubber's."""
        if self.pii_types is not None and self.pii_detector is not None:
            return self.pii_types, self.pii_detector
        # Imported here, not at module level: config stays importable on its own (DAG files).
        # detect_pii is scrub's count per type, with scrub skipped where the scrubber's own
        # prefilter (a necessary condition of every rule) rules PII out: same verdicts, and
        # clean text costs one regex search instead of every rule.
        from freshlm.pii import PLACEHOLDERS, detect_pii

        return tuple(PLACEHOLDERS), detect_pii


@dataclasses.dataclass(frozen=True)
class GateContext:
    """The batch's situation: which window it covers, which sources exist, their history.

    ``window_start``/``window_end``: the crawl window, timezone-aware; a document's
    ``published_at`` must lie in ``[start - late_arrival_days, end)`` (see :class:`GateConfig`).
    ``allowed_sources``: source names from the sources file.
    ``volume_history``: source -> volumes of the previous published batches, oldest first. A
    *volume* is what :attr:`GateResult.statistics` reports as ``volume_by_source``: documents
    the source delivered to curation (kept plus quarantined), so a flood that curation mostly
    dropped still shows.
    ``run_name``: names the validation run in Data Docs (the Airflow run id); optional.
    """

    window_start: datetime
    window_end: datetime
    allowed_sources: Sequence[str]
    volume_history: Mapping[str, Sequence[int]] = dataclasses.field(default_factory=dict)
    run_name: str | None = None

    def __post_init__(self) -> None:
        problems = []
        for name in ("window_start", "window_end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                problems.append(f"{name}={value!r}: need a timezone-aware datetime")
        if not problems and not self.window_start < self.window_end:
            problems.append(f"window {self.window_start} .. {self.window_end} is empty")
        if isinstance(self.allowed_sources, str) or not self.allowed_sources:
            problems.append("allowed_sources: need a non-empty list of source names")
        for source, volumes in self.volume_history.items():
            if any(not isinstance(v, int) or v < 0 for v in volumes):
                problems.append(f"volume_history[{source!r}]: need non-negative integers")
        if problems:
            raise ValueError("invalid GateContext: " + "; ".join(problems))
