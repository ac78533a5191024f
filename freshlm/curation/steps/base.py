"""The step contract: every curation step takes documents and yields documents.

A document (:data:`Doc`) is a plain dict with the fields of :mod:`freshlm.documents`.
Keys starting with ``_`` are scratch values a step leaves for a later one (e.g. the MinHash
band keys); they never reach an output file.

* :class:`Step` is the protocol: ``step(docs) -> docs`` plus ``name`` and ``counters``.
* :class:`DocStep` is the usual implementation: subclasses write ``process(doc)``, which may
  change the document and returns ``None`` to keep it or a :class:`Drop` to drop it.
* :class:`Filter` is a DocStep that only decides: subclasses write ``check(doc)``.

A dropped document is never lost: it gets ``reason`` (``"<step>:<rule>"``) and ``detail``, is
counted under ``dropped:<rule>``, and goes to the quarantine sink the pipeline bound to the
step. A step with no sink refuses to drop (``RuntimeError``) rather than lose a document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, Protocol, runtime_checkable

Doc = dict[str, Any]
QuarantineSink = Callable[[Doc], None]


class Drop(NamedTuple):
    """Why a document is dropped: ``rule`` (short, machine-readable) and a human ``detail``."""

    rule: str
    detail: str = ""


@runtime_checkable
class Step(Protocol):
    """Anything that maps a stream of documents to a stream of documents, with counters."""

    name: str
    counters: Counter[str]

    def __call__(self, docs: Iterable[Doc]) -> Iterator[Doc]: ...


def _no_sink(doc: Doc) -> None:
    raise RuntimeError(
        f"step dropped document {doc.get('id')!r} ({doc.get('reason')}) but has no quarantine "
        "sink; run it inside a Pipeline or call bind_quarantine() first"
    )


class DocStep:
    """A step that handles one document at a time. Counters: ``in``, ``out``, ``dropped:*``
    and whatever the subclass adds (e.g. ``pii:email``)."""

    name: str = "step"

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self._quarantine: QuarantineSink = _no_sink

    def bind_quarantine(self, sink: QuarantineSink) -> None:
        """Send this step's dropped documents to ``sink``."""
        self._quarantine = sink

    def process(self, doc: Doc) -> Drop | None:
        """Change ``doc`` in place if needed; return a Drop to drop it, None to keep it."""
        raise NotImplementedError

    def __call__(self, docs: Iterable[Doc]) -> Iterator[Doc]:
        counters = self.counters
        process = self.process
        name = self.name
        for doc in docs:
            counters["in"] += 1
            verdict = process(doc)
            if verdict is None:
                counters["out"] += 1
                yield doc
            else:
                counters["dropped:" + verdict.rule] += 1
                doc["reason"] = f"{name}:{verdict.rule}"
                doc["detail"] = verdict.detail
                self._quarantine(doc)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Filter(DocStep):
    """Keep or drop; never changes the document. Subclasses implement :meth:`check`."""

    def check(self, doc: Doc) -> Drop | None:
        raise NotImplementedError

    def process(self, doc: Doc) -> Drop | None:
        return self.check(doc)
