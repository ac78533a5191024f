"""Chain steps, route every drop to one quarantine sink, and collect the numbers.

Usage::

    pipeline = Pipeline([NormalizeStep(cfg.normalize), LanguageStep(cfg.language), ...],
                        quarantine=quarantined.append)
    for doc in pipeline(docs):   # lazily: one document flows through all steps at a time
        ...
    pipeline.stats()             # {"docs_in", "kept", "dropped", "by_reason", "steps": [...]}

Invariant (DESIGN: nothing is lost): ``docs_in == kept + dropped`` once the output is consumed;
every dropped document reached the quarantine sink with its ``reason``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from freshlm.curation.steps.base import Doc, DocStep, QuarantineSink, Step


class Pipeline:
    """Steps applied in order, lazily, with a shared quarantine sink."""

    def __init__(self, steps: Sequence[Step], quarantine: QuarantineSink) -> None:
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique (they key the stats): {names}")
        self.steps = list(steps)
        self._sink = quarantine
        self.docs_in = 0
        self.kept = 0
        self.dropped = 0
        self.by_reason: Counter[str] = Counter()
        for step in self.steps:
            # Any step that can drop (a DocStep, or a custom Step with the same hook) gets the
            # pipeline's sink, so no drop can bypass the counters.
            if isinstance(step, DocStep) or hasattr(step, "bind_quarantine"):
                step.bind_quarantine(self._quarantine)

    def _quarantine(self, doc: Doc) -> None:
        self.dropped += 1
        self.by_reason[doc["reason"]] += 1
        self._sink(doc)

    def _count_in(self, docs: Iterable[Doc]) -> Iterator[Doc]:
        for doc in docs:
            self.docs_in += 1
            yield doc

    def __call__(self, docs: Iterable[Doc]) -> Iterator[Doc]:
        stream: Iterable[Doc] = self._count_in(docs)
        for step in self.steps:
            stream = step(stream)
        for doc in stream:
            self.kept += 1
            yield doc

    def stats(self) -> dict[str, Any]:
        """Counts per step and per reason; deterministic for the same input (no timings)."""
        steps = []
        for step in self.steps:
            counters = dict(sorted(step.counters.items()))
            dropped = {
                k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("dropped:")
            }
            other = {k: v for k, v in counters.items() if not k.startswith("dropped:")}
            steps.append(
                {
                    "name": step.name,
                    "in": other.pop("in", 0),
                    "out": other.pop("out", 0),
                    "dropped": dropped,
                    "counters": other,
                }
            )
        return {
            "docs_in": self.docs_in,
            "kept": self.kept,
            "dropped": self.dropped,
            "by_reason": dict(sorted(self.by_reason.items())),
            "steps": steps,
        }
