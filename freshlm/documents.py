"""The curated document: what curation emits and what the gate, training and evaluation read.

Curation turns raw records (:mod:`freshlm.records`) into documents with these fields; a
*candidate dataset* is a set of them split into ``train`` and ``heldout``, plus the documents
that were dropped (quarantine, each with its reason) and per-step statistics.

============== ========== ================================================================
field           type       meaning
============== ========== ================================================================
id              str        the raw record's stable id (32 hex)
source          str        source name from the sources file
kind            str        ``news`` | ``sns`` | ``paper``
url             str        the document's URL
title           str|null   title, normalized (null for SNS posts)
text            str        curated text: normalized, PII replaced by typed placeholders
language        str        detected ISO 639-1 code (``en``, ``ko``, ...) or ``und``
language_score  float      confidence of the detection, 0..1
published_at    str        ISO 8601 UTC
fetched_at      str        ISO 8601 UTC
author          str|null   handle or byline as crawled (handles are pseudonymous; not scrubbed)
content_hash    str        sha256 hex of the normalized text before PII scrubbing: the exact-
                           duplicate key, stable across runs
n_chars         int        characters in ``text``
n_words         int        words in ``text`` (whitespace tokens; Hangul words count as words)
pii             object     ``{type: count}`` of placeholders inserted (email, phone, ip, ...)
toxicity        float      share of words on the toxicity word lists, 0..1
split           str        ``train`` | ``heldout`` (deterministic per document id)
shard           str        URI of the raw shard the record came from (lineage)
meta            object     the raw record's source-specific metadata
============== ========== ================================================================

A dropped document in quarantine is the same object with ``reason`` (the step and rule, e.g.
``quality:gopher_min_words``, ``dedup:near``, ``toxicity:ratio``) and ``detail`` added.
"""

from __future__ import annotations

from typing import Any

DOCUMENT_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "source": (str,),
    "kind": (str,),
    "url": (str,),
    "title": (str, type(None)),
    "text": (str,),
    "language": (str,),
    "language_score": (float, int),
    "published_at": (str,),
    "fetched_at": (str,),
    "author": (str, type(None)),
    "content_hash": (str,),
    "n_chars": (int,),
    "n_words": (int,),
    "pii": (dict,),
    "toxicity": (float, int),
    "split": (str,),
    "shard": (str,),
    "meta": (dict,),
}
SPLITS = ("train", "heldout")


def document_problems(doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` deviates from the document contract (empty when it conforms)."""
    problems = [f"missing field {k!r}" for k in DOCUMENT_FIELDS if k not in doc]
    for key, types in DOCUMENT_FIELDS.items():
        if key in doc and not isinstance(doc[key], types):
            problems.append(f"{key!r} is {type(doc[key]).__name__}, expected {types[0].__name__}")
    if doc.get("split") not in SPLITS:
        problems.append(f"split {doc.get('split')!r} is not one of {SPLITS}")
    return problems
