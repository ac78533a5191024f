"""The evaluation's configuration: one typed, validated record of how a candidate is evaluated.

An :class:`EvalConfig` travels as JSON (task parameters, the report's ``config``) and is
validated field by field, so a mistake fails before any model is loaded, with a message naming
the field. Importing this module is cheap (no torch, no transformers): DAG files may use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

#: Number formats a model may be scored in (torch dtype names).
DTYPES = ("float32", "bfloat16")


class EvalConfigError(ValueError):
    """An invalid evaluation configuration; the message names the field and what is wrong."""


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """How a candidate is evaluated against the production model.

    * ``batch_size``: sequences per forward pass when scoring (choices, windows, sentences).
    * ``max_new_items`` / ``max_old_items``: caps on the new-knowledge and retention cloze
      items; above the cap a stable sample is taken (see :func:`stable_subset`), so the same
      items are drawn for the same ids and seed whatever their order. ``None``: all.
    * ``seed``: the sampling seed (items, held-out documents, CrowS-Pairs subsets).
    * ``crows_max_pairs``: CrowS-Pairs pairs scored; ``None``: all 1,508.
    * ``latency_prompts`` / ``latency_new_tokens``: prompts timed (one at a time, greedy) and
      tokens generated for each.
    * ``answer_new_tokens``: tokens a model may write when it answers a fact question in its
      own words (greedy; see :mod:`freshlm.evaluation.answers`).
    * ``heldout_max_docs``: cap on held-out documents per perplexity set (new, old); ``None``:
      all.
    * ``general_max_questions``: general-knowledge questions screened with the base model when
      its retention set is built (a stable sample; see
      :mod:`freshlm.evaluation.general_knowledge`); ``None``: all. The set is built once per
      base version: a later change applies to bases screened after it.
    * ``max_length``: the scoring window in tokens; ``None``: the model's context size (longer
      requests are cut from the left; perplexity slides a window over long documents).
    * ``threads``: torch CPU threads while evaluating (restored afterwards); ``None``: leave
      torch's setting alone. Float results may depend on it, as in training.
    * ``dtype``: the number format both models are loaded and scored in, whatever format
      each was saved in (:data:`DTYPES`). A candidate trained on GPUs is published in
      bfloat16 and production may be float32: scored each in its own, the comparison would
      measure the rounding as well as the training.
    """

    batch_size: int = 16
    max_new_items: int | None = 2000
    max_old_items: int | None = 2000
    seed: int = 0
    crows_max_pairs: int | None = None
    latency_prompts: int = 8
    latency_new_tokens: int = 32
    answer_new_tokens: int = 32
    heldout_max_docs: int | None = 200
    general_max_questions: int | None = 300
    max_length: int | None = None
    threads: int | None = 2
    dtype: str = "float32"

    def __post_init__(self) -> None:
        def fail(field: str, why: str) -> None:
            raise EvalConfigError(f"EvalConfig.{field} = {getattr(self, field)!r}: {why}")

        for name in ("batch_size", "latency_prompts", "latency_new_tokens", "answer_new_tokens"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "must be an integer >= 1")
        for name in (
            "max_new_items",
            "max_old_items",
            "crows_max_pairs",
            "heldout_max_docs",
            "general_max_questions",
        ):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                fail(name, "must be null (no cap) or an integer >= 0")
        if not _is_int(self.seed) or self.seed < 0:
            fail("seed", "must be an integer >= 0")
        if self.max_length is not None and (not _is_int(self.max_length) or self.max_length < 2):
            fail("max_length", "must be null (the model's context size) or an integer >= 2")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            fail("threads", "must be null (leave torch's setting) or an integer >= 1")
        if self.dtype not in DTYPES:
            fail("dtype", f"must be one of {', '.join(DTYPES)}")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> EvalConfig:
        """Build from JSON-like data (missing fields take their defaults); an unknown field
        raises :class:`EvalConfigError` naming it."""
        if doc is None:
            return cls()
        if not isinstance(doc, Mapping):
            raise EvalConfigError(f"EvalConfig: expected a JSON object, got {type(doc).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in doc if k not in names)
        if unknown:
            raise EvalConfigError(
                f"EvalConfig: unknown field(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(names)}"
            )
        return cls(**dict(doc))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> EvalConfig:
        return dataclasses.replace(self, **changes)


def stable_subset(
    values: Iterable[T], limit: int | None, *, seed: int, key: Callable[[T], str]
) -> list[T]:
    """At most ``limit`` of ``values``, in their original order.

    The sample keeps the values whose ``sha256(seed, key(value))`` is smallest: it depends
    only on the keys and the seed, not on the order, and a larger pool keeps the earlier
    sample except where new values rank ahead of it, so reruns score the same items.
    """
    values = list(values)
    if limit is None or len(values) <= limit:
        return values

    def rank(index: int) -> str:
        text = f"{seed}\x00{key(values[index])}"
        return hashlib.sha256(text.encode()).hexdigest()

    keep = sorted(sorted(range(len(values)), key=rank)[:limit])
    return [values[i] for i in keep]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
