"""The sandbox world's explicit fact probes as evaluation items.

The world is reached only over HTTP (``settings.world_url``). It serves ``GET /_world/probes``:
``{"now": ..., "probes": [...]}``, one probe per fact available at the world's clock (see
``_probes`` in :mod:`sandbox.server` and ``sandbox/scenario/facts.yaml``), each with ``key``,
``question``, ``answer``, ``distractors``, ``available_at``, ``supersedes``, ``current`` and
``evidence``.
:func:`fact_items` turns them into ``fact`` :class:`~freshlm.evaluation.items.Item` s: the
context is ``"Question: <q>\\nAnswer:"`` and the answer is ranked against the distractors.

Groups, in this order of precedence:

* ``stale`` — ``current`` is false: a later fact superseded it (after day 4 the Pulse X2's
  $649 gave way to $599). The item still has the old answer as its answer, so the score says
  how much the model still holds on to the outdated fact.
* ``old`` — knowledge the base model could have: the fact was available before the old-fact
  cutoff (``old_cutoff``), or its key has the scenario's ``old-`` prefix. The cutoff is the
  end of the base corpus's window (:func:`old_fact_cutoff`): every document the base model was
  pretrained on predates it, and the crawled windows start there (in the sandbox it is the
  world's first day). The probe JSON does not mark which articles the base was trained on
  (their URLs look like every other article's), so the time of the earliest evidence is the
  robust test; the key prefix is a second, independent signal for facts dated oddly, and the
  only one when no cutoff is given.
* ``new`` — everything else: learnable only from crawled windows.

:func:`learnable_facts` selects the new facts whose ``available_at`` falls in given crawl
windows: what a model trained on those windows could have learned.

:func:`wrong_question_controls` builds a control for fact accuracy: the same choices asked
under another fact's question. A small model can pick the right answer just because it has
seen that string (and not the distractors) lately; the control measures that familiarity, and
the gap between the real and the control accuracy is what the question itself contributes
(the idea of a control task for probes, Hewitt & Liang 2019, arXiv:1909.03368).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from freshlm.evaluation.items import MAX_CHOICES, Item

if TYPE_CHECKING:
    from freshlm.store import Store

#: A fact whose key starts with this is old knowledge, whatever its date.
OLD_KEY_PREFIX = "old-"
CONTEXT_TEMPLATE = "Question: {question}\nAnswer:"
PROBES_PATH = "/_world/probes"


@dataclass(frozen=True)
class WorldProbe:
    """One validated probe of ``/_world/probes``."""

    key: str
    question: str
    answer: str
    distractors: tuple[str, ...]
    available_at: datetime
    supersedes: str | None
    current: bool
    evidence: tuple[Mapping[str, Any], ...]


def parse_probes(probes_doc: Any) -> list[WorldProbe]:
    """Validate the JSON of ``/_world/probes`` (the object, or its ``probes`` list).

    Raises ``ValueError`` naming the probe (its key, or its position) and the field.
    """
    if isinstance(probes_doc, Mapping):
        if "probes" not in probes_doc:
            raise ValueError("world probes: field 'probes' is missing")
        probes = probes_doc["probes"]
    else:
        probes = probes_doc
    if not isinstance(probes, list):
        raise ValueError(f"world probes: field 'probes' is {type(probes).__name__}, not a list")
    parsed = [_parse_probe(i, raw) for i, raw in enumerate(probes)]
    keys = [p.key for p in parsed]
    duplicate = next((k for k in keys if keys.count(k) > 1), None)
    if duplicate is not None:
        raise ValueError(f"world probe {duplicate!r}: field 'key' appears more than once")
    return parsed


def _parse_probe(index: int, raw: Any) -> WorldProbe:
    if not isinstance(raw, Mapping):
        raise ValueError(f"world probe #{index}: expected an object, got {type(raw).__name__}")
    key = raw.get("key")
    label = repr(key) if isinstance(key, str) and key else f"#{index}"

    def fail(field: str, why: str) -> ValueError:
        return ValueError(f"world probe {label}: field {field!r} {why}")

    for field in ("key", "question", "answer"):
        if not isinstance(raw.get(field), str) or not raw[field].strip():
            raise fail(field, "must be a non-empty string")
    distractors = raw.get("distractors")
    if not isinstance(distractors, list) or not distractors:
        raise fail("distractors", "must be a non-empty list of strings")
    if not all(isinstance(d, str) and d.strip() for d in distractors):
        raise fail("distractors", "must hold only non-empty strings")
    answer = raw["answer"].strip()
    if any(d.strip().casefold() == answer.casefold() for d in distractors):
        raise fail("distractors", f"contains the answer {answer!r}")
    supersedes = raw.get("supersedes")
    if supersedes is not None and (not isinstance(supersedes, str) or not supersedes):
        raise fail("supersedes", "must be null or a probe key")
    if not isinstance(raw.get("current"), bool):
        raise fail("current", "must be true or false")
    evidence = raw.get("evidence")
    if not isinstance(evidence, list) or not all(
        isinstance(e, Mapping) and isinstance(e.get("ref"), str) for e in evidence
    ):
        raise fail("evidence", "must be a list of objects with a 'ref'")
    try:
        available_at = parse_utc(raw.get("available_at"))
    except ValueError as exc:
        raise fail("available_at", str(exc)) from None
    return WorldProbe(
        key=raw["key"],
        question=raw["question"].strip(),
        answer=answer,
        distractors=tuple({d.strip().casefold(): d.strip() for d in distractors}.values()),
        available_at=available_at,
        supersedes=supersedes,
        current=raw["current"],
        evidence=tuple(evidence),
    )


def parse_utc(value: Any) -> datetime:
    """An ISO 8601 timestamp with a timezone (``Z`` or an offset), as an aware UTC datetime."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    else:
        raise ValueError(f"must be an ISO 8601 timestamp, got {type(value).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{value!r} has no timezone")
    return when.astimezone(UTC)


Cutoff = datetime | str | None


def old_fact_cutoff(store: Store) -> str | None:
    """The instant before which a fact counts as old knowledge: the end of the published base
    corpus's window (everything the base model was pretrained on predates it); without a base
    corpus, the start of the earliest published dataset's window (nothing crawled predates
    it); None when no dataset is published."""
    from freshlm.artifacts import base_corpus, published_datasets

    datasets = published_datasets(store)
    corpus = base_corpus(store, datasets)
    if corpus is not None:
        return corpus.window["end"]
    return datasets[0].window["start"] if datasets else None


def _as_cutoff(old_cutoff: Cutoff) -> datetime | None:
    return None if old_cutoff is None else parse_utc(old_cutoff)


def fact_group(probe: WorldProbe, old_cutoff: Cutoff = None) -> str:
    """``stale``, ``old`` or ``new`` (see the module docstring for why these rules); without
    ``old_cutoff`` only the ``old-`` key prefix makes a fact old."""
    if not probe.current:
        return "stale"
    if probe.key.startswith(OLD_KEY_PREFIX):
        return "old"
    cutoff = _as_cutoff(old_cutoff)
    if cutoff is not None and probe.available_at < cutoff:
        return "old"
    return "new"


def fact_item(probe: WorldProbe, *, seed: int = 0, old_cutoff: Cutoff = None) -> Item:
    """The probe as a ``fact`` item: the answer and up to three distractors, in an order
    drawn from the seed and the key; ``doc_id`` is the fact's key, ``source`` ``world``."""
    options = [probe.answer, *probe.distractors[: MAX_CHOICES - 1]]
    choices = sorted(options, key=lambda c: _rank(seed, probe.key, c))
    return Item.create(
        kind="fact",
        group=fact_group(probe, old_cutoff),
        span_type="fact",
        context=CONTEXT_TEMPLATE.format(question=probe.question),
        choices=choices,
        answer_index=choices.index(probe.answer),
        dataset_id=None,
        doc_id=probe.key,
        language=_language(probe.question),
        source="world",
    )


def fact_items(probes_doc: Any, *, seed: int = 0, old_cutoff: Cutoff = None) -> list[Item]:
    """Every probe of ``/_world/probes`` as a fact item (validated; see :func:`parse_probes`),
    in the world's order; ``old_cutoff`` (see :func:`old_fact_cutoff`) dates old facts."""
    cutoff = _as_cutoff(old_cutoff)
    return [fact_item(p, seed=seed, old_cutoff=cutoff) for p in parse_probes(probes_doc)]


Window = Mapping[str, Any] | Sequence[Any]


def learnable_facts(
    probes_doc: Any,
    windows: Iterable[Window],
    *,
    seed: int = 0,
    old_cutoff: Cutoff = None,
) -> list[Item]:
    """The ``new`` fact items whose ``available_at`` lies in one of ``windows``: ``[start,
    end)`` as ``{"start", "end"}`` (a dataset manifest's ``window``) or ``(start, end)``,
    ISO 8601 strings or aware datetimes. These are what a model trained on the data of those
    crawl windows could have learned; stale and old facts are scored as their own groups."""
    spans = [_window(i, w) for i, w in enumerate(windows)]
    cutoff = _as_cutoff(old_cutoff)
    out = []
    for probe in parse_probes(probes_doc):
        if fact_group(probe, cutoff) != "new":
            continue
        if any(start <= probe.available_at < end for start, end in spans):
            out.append(fact_item(probe, seed=seed, old_cutoff=cutoff))
    return out


def _window(index: int, window: Window) -> tuple[datetime, datetime]:
    if isinstance(window, Mapping):
        start, end = window.get("start"), window.get("end")
    elif isinstance(window, Sequence) and not isinstance(window, str) and len(window) == 2:
        start, end = window
    else:
        raise ValueError(f"window #{index}: expected {{'start', 'end'}} or (start, end)")
    try:
        bounds = parse_utc(start), parse_utc(end)
    except ValueError as exc:
        raise ValueError(f"window #{index}: {exc}") from None
    if bounds[0] >= bounds[1]:
        raise ValueError(f"window #{index}: start {start!r} is not before end {end!r}")
    return bounds


def wrong_question_controls(items: Sequence[Item]) -> list[Item]:
    """Each fact item with the context of another item's question: ``items[i]``'s choices and
    answer under the question of the next item (cyclically) that asks something else. Empty
    when fewer than two distinct questions are given. Meant for the items of one group, so a
    control asks a question of the same kind of fact (a new fact's answer under another new
    fact's question)."""
    items = list(items)
    for item in items:
        if item.kind != "fact":
            raise ValueError(f"item {item.id} is a {item.kind!r} item, not 'fact'")
    if len({item.context for item in items}) < 2:
        return []
    controls = []
    for i, item in enumerate(items):
        other = next(
            items[(i + k) % len(items)]
            for k in range(1, len(items))
            if items[(i + k) % len(items)].context != item.context
        )
        controls.append(
            Item.create(
                kind="fact",
                group=item.group,
                span_type=item.span_type,
                context=other.context,
                choices=item.choices,
                answer_index=item.answer_index,
                dataset_id=item.dataset_id,
                doc_id=item.doc_id,
                language=item.language,
                source=item.source,
            )
        )
    return controls


def fetch_world_probes(world_url: str, timeout: float = 10.0) -> dict[str, Any]:
    """``GET <world_url>/_world/probes``, validated (:func:`parse_probes`); the JSON object.

    Network errors and HTTP error statuses raise ``requests`` exceptions; a body that is not
    the probes JSON raises ``ValueError`` naming the URL and what is wrong.
    """
    import requests

    url = world_url.rstrip("/") + PROBES_PATH
    response = requests.get(url, timeout=timeout)
    response.raise_for_status()
    try:
        doc = response.json()
    except ValueError:
        raise ValueError(f"{url} did not answer JSON: {response.text[:200]!r}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{url} answered a JSON {type(doc).__name__}, expected an object")
    try:
        parse_probes(doc)
    except ValueError as exc:
        raise ValueError(f"{url}: {exc}") from None
    return doc


def _language(text: str) -> str:
    """``ko`` when most letters are Hangul, else ``en`` (the world asks in English and
    Korean only)."""
    letters = [c for c in text if c.isalpha()]
    hangul = sum("\uac00" <= c <= "\ud7a3" for c in letters)
    return "ko" if letters and hangul * 2 > len(letters) else "en"


def _rank(seed: int, *parts: object) -> str:
    text = "\x00".join([str(seed), *map(str, parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
