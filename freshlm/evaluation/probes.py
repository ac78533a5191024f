"""Knowledge probes built automatically from each published dataset: cloze items.

Why cloze items: a tiny causal LM cannot answer free-form questions, but it can rank
continuations. Hiding a salient span of a document the model was trained on and asking it to
prefer the true span over plausible alternatives measures whether it *acquired* that knowledge,
as in the knowledge-acquisition and retention probes of continual knowledge learning (CKL,
Jang et al. 2022, arXiv:2110.03215). New-knowledge probes come from the newest dataset's train
split (did the update teach what it was trained on?); retention probes are carried forward from
every earlier published dataset (did it forget?), the base model's own pretraining corpus among
them when it is published as a dataset (``role: base-corpus``, see
:func:`freshlm.artifacts.base_corpus`).

How an item is made (:func:`build_cloze_items`):

1. :func:`extract_spans` finds salient spans — prices, numbers with units, dates and years,
   named entities, new terms — with rules (regular expressions plus a few word lists). Rules,
   not a tagger, because nothing may be downloaded at run time (no spaCy models, no NER
   weights), because the spans that carry *knowledge* in news and posts are exactly the ones
   with a recognisable surface form, and because rules behave the same on every machine.
2. The context is the document's text before the span (as training saw it: title, blank line,
   text), at most ``context_chars``, cut at a sentence or word boundary. Spans whose value is
   already in the context are skipped (the model could copy it), and so are spans with too
   little context to be answerable; spans whose own sentence gives at least
   :data:`GOOD_SENTENCE_WORDS` words of context are preferred.
3. Up to three distractors of the same span type come from *other* documents of the same set,
   preferring the same shape (the same currency, unit, date format, entity head word), so the
   choice tests knowledge, not grammar: ``"5,200 mAh"`` is ranked against ``"4,300 mAh"``, not
   against ``"12 hours"``. A distractor never equals the answer (ignoring case) and never
   occurs in the answer's own document, so it cannot be a second right answer.
4. Everything random is a hash of the seed and the item's content, so the same documents and
   seed always give the same items in the same order, whatever order the documents came in.

Store layout: ``probes/<dataset_id>/items.jsonl`` (one :class:`~freshlm.evaluation.items.Item`
per line) and its manifest (kind ``probes``: dataset id, window, counts per span type, seed and
the build parameters), published atomically and once: probes are built from a dataset the first
time they are asked for, and every later night reads the same items back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from freshlm.artifacts import (
    PROBES,
    TRAIN_FILE,
    ArtifactNotFound,
    published_datasets,
    read_published_dataset,
)
from freshlm.evaluation.items import Item, read_items, write_items
from freshlm.spans import Span, extract_spans, sentence_starts

if TYPE_CHECKING:
    from freshlm.store import Store

log = logging.getLogger(__name__)

PROBES_KIND = "probes"
ITEMS_FILE = "items.jsonl"

CLOZE_SPAN_TYPES = ("price", "number", "date", "entity", "term")
DEFAULT_MAX_ITEMS = 400
DEFAULT_MAX_PER_DOC = 3
DEFAULT_CONTEXT_CHARS = 400
MAX_DISTRACTORS = 3
#: Fewer words of context than this and the blank is a guess, not a probe of knowledge.
MIN_CONTEXT_WORDS = 5
#: Spans with this many words before them in their own sentence are preferred: the sentence
#: itself says what is asked ("The Pulse X2 costs ___"), not just the text around it.
GOOD_SENTENCE_WORDS = 6
MAX_SPAN_CHARS = 60


class ProbeError(ValueError):
    """Probes cannot be built or read as asked; the message says why."""


# --- documents -----------------------------------------------------------------------------


def document_text(doc: Mapping[str, Any]) -> str:
    """The document as training saw it: the title, a blank line, then the text (as
    :mod:`training.trainset` packs it), so a probe's context is text the model was fed."""
    text = doc["text"]
    title = doc.get("title")
    if isinstance(title, str) and title.strip() and not text.startswith(title.strip()):
        return f"{title.strip()}\n\n{text}"
    return text


@dataclasses.dataclass(frozen=True)
class _Doc:
    id: str
    text: str
    language: str
    folded: str  # casefolded text: a distractor found in it could be a right answer
    spans: tuple[Span, ...]
    sentence_starts: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _Candidate:
    doc: _Doc
    span: Span
    context: str
    good: bool  # its own sentence gives enough context


def _read_doc(index: int, doc: Any) -> _Doc:
    if not isinstance(doc, Mapping):
        raise ProbeError(f"document {index}: expected an object, got {type(doc).__name__}")
    for field in ("id", "text", "language"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            label = doc.get("id") if isinstance(doc.get("id"), str) else index
            raise ProbeError(f"document {label!r}: field {field!r} must be a non-empty string")
    text = document_text(doc)
    return _Doc(
        id=doc["id"],
        text=text,
        language=doc["language"],
        folded=text.casefold(),
        spans=tuple(extract_spans(text, doc["language"])),
        sentence_starts=tuple(sentence_starts(text)),
    )


def _context(doc: _Doc, start: int, context_chars: int) -> str:
    """The text before ``start`` (which follows a single space), at most ``context_chars``
    long, starting at a sentence start if one leaves enough words, else at a word start."""
    end = start - 1  # the space before the span: the scorer puts it back
    left = max(0, end - context_chars)
    if left > 0:
        sentence = next(
            (
                s
                for s in doc.sentence_starts
                if left <= s < end and _word_count(doc.text[s:end]) >= MIN_CONTEXT_WORDS
            ),
            None,
        )
        if sentence is not None:
            left = sentence
        else:
            space = doc.text.find(" ", left, end)
            left = space + 1 if space >= 0 else left
    return doc.text[left:end].strip()


def _word_count(text: str) -> int:
    return len(text.split())


def _candidates(doc: _Doc, context_chars: int) -> list[_Candidate]:
    """The spans of ``doc`` that make fair questions (see the module docstring)."""
    out = []
    for span in doc.spans:
        if span.start < 2 or doc.text[span.start - 1] != " " or doc.text[span.start - 2].isspace():
            continue  # the scorer joins context and choice with exactly one space
        if len(span.value) > MAX_SPAN_CHARS:
            continue
        context = _context(doc, span.start, context_chars)
        if _word_count(context) < MIN_CONTEXT_WORDS or span.value.casefold() in context.casefold():
            continue
        sentence = max(s for s in doc.sentence_starts if s <= span.start)
        good = _word_count(doc.text[sentence : span.start]) >= GOOD_SENTENCE_WORDS
        out.append(_Candidate(doc, span, context, good))
    return out


def _rank(seed: int, *parts: object) -> str:
    """A deterministic pseudo-random sort key from the seed and content, never from order."""
    text = "\x00".join([str(seed), *map(str, parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pick_per_doc(cands: list[_Candidate], seed: int, max_per_doc: int) -> list[_Candidate]:
    """Up to ``max_per_doc`` candidates, good context first, spreading over span types and
    never asking the same value twice."""
    ordered = sorted(cands, key=lambda c: (not c.good, _rank(seed, c.doc.id, c.span.start)))
    by_type: dict[str, list[_Candidate]] = {}
    for cand in ordered:
        by_type.setdefault(cand.span.type, []).append(cand)
    picked: list[_Candidate] = []
    seen: set[str] = set()
    while len(picked) < max_per_doc and any(by_type.values()):
        for queue in list(by_type.values()):
            while queue and queue[0].span.value.casefold() in seen:
                queue.pop(0)
            if queue and len(picked) < max_per_doc:
                cand = queue.pop(0)
                seen.add(cand.span.value.casefold())
                picked.append(cand)
    return picked


# --- distractors ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _PoolEntry:
    key: str  # the casefolded value
    value: str
    shape: str
    words: int
    hangul: bool  # written in Hangul: a Korean answer needs Korean distractors


class _Pool:
    """Every span value of a document set, by type and by (type, shape), each value once
    (compared ignoring case; the display form is the smallest, so order does not matter)."""

    def __init__(self, docs: Iterable[_Doc]) -> None:
        entries: dict[tuple[str, str], _PoolEntry] = {}
        for doc in docs:
            for span in doc.spans:
                key = span.value.casefold()
                known = entries.get((span.type, key))
                if known is None or span.value < known.value:
                    entries[(span.type, key)] = _PoolEntry(
                        key, span.value, span.shape, _word_count(span.value), _has_hangul(key)
                    )
        self.by_type: dict[str, list[_PoolEntry]] = {}
        self.by_shape: dict[tuple[str, str], list[_PoolEntry]] = {}
        for (span_type, _), entry in sorted(entries.items()):
            self.by_type.setdefault(span_type, []).append(entry)
            self.by_shape.setdefault((span_type, entry.shape), []).append(entry)


def _has_hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" for c in text)


def _distractors(cand: _Candidate, pool: _Pool, seed: int) -> list[str]:
    """Up to three values of the answer's type and script from other documents, the most
    alike first (the same shape, then the same number of words); never the answer, never a
    value that occurs in the answer's document. A Hangul answer among Latin distractors (or
    the reverse) would be given away by the script alone, so scripts never mix."""
    answer = cand.span
    key, hangul = answer.value.casefold(), _has_hangul(answer.value)
    words = _word_count(key)

    def usable(entry: _PoolEntry) -> bool:
        return entry.key != key and entry.hangul == hangul and entry.key not in cand.doc.folded

    def preference(entry: _PoolEntry) -> tuple[bool, str]:
        return entry.words != words, _rank(seed, cand.doc.id, answer.start, entry.value)

    same_shape = pool.by_shape.get((answer.type, answer.shape), [])
    chosen = sorted(filter(usable, same_shape), key=preference)[:MAX_DISTRACTORS]
    if len(chosen) < MAX_DISTRACTORS:  # widen to every shape of the type only when needed
        others = (e for e in pool.by_type.get(answer.type, []) if e.shape != answer.shape)
        chosen += sorted(filter(usable, others), key=preference)[: MAX_DISTRACTORS - len(chosen)]
    return [answer.render(entry.value) for entry in chosen]


# --- items ---------------------------------------------------------------------------------


def build_cloze_items(
    documents: Iterable[Mapping[str, Any]],
    *,
    group: str,
    dataset_id: str | None,
    source: str,
    seed: int = 0,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    max_per_doc: int = DEFAULT_MAX_PER_DOC,
    context_chars: int = DEFAULT_CONTEXT_CHARS,
) -> list[Item]:
    """Cloze items from ``documents`` (dicts with at least ``id``, ``text``, ``language``;
    ``title`` is used when present), see the module docstring.

    Documents take turns (in an order drawn from the seed), so ``max_items`` spreads over as
    many documents as possible. Spans without a single distractor are skipped. Deterministic
    for the same documents (in any order) and seed.
    """
    if max_per_doc < 1 or context_chars < 20 or (max_items is not None and max_items < 0):
        raise ProbeError(
            f"need max_per_doc >= 1, context_chars >= 20 and max_items >= 0 or None "
            f"(got {max_per_doc}, {context_chars}, {max_items})"
        )
    docs = sorted((_read_doc(i, d) for i, d in enumerate(documents)), key=lambda d: d.id)
    pool = _Pool(docs)
    turns = sorted(docs, key=lambda d: _rank(seed, "doc", d.id))
    streams = [
        _doc_items(doc, pool, group, dataset_id, source, seed, max_per_doc, context_chars)
        for doc in turns
    ]
    return _interleave(streams, max_items)


def _doc_items(
    doc: _Doc,
    pool: _Pool,
    group: str,
    dataset_id: str | None,
    source: str,
    seed: int,
    max_per_doc: int,
    context_chars: int,
) -> Iterator[Item]:
    """The items of one document, best first, at most ``max_per_doc``; lazy, so documents
    beyond ``max_items`` cost nothing."""
    made = 0
    for cand in _pick_per_doc(_candidates(doc, context_chars), seed, max_per_doc * 3):
        distractors = _distractors(cand, pool, seed)
        if distractors:
            yield _item(cand, distractors, group, dataset_id, source, seed)
            made += 1
            if made == max_per_doc:
                return


def _item(
    cand: _Candidate,
    distractors: list[str],
    group: str,
    dataset_id: str | None,
    source: str,
    seed: int,
) -> Item:
    answer = cand.span.text
    choices = sorted([answer, *distractors], key=lambda c: _rank(seed, cand.context, c))
    return Item.create(
        kind="cloze",
        group=group,
        span_type=cand.span.type,
        context=cand.context,
        choices=choices,
        answer_index=choices.index(answer),
        dataset_id=dataset_id,
        doc_id=cand.doc.id,
        language=cand.doc.language,
        source=source,
    )


def _interleave(streams: list[Iterator[Item]], limit: int | None) -> list[Item]:
    """Round-robin over the documents' items (each document's first, then each one's
    second, ...) until ``limit``; the same question (id) only once."""
    out: list[Item] = []
    seen: set[str] = set()
    live = list(streams)
    while live and (limit is None or len(out) < limit):
        still = []
        for stream in live:
            item = next(stream, None)
            if item is None:
                continue
            still.append(stream)
            if item.id not in seen:
                seen.add(item.id)
                out.append(item)
                if limit is not None and len(out) >= limit:
                    break
        live = still
    return out


def span_type_counts(items: Iterable[Item]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.span_type] = counts.get(item.span_type, 0) + 1
    return dict(sorted(counts.items()))


# --- published probe sets ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProbeSet:
    """The probes of one published dataset, as stored under ``probes/<dataset_id>/``."""

    dataset_id: str
    uri: str
    seed: int
    items: tuple[Item, ...]
    counts: Mapping[str, int]
    already_published: bool


def probes_prefix(dataset_id: str) -> str:
    return f"{PROBES}/{dataset_id}"


def build_dataset_probes(
    store: Store,
    dataset_id: str,
    *,
    seed: int = 0,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    max_per_doc: int = DEFAULT_MAX_PER_DOC,
    context_chars: int = DEFAULT_CONTEXT_CHARS,
) -> ProbeSet:
    """Build and publish the cloze probes of ``datasets/<dataset_id>``'s train split.

    The train split, because these probes ask whether the model learned what it was trained
    on. Idempotent: when ``probes/<dataset_id>`` is already published its items are returned
    as stored (whatever seed and limits are passed now: a probe set never changes once
    nights have been scored on it). Items are stored in group ``new``, source ``dataset``.
    """
    prefix = probes_prefix(dataset_id)
    existing = store.read_manifest(prefix)
    if existing is not None:
        return _stored(store, dataset_id, existing, seed)
    try:
        dataset = read_published_dataset(store, dataset_id).manifest
    except ArtifactNotFound:
        raise ProbeError(
            f"dataset {store.uri_for(f'datasets/{dataset_id}')} is not published"
        ) from None
    try:
        train_key = dataset.key(TRAIN_FILE)
    except KeyError:
        raise ProbeError(f"dataset {store.uri_for(dataset.prefix)} has no {TRAIN_FILE}") from None
    documents = list(store.read_jsonl(train_key))
    items = build_cloze_items(
        documents,
        group="new",
        dataset_id=dataset_id,
        source="dataset",
        seed=seed,
        max_items=max_items,
        max_per_doc=max_per_doc,
        context_chars=context_chars,
    )
    counts = span_type_counts(items)
    with store.publisher(
        prefix, kind=PROBES_KIND, created_by={"actor": "freshlm.evaluation.probes"}
    ) as pub:
        write_items(pub, ITEMS_FILE, items)
        pub.set_manifest_fields(
            dataset_id=dataset_id,
            window=dataset.fields.get("window"),
            built_from="train",
            documents=len(documents),
            items=len(items),
            counts=counts,
            seed=seed,
            max_items=max_items,
            max_per_doc=max_per_doc,
            context_chars=context_chars,
            dataset_content_sha256=dataset.content_sha256,
        )
    log.info(
        "probes for dataset %s: %d cloze items from %d train documents %s",
        dataset_id,
        len(items),
        len(documents),
        counts,
    )
    return ProbeSet(dataset_id, store.uri_for(prefix), seed, tuple(items), counts, False)


def _stored(store: Store, dataset_id: str, manifest: Any, seed: int) -> ProbeSet:
    if manifest.kind != PROBES_KIND:
        raise ProbeError(f"{store.uri_for(manifest.prefix)} is a {manifest.kind!r}, not probes")
    items = tuple(read_items(store, manifest.key(ITEMS_FILE)))
    stored_seed = manifest.fields.get("seed")
    if stored_seed != seed:
        log.info(
            "probes for %s were built with seed %s (asked: %s); using them as stored",
            dataset_id,
            stored_seed,
            seed,
        )
    return ProbeSet(
        dataset_id,
        store.uri_for(manifest.prefix),
        stored_seed if isinstance(stored_seed, int) else seed,
        items,
        span_type_counts(items),
        True,
    )


def probe_sets_for(
    store: Store,
    dataset_ids: Sequence[str],
    *,
    seed: int = 0,
    max_new: int | None = DEFAULT_MAX_ITEMS,
    max_old: int | None = DEFAULT_MAX_ITEMS,
) -> tuple[list[Item], list[Item]]:
    """``(new_items, old_items)`` for a model trained on ``dataset_ids`` (lineage order).

    New: the probes of the newest dataset (the last id), built now if they are not yet
    published. Old: the probes of every earlier dataset (see :func:`earlier_datasets`; the
    base corpus, when published, is one of them), regrouped as ``old``; a question asked as new
    tonight is not also asked as old. With no earlier dataset there are no old items. Both are
    sampled deterministically (by seed and item id) down to their caps, the old ones balanced
    across their datasets, so a big base corpus does not drown the retention of last week's
    news.
    """
    if not dataset_ids:
        raise ProbeError("probe_sets_for needs at least one dataset id (the newest last)")
    newest = build_dataset_probes(store, dataset_ids[-1], seed=seed)
    new_items = _sample(newest.items, max_new, seed)
    sources: list[Sequence[Item]] = []
    for dataset_id in earlier_datasets(store, dataset_ids):
        sources.append(build_dataset_probes(store, dataset_id, seed=seed).items)
    seen = {item.id for item in newest.items}
    carried = []
    for items in sources:
        fresh = [item.with_group("old") for item in items if item.id not in seen]
        seen.update(item.id for item in fresh)
        carried.append(fresh)
    quotas = _balanced_quotas([len(items) for items in carried], max_old)
    old_items = [
        item
        for items, quota in zip(carried, quotas, strict=True)
        for item in _sample(items, quota, seed)
    ]
    return new_items, old_items


def earlier_datasets(store: Store, dataset_ids: Sequence[str]) -> list[str]:
    """The datasets before the newest (the last of ``dataset_ids``), oldest window first.

    These are the lineage's earlier ids and, besides, every published dataset whose window
    ended by the newest one's start (the base corpus among them): nightly training replays all
    of those, so a model is expected to retain them even when a caller passes a short lineage.
    A listed id that is not a published dataset is an error.
    """
    newest = dataset_ids[-1]
    published = published_datasets(store)
    by_id = {d.dataset_id: d for d in published}
    listed = [i for i in dict.fromkeys(dataset_ids) if i != newest]
    missing = [i for i in [*listed, newest] if i not in by_id]
    if missing:
        raise ProbeError(f"dataset(s) {', '.join(missing)} of the lineage are not published")
    newest_start = by_id[newest].window["start"]
    return [
        d.dataset_id
        for d in published
        if d.dataset_id != newest and (d.dataset_id in listed or d.window["end"] <= newest_start)
    ]


def _sample(items: Sequence[Item], limit: int | None, seed: int) -> list[Item]:
    """At most ``limit`` items, chosen by the hash of seed and id, in their original order."""
    if limit is None or len(items) <= limit:
        return list(items)
    keep = set(sorted(range(len(items)), key=lambda i: _rank(seed, "sample", items[i].id))[:limit])
    return [item for i, item in enumerate(items) if i in keep]


def _balanced_quotas(sizes: Sequence[int], total: int | None) -> list[int]:
    """Split ``total`` over sources of ``sizes`` as evenly as they allow (water filling):
    a source smaller than its share gives the rest to the others."""
    if total is None:
        return list(sizes)
    quotas = [0] * len(sizes)
    left = total
    open_ = [i for i, size in enumerate(sizes) if size > 0]
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        for rank, i in enumerate(open_):
            give = min(sizes[i] - quotas[i], share + (1 if rank < extra else 0))
            quotas[i] += give
            left -= give
        open_ = [i for i in open_ if quotas[i] < sizes[i]]
        if share == 0 and extra == 0:
            break
    return quotas
