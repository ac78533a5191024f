"""The raw record: what every spider emits, one JSON object per crawled document.

Every raw shard (``raw/<source>/<window>/part-*.jsonl.gz``) holds these records; curation reads
nothing else. The schema is checked by :class:`crawlers.pipelines.ValidateRecordPipeline`; a
record that fails goes to the shard's quarantine file with the reason, never away.

Fields:

============== ========== ================================================================
field           type       meaning
============== ========== ================================================================
id              str        stable id: ``sha256(source + ":" + native_id)[:32]``; the same
                           document crawled twice gets the same id
source          str        the source's name in the sources file (e.g. ``tessford-courier``)
kind            str        ``news`` | ``sns`` | ``paper``
url             str        canonical http(s) URL of the document
title           str|null   headline / paper title; null for SNS posts
text            str        plain text (HTML stripped), non-empty
language        str|null   ISO 639-1 code if the source states it, else null
published_at    str        ISO 8601 UTC (``2026-11-02T08:15:00Z``)
fetched_at      str        ISO 8601 UTC, when the crawler fetched it
author          str|null   a handle or byline (``@mira@tessford.social``, ``Dana Whitfield``)
meta            object     source-specific metadata (feed URL, hashtags, categories, ...)
============== ========== ================================================================
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

KINDS = ("news", "sns", "paper")

RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "FreshLM raw record",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id",
        "source",
        "kind",
        "url",
        "title",
        "text",
        "language",
        "published_at",
        "fetched_at",
        "author",
        "meta",
    ],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "source": {"type": "string", "minLength": 1, "maxLength": 200},
        "kind": {"enum": list(KINDS)},
        "url": {"type": "string", "pattern": "^https?://", "maxLength": 4000},
        "title": {"type": ["string", "null"], "maxLength": 2000},
        "text": {"type": "string", "minLength": 1},
        "language": {"type": ["string", "null"], "pattern": "^[a-z]{2,3}(-[A-Za-z0-9]+)?$"},
        "published_at": {
            "type": "string",
            "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$",
        },
        "fetched_at": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"},
        "author": {"type": ["string", "null"], "maxLength": 500},
        "meta": {"type": "object"},
    },
}


def record_id(source: str, native_id: str) -> str:
    """The stable id of a document: the same source and native id always give the same id."""
    return hashlib.sha256(f"{source}:{native_id}".encode()).hexdigest()[:32]


def iso_utc(when: datetime) -> str:
    """``when`` as ISO 8601 UTC with a ``Z``; naive datetimes are refused (ambiguous)."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: a timezone is required")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(name: str, value: str, error: type[Exception] = ValueError) -> datetime:
    """Parse an ISO 8601 time given as argument ``name``; naive values are taken as UTC.

    Raises ``error`` with a message naming the argument and the accepted form.
    """
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise error(
            f"{name}={value!r}: expected an ISO 8601 time like 2026-11-02T00:00:00Z"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def make_record(
    *,
    source: str,
    kind: str,
    native_id: str,
    url: str,
    text: str,
    published_at: datetime,
    fetched_at: datetime,
    title: str | None = None,
    language: str | None = None,
    author: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a raw record with the stable id; spiders call this and yield the result."""
    return {
        "id": record_id(source, native_id),
        "source": source,
        "kind": kind,
        "url": url,
        "title": title,
        "text": text,
        "language": language,
        "published_at": iso_utc(published_at),
        "fetched_at": iso_utc(fetched_at),
        "author": author,
        "meta": dict(meta or {}),
    }


class QuarantineItem(dict):
    """Something a spider fetched but could not turn into a record, kept with the reason.

    Keys: ``reason`` (a short machine-readable kind, e.g. ``malformed_xml``, ``encoding``,
    ``too_large``, ``opted_out`` is NOT one: opted-out posts are skipped and only counted),
    ``detail`` (a human sentence), ``url``, ``raw`` (the offending bytes as text, truncated to
    64 KiB) and ``source``. Pipelines route it to the shard's quarantine file and count it.
    """

    @classmethod
    def of(
        cls, *, reason: str, detail: str, url: str, source: str, raw: str | bytes = ""
    ) -> QuarantineItem:
        if isinstance(raw, bytes):
            raw = raw[:65536].decode("utf-8", errors="replace")
        return cls(reason=reason, detail=detail, url=url, source=source, raw=raw[:65536])
