"""Synthetic candidate batches for the gate's tests and timing: clean by default, and small
helpers that break exactly one thing."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from expectations.config import GateConfig, GateContext

WINDOW_START = datetime(2026, 11, 2, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(days=1)
SOURCES = {"tessford-courier": "news", "tessford-social": "sns", "arxiv-cs": "paper"}
_WORDS = [
    *("river", "bridge", "festival", "lantern", "phone", "battery", "warranty", "ferry"),
    *("route", "model", "paper", "probe", "retention", "replay", "drift", "sparse"),
    *("editing", "quiet", "gate", "city", "council", "market", "rain", "harbour"),
]
_LENGTH_WORDS = {"news": 120, "sns": 25, "paper": 90}


def doc(i: int, source: str = "tessford-courier", **overrides: Any) -> dict[str, Any]:
    """One conforming document, deterministic in ``i``."""
    kind = SOURCES.get(source, "news")
    rnd = random.Random(i)
    text = " ".join(rnd.choice(_WORDS) for _ in range(_LENGTH_WORDS[kind])) + f" item {i}."
    published = WINDOW_START + timedelta(seconds=(i * 7919) % 86_000)
    record = {
        "id": hashlib.sha256(f"{source}:{i}".encode()).hexdigest()[:32],
        "source": source,
        "kind": kind,
        "url": f"https://example.test/{source}/{i}",
        "title": None if kind == "sns" else f"Headline {i}",
        "text": text,
        "language": "en",
        "language_score": 0.98,
        "published_at": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fetched_at": "2026-11-03T02:10:00Z",
        "author": "@mira@tessford.social" if kind == "sns" else "Dana Whitfield",
        "content_hash": hashlib.sha256(text.encode()).hexdigest(),
        "n_chars": len(text),
        "n_words": len(text.split()),
        "pii": {},
        "toxicity": 0.0,
        "split": "heldout" if i % 10 == 0 else "train",
        "shard": f"file:///store/raw/{source}/2026-11-02/part-0000.jsonl.gz",
        "meta": {},
    }
    record.update(overrides)
    return record


def clean_batch(per_source: int = 20) -> list[dict[str, Any]]:
    """``per_source`` conforming documents from each of the three sources."""
    docs = []
    for s, source in enumerate(SOURCES):
        docs += [doc(s * 1_000_000 + i, source) for i in range(per_source)]
    return docs


def context(**overrides: Any) -> GateContext:
    values: dict[str, Any] = {
        "window_start": WINDOW_START,
        "window_end": WINDOW_END,
        "allowed_sources": list(SOURCES),
        "volume_history": {},
        "run_name": "scheduled__2026-11-03T02:00:00+00:00",
    }
    values.update(overrides)
    return GateContext(**values)


def config(**overrides: Any) -> GateConfig:
    """The default config (the real scrubber's PII rules) with ``overrides``."""
    return GateConfig(**overrides)
