"""Evaluation items: the multiple-choice probes a model is scored on, and how they are stored.

An :class:`Item` is one question put to a causal LM as a ranking: each choice is appended to
``context`` (with one space in between) and the model's likelihood of the choice decides which
it prefers. Two kinds exist:

* ``cloze`` — a sentence prefix from a document, with a salient span (a price, a number, a
  date, a named entity, a new term) hidden; the true span is ranked against distractors of the
  same type from other documents (:mod:`freshlm.evaluation.probes`);
* ``fact`` — the sandbox world's explicit fact probes, ``"Question: <q>\\nAnswer:"`` with the
  answer ranked against the scenario's distractors (:mod:`freshlm.evaluation.world_facts`).

``group`` says what an item measures: ``new`` knowledge (from the newest data), ``old``
knowledge (retention: earlier datasets, the base model's own corpus among them, and the
world's old facts) or ``stale`` (a world fact that a later fact superseded: the model should
move away from it).

The id is a sha256 of the content that defines the question (kind, span type, context, answer
and the *set* of choices), not of the group, the source or the order of the choices: the same
question keeps its id when it moves from ``new`` (the night it was learned) to ``old`` (every
night after), so reports can follow one item across nights.

Items travel through the store as JSON Lines (:func:`write_items`, :func:`read_items`); what
comes back is outside input, so :meth:`Item.from_dict` validates every field and names the bad
one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freshlm.store import Publisher, Store

KINDS = ("cloze", "fact")
GROUPS = ("new", "old", "stale")
SPAN_TYPES = ("price", "number", "date", "entity", "term", "fact")
MIN_CHOICES, MAX_CHOICES = 2, 4
ID_HEX = 24  # 96 bits of sha256: no collision among millions of items, short in reports

_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "kind": (str,),
    "group": (str,),
    "span_type": (str,),
    "context": (str,),
    "choices": (list, tuple),
    "answer_index": (int,),
    "dataset_id": (str, type(None)),
    "doc_id": (str, type(None)),
    "language": (str,),
    "source": (str,),
}


def item_id(kind: str, span_type: str, context: str, choices: Iterable[str], answer: str) -> str:
    """The stable id of a question: independent of choice order, group and source."""
    canonical = json.dumps(
        [kind, span_type, context, answer, sorted(choices)],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:ID_HEX]


@dataclasses.dataclass(frozen=True)
class Item:
    """One multiple-choice probe. Build new ones with :meth:`create` (which computes the id).

    ``choices`` are appended to ``context`` after a single space by the scorer, so none has
    leading or trailing whitespace; ``choices[answer_index]`` is the right one.
    """

    id: str
    kind: str
    group: str
    span_type: str
    context: str
    choices: tuple[str, ...]
    answer_index: int
    dataset_id: str | None
    doc_id: str | None
    language: str
    source: str

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            field, why = problem
            raise ValueError(f"Item {self.id!r}: field {field!r} {why}")

    @classmethod
    def create(
        cls,
        *,
        kind: str,
        group: str,
        span_type: str,
        context: str,
        choices: Iterable[str],
        answer_index: int,
        dataset_id: str | None,
        doc_id: str | None,
        language: str,
        source: str,
    ) -> Item:
        """An item whose id is computed from its content (see :func:`item_id`)."""
        choices = tuple(choices)
        if not 0 <= answer_index < len(choices):
            raise ValueError(f"field 'answer_index' {answer_index} is not an index of {choices}")
        return cls(
            id=item_id(kind, span_type, context, choices, choices[answer_index]),
            kind=kind,
            group=group,
            span_type=span_type,
            context=context,
            choices=choices,
            answer_index=answer_index,
            dataset_id=dataset_id,
            doc_id=doc_id,
            language=language,
            source=source,
        )

    @property
    def answer(self) -> str:
        return self.choices[self.answer_index]

    def with_group(self, group: str) -> Item:
        """The same question counted in another group (a new item carried forward as old)."""
        return dataclasses.replace(self, group=group)

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["choices"] = list(self.choices)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Item:
        """Validate a stored record; ``ValueError`` naming the first bad field."""
        if not isinstance(record, Mapping):
            raise ValueError(f"item: expected a JSON object, got {type(record).__name__}")
        label = record.get("id") if isinstance(record.get("id"), str) else "?"
        missing = [name for name in _FIELDS if name not in record]
        if missing:
            raise ValueError(f"item {label!r}: missing field {missing[0]!r}")
        unknown = sorted(str(k) for k in record if k not in _FIELDS)
        if unknown:
            raise ValueError(f"item {label!r}: unknown field {unknown[0]!r}")
        for name, types in _FIELDS.items():
            value = record[name]
            if not isinstance(value, types) or (isinstance(value, bool) and types == (int,)):
                raise ValueError(
                    f"item {label!r}: field {name!r} is {type(value).__name__}, "
                    f"expected {types[0].__name__}"
                )
        fields = dict(record)
        fields["choices"] = tuple(fields["choices"])
        return cls(**fields)


def _problem(item: Item) -> tuple[str, str] | None:
    """The first field of ``item`` that breaks the contract, and why (None: it conforms)."""
    if not isinstance(item.id, str) or not item.id.strip():
        return "id", "must be a non-empty string"
    if item.kind not in KINDS:
        return "kind", f"is {item.kind!r}, expected one of {KINDS}"
    if item.group not in GROUPS:
        return "group", f"is {item.group!r}, expected one of {GROUPS}"
    if item.span_type not in SPAN_TYPES:
        return "span_type", f"is {item.span_type!r}, expected one of {SPAN_TYPES}"
    if (item.kind == "fact") != (item.span_type == "fact"):
        return "span_type", f"{item.span_type!r} does not go with kind {item.kind!r}"
    if not isinstance(item.context, str) or not item.context.strip():
        return "context", "must be a non-empty string"
    choice_problem = _choices_problem(item.choices)
    if choice_problem:
        return "choices", choice_problem
    index = item.answer_index
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(item.choices):
        return "answer_index", f"is {index!r}, expected an index of the {len(item.choices)} choices"
    for name in ("dataset_id", "doc_id"):
        value = getattr(item, name)
        if value is not None and (not isinstance(value, str) or not value):
            return name, "must be null or a non-empty string"
    for name in ("language", "source"):
        if not isinstance(getattr(item, name), str) or not getattr(item, name):
            return name, "must be a non-empty string"
    return None


def _choices_problem(choices: Any) -> str | None:
    if not isinstance(choices, tuple):
        return f"is {type(choices).__name__}, expected a tuple"
    if not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        return f"has {len(choices)} choices, expected {MIN_CHOICES} to {MAX_CHOICES}"
    for i, choice in enumerate(choices):
        if not isinstance(choice, str) or not choice.strip():
            return f"[{i}] must be a non-empty string"
        if choice != choice.strip():
            # The scorer joins context and choice with exactly one space.
            return f"[{i}] {choice!r} has leading or trailing whitespace"
    if len({c.casefold() for c in choices}) != len(choices):
        return f"{list(choices)} are not distinct (ignoring case)"
    return None


# --- storage -------------------------------------------------------------------------------


def write_items(pub: Publisher, name: str, items: Iterable[Item]) -> int:
    """Write ``items`` as JSON Lines into the artifact being published; returns the count."""
    return pub.write_jsonl(name, (item.to_dict() for item in items))


def iter_items(store: Store, key: str) -> Iterator[Item]:
    """Stream and validate the items stored under ``key``.

    A malformed record raises ``ValueError`` naming the object, the record number and the
    field; an unreadable object raises the store's :class:`~freshlm.store.StoreError`.
    """
    for number, record in enumerate(store.read_jsonl(key), start=1):
        try:
            yield Item.from_dict(record)
        except ValueError as exc:
            raise ValueError(f"{store.uri_for(key)} record {number}: {exc}") from None


def read_items(store: Store, key: str) -> list[Item]:
    """Every item stored under ``key``, validated (see :func:`iter_items`)."""
    return list(iter_items(store, key))
