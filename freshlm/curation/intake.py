"""Intake: raw records (:mod:`freshlm.records`) in, documents with every contract field out.

The first step of the pipeline. Fields curation computes later start with neutral values
(``language="und"``, ``pii={}``, ...), so a document dropped at any step still conforms to the
document contract in quarantine. A record that cannot become a document (no id, no text, a
wrong type) is quarantined as ``intake:malformed`` with what was wrong: the crawlers validate
records, but a shard written by an older crawler must not stop curation (DESIGN invariant 7).
"""

from __future__ import annotations

from typing import Any

from freshlm.curation.steps.base import Doc, DocStep, Drop

_STR_FIELDS = ("id", "source", "kind", "url", "text", "published_at", "fetched_at")


class IntakeStep(DocStep):
    """Turn raw records into documents in place. Counters: ``kind:<kind>``."""

    name = "intake"

    def process(self, doc: Doc) -> Drop | None:
        record: dict[str, Any] = dict(doc)
        problems = [f for f in _STR_FIELDS if not isinstance(record.get(f), str)]
        meta = record.get("meta")
        doc.clear()
        doc.update(
            id=str(record.get("id") or ""),
            source=str(record.get("source") or ""),
            kind=str(record.get("kind") or ""),
            url=str(record.get("url") or ""),
            title=record.get("title") if isinstance(record.get("title"), str) else None,
            text=record.get("text") if isinstance(record.get("text"), str) else "",
            language="und",
            language_score=0.0,
            published_at=str(record.get("published_at") or ""),
            fetched_at=str(record.get("fetched_at") or ""),
            author=record.get("author") if isinstance(record.get("author"), str) else None,
            content_hash="",
            n_chars=0,
            n_words=0,
            pii={},
            toxicity=0.0,
            split="train",
            shard=str(record.get("_shard") or ""),
            meta=meta if isinstance(meta, dict) else {},
        )
        declared = record.get("language")
        if isinstance(declared, str):
            doc["_declared"] = declared.split("-")[0].lower()
        if problems or not doc["id"]:
            return Drop("malformed", f"missing or non-string fields: {problems or ['id']}")
        self.counters["kind:" + doc["kind"]] += 1
        return None
