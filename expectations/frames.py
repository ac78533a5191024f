"""The tables the gate validates, built with vectorized pandas (no per-document Python loops
beyond reading the input).

* the **documents** frame: the candidate dataset's rows (train + heldout), contract fields as
  they came, plus derived columns: ``published_at_utc`` (parsed ``published_at``) for the
  window check and ``residual_pii_<type>`` (what the scrubber's detector still finds in
  ``text`` and ``title``) for the PII checks;
* the **sources** frame: one row per source with its volume today, its recent history and the
  ratio of the two, for the flood / dry-source checks;
* the **batch** frame: one row of batch-level rates (duplicate ratio, toxicity rate).

The PII columns are the one per-document Python loop: the scrubber's rules include validators
(Luhn, digit counts, IPv6 parsing) that no regex-only expectation can reproduce, and a regex
alone would flag clock times and order numbers the scrubber rightly leaves. The default
detector (``freshlm.pii.detect_pii``) runs the scrubber only on text its
prefilter matches, a necessary condition of every rule, so most clean documents cost one
regex search. Aggregates live in
their own small frames so that plain built-in expectations can judge them and
every verdict shows in Data Docs next to the row-level ones.
"""

from __future__ import annotations

import gzip
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from expectations.config import GateConfig, GateContext, PIIDetector

DocumentsInput = pd.DataFrame | str | Path | Iterable[Mapping[str, Any]]
PUBLISHED_COLUMN = "published_at_utc"
PII_COLUMN_PREFIX = "residual_pii_"
PII_SCANNED_FIELDS = ("text", "title")
# What the gate reads of the quarantine: its volumes per source and its drops per reason.
QUARANTINE_COLUMNS = ("source", "reason")


def derived_columns(pii_types: Sequence[str]) -> list[str]:
    """The columns :func:`documents_frame` adds to the contract's fields."""
    return [PUBLISHED_COLUMN, *(PII_COLUMN_PREFIX + t for t in pii_types)]


def load_documents(
    docs: DocumentsInput | None, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """``docs`` as a DataFrame: a DataFrame (copied), a ``.jsonl``/``.jsonl.gz`` path, a list of
    such paths, or an iterable of dicts. ``None`` gives an empty frame. With ``columns``, only
    those of them that the documents have (the quarantine: the gate counts it by source and
    reason and never reads its text).

    Values are kept as written: JSON numbers as Python's ``json`` parses them, and string
    columns as Python objects rather than pandas' ``str`` dtype so that the type expectations
    look at each value: a stray number in ``text`` must show as a wrong type, not be coerced.
    """
    if docs is None:
        frame = pd.DataFrame()
    elif isinstance(docs, pd.DataFrame):
        frame = docs[[c for c in docs.columns if c in columns]] if columns else docs
        frame = frame.copy()
    elif isinstance(docs, str | Path):
        frame = _read_jsonl(Path(docs), columns)
    else:
        items = list(docs)
        if items and all(isinstance(i, str | Path) for i in items):
            parts = [_read_jsonl(Path(p), columns) for p in items]
            parts = [p for p in parts if len(p.columns)] or parts
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        else:
            bad = next((i for i in items if not isinstance(i, Mapping)), None)
            if bad is not None:
                raise TypeError(f"documents must be dicts, got a {type(bad).__name__}")
            frame = _from_records(items, columns)
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.StringDtype):
            frame[column] = frame[column].astype(object)
    return frame.reset_index(drop=True)


def _from_records(records: list[Any], columns: Sequence[str] | None) -> pd.DataFrame:
    if columns:
        wanted = tuple(columns)
        present = [c for c in wanted if any(c in r for r in records)]
        records = [{c: r[c] for c in present if c in r} for r in records]
        return pd.DataFrame.from_records(records, columns=present)
    return pd.DataFrame.from_records(records)


def _read_jsonl(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One JSON object per line (blank lines skipped); gzip when the name ends in ``.gz``.

    Parsed with the standard library (one ``json.loads`` per line), which is several times
    faster than ``pd.read_json(lines=True)`` and keeps floats exactly as written.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no documents file at {path}")
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise ValueError(
            f"{path}: not readable as {'gzip ' if path.suffix == '.gz' else ''}JSON lines ({exc})"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not JSON lines ({exc})") from None
    loads = json.loads
    records: list[Any] = []
    # Split on newlines only: str.splitlines would also split inside strings holding U+2028.
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.isspace():
            continue
        try:
            record = loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON lines (line {number}: {exc})") from None
        if not isinstance(record, dict):
            raise ValueError(
                f"{path}: not JSON lines (line {number} is a {type(record).__name__}, "
                "not an object)"
            )
        records.append(record)
    if not records:
        return pd.DataFrame()
    return _from_records(records, columns)


def documents_frame(docs: pd.DataFrame, config: GateConfig) -> pd.DataFrame:
    """The documents frame to validate: ``docs`` plus :func:`derived_columns`."""
    frame = docs.copy()
    if "published_at" in frame.columns:
        raw = frame["published_at"]
        # Only strings are dates here; anything else is a type failure reported elsewhere.
        strings = raw.where(raw.map(lambda v: isinstance(v, str)).astype(bool))
        frame[PUBLISHED_COLUMN] = pd.to_datetime(
            strings, utc=True, format="ISO8601", errors="coerce"
        )
    else:
        frame[PUBLISHED_COLUMN] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    pii_types, detect = config.resolved_pii()
    for pii_type, counts in residual_pii(frame, pii_types, detect).items():
        frame[PII_COLUMN_PREFIX + pii_type] = counts
    return frame


def residual_pii(
    frame: pd.DataFrame, pii_types: Sequence[str], detect: PIIDetector
) -> dict[str, np.ndarray]:
    """Per PII type, how many matches ``detect`` finds in each row's text and title.

    Raises ValueError if the detector reports a type outside ``pii_types`` (the suite would
    have no expectation for it, so it would pass unseen).
    """
    counts = {t: np.zeros(len(frame), dtype=np.int64) for t in pii_types}
    for field in PII_SCANNED_FIELDS:
        if field not in frame.columns:
            continue
        for row, value in enumerate(frame[field].tolist()):
            if not isinstance(value, str) or not value:
                continue
            for pii_type, n in detect(value).items():
                if pii_type not in counts:
                    raise ValueError(
                        f"the PII detector reported type {pii_type!r}, which the gate does not "
                        f"check (known: {', '.join(pii_types)}); add it to pii_types"
                    )
                counts[pii_type][row] += n
    return counts


def _source_counts(frame: pd.DataFrame) -> pd.Series:
    if frame.empty or "source" not in frame.columns:
        return pd.Series(dtype="int64")
    return frame["source"].astype(str).value_counts()


def sources_frame(
    docs: pd.DataFrame, quarantine: pd.DataFrame, config: GateConfig, context: GateContext
) -> pd.DataFrame:
    """One row per source: ``kept``, ``quarantined``, ``volume`` (their sum), ``history_batches``,
    ``history_median`` and ``volume_ratio`` (volume / median; null when the history is shorter
    than ``config.volume_history_min``, so the volume checks skip that source).

    Sources are those in this batch, in ``allowed_sources`` and in the history: a configured
    source that delivered nothing today is a row with volume 0 (a dry source).
    """
    kept = _source_counts(docs)
    dropped = _source_counts(quarantine)
    names = sorted(
        set(kept.index)
        | set(dropped.index)
        | set(context.allowed_sources)
        | set(context.volume_history)
    )
    rows = []
    for source in names:
        history = list(context.volume_history.get(source, ()))[-config.volume_history_window :]
        n_kept, n_dropped = int(kept.get(source, 0)), int(dropped.get(source, 0))
        volume = n_kept + n_dropped
        median = float(statistics.median(history)) if history else None
        ratio = None
        if len(history) >= config.volume_history_min and median is not None:
            # A source whose history is all zeros compares against 1 document, not infinity.
            ratio = volume / max(median, 1.0)
        rows.append(
            {
                "source": source,
                "kept": n_kept,
                "quarantined": n_dropped,
                "volume": volume,
                "history_batches": len(history),
                "history_median": median,
                "volume_ratio": ratio,
            }
        )
    frame = pd.DataFrame.from_records(
        rows,
        columns=[
            "source",
            "kept",
            "quarantined",
            "volume",
            "history_batches",
            "history_median",
            "volume_ratio",
        ],
    )
    frame["volume_ratio"] = frame["volume_ratio"].astype("float64")
    frame["history_median"] = frame["history_median"].astype("float64")
    return frame


def batch_frame(docs: pd.DataFrame, quarantine: pd.DataFrame, config: GateConfig) -> pd.DataFrame:
    """One row of batch-level rates.

    ``duplicate_ratio``: (kept documents repeating an earlier ``content_hash`` + quarantined
    documents whose reason is in ``config.duplicate_reasons``) / (kept + quarantined).
    ``toxicity_rate``: kept documents with ``toxicity >= config.toxic_document_score`` / kept.
    Both are 0 for an empty batch (the row-count check reports that case).
    """
    n_docs, n_dropped = len(docs), len(quarantine)
    kept_duplicates = (
        int(docs["content_hash"].duplicated().sum()) if "content_hash" in docs.columns else 0
    )
    dropped_duplicates = 0
    if n_dropped and "reason" in quarantine.columns:
        reasons = quarantine["reason"].astype(str)
        dropped_duplicates = int(reasons.isin(config.duplicate_reasons).sum())
    delivered = n_docs + n_dropped
    toxic = 0
    if n_docs and "toxicity" in docs.columns:
        scores = pd.to_numeric(docs["toxicity"], errors="coerce")
        toxic = int((scores >= config.toxic_document_score).sum())
    return pd.DataFrame(
        {
            "documents": [n_docs],
            "quarantined": [n_dropped],
            "duplicates": [kept_duplicates + dropped_duplicates],
            "duplicate_ratio": [
                (kept_duplicates + dropped_duplicates) / delivered if delivered else 0.0
            ],
            "toxic_documents": [toxic],
            "toxicity_rate": [toxic / n_docs if n_docs else 0.0],
        }
    )


def quarantine_by_reason(quarantine: pd.DataFrame) -> dict[str, int]:
    """Quarantined documents counted by ``reason`` (``unknown`` when a row has none)."""
    if quarantine.empty:
        return {}
    if "reason" not in quarantine.columns:
        return {"unknown": len(quarantine)}
    reasons = quarantine["reason"].where(quarantine["reason"].notna(), "unknown").astype(str)
    return {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}


def json_safe(value: Any) -> Any:
    """``value`` converted to something ``json.dumps`` accepts (numpy scalars, timestamps)."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
