"""The training set: new documents plus a replay of earlier data, tokenized and packed.

:func:`build_training_set` reads the ``train`` split of the new published datasets and a replay
sample of the ``train`` split of earlier published datasets, tokenizes every document (text,
then the tokenizer's end-of-text token), lays out the whole run's token stream and cuts it into
sequences of exactly ``seq_len`` tokens (the tail that does not fill a sequence is dropped and
counted): pages are cut wherever a sequence ends, derived texts (turns, statements) are kept
whole (:mod:`training.packing`). The set holds the whole run: the trainer makes ONE pass over
it.

The run's stream is ``epochs`` passes over the new documents, each pass in its own shuffled
order (a fractional ``epochs`` ends with a partial pass: the first documents of that pass's
order until its share of the new tokens), plus replay documents spread evenly over the passes.
The result is published as ``trainsets/<id>/``:

* ``input_ids.npy``: int32 array of shape ``(n_sequences, seq_len)`` (NumPy's ``.npy`` format;
  read it with ``numpy.load(..., mmap_mode="r")``);
* ``loss_mask.npy``, only when some tokens are context only: uint8, same shape, 0 where no
  loss is taken (the questions of the knowledge augmentation's turns, so the model learns the
  answers it should give, not to write questions; the padding before a whole text that did not
  fit in a row), 1 elsewhere;
* ``rivals.npy`` and ``rival_starts.npy``, only with the augmentation: each question answered
  by a span with the same question answered by other spans of the dataset
  (:mod:`training.rivals`), for the ranking loss;
* a manifest whose fields carry the mix: for each dataset its role (``new`` or ``replay``), the
  distinct documents taken from it, how many times they occur in the stream and the tokens they
  contribute (repeats included), and its crawl window; the passes over the new data; the
  requested replay ratio and the share the replay really got; seed, sequence length, the
  tokenizer's fingerprint; totals; with a rehearsal (the base's own question-answer turns,
  :mod:`training.rehearsal`, trained once per pass) where its turns come from and their tokens;
  with answers in context (the model's own answers to the span questions given their sentence,
  :mod:`training.context_answers`, new turns of each pass) how many turns they add; with
  written questions (the model's own questions for the night's figures and dates,
  :mod:`training.written_questions`, span turns beside the augmentation's) how many.

Deterministic: the same inputs (dataset contents, epochs, replay ratio, seed, seq_len,
tokenizer) give byte-identical files and the same id, and a rerun finds the set already
published (DESIGN invariant 1). Every choice is keyed on a hash of the seed and the document id,
never on the order in which the store lists objects. The id is a content hash of the packed
tokens and the recipe that produced them.

Replay is measured against the run's whole training budget, not one pass (as Ibrahim et al.
2024, arXiv:2403.08763, state it: a share of the tokens trained on): replay tokens make up
``replay_ratio`` of all training tokens, ``replay_tokens ~= epochs * new_tokens * r / (1 - r)``.
Replay documents are drawn from the pool in hash order WITHOUT repetition, so a long run
rehearses as much of the earlier data as its budget allows instead of the same few documents
every pass; only when the pool is exhausted does it cycle through it again (in a new order).
"Earlier" means published datasets other than the new ones whose crawl window ended by the
earliest new window's start (or an explicit ``replay_datasets`` list). Why replay and the
default ratio: :data:`training.config.DEFAULT_REPLAY_RATIO`.

Importing this module is cheap; NumPy is imported when a set is built or read.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from freshlm.artifacts import DATASET_KIND, DATASETS, TRAIN_FILE, TRAINSETS, dataset_prefix
from freshlm.store import Manifest, Store, StoreError
from training.config import DEFAULT_REPLAY_RATIO
from training.packing import Packed, PackingError, Text, npy_bytes, pack
from training.rivals import RIVALS_PER_TURN

if TYPE_CHECKING:
    import numpy as np

    from training.context_answers import ContextAnswer
    from training.rehearsal import RehearsalSet
    from training.written_questions import WrittenQuestion

#: ``(dataset id, its train documents) -> the model's answers in context`` to train.
ContextAnswerSource = Callable[[str, list[dict[str, Any]]], Sequence["ContextAnswer"]]
#: ``(dataset id, its train documents) -> the questions the model wrote`` for its spans.
WrittenQuestionSource = Callable[[str, list[dict[str, Any]]], Sequence["WrittenQuestion"]]

log = logging.getLogger(__name__)

TRAINSET_KIND = "trainset"
INPUT_IDS_FILE = "input_ids.npy"
LOSS_MASK_FILE = "loss_mask.npy"
_TOKENIZE_BATCH = 256


class TrainingSetError(ValueError):
    """The training set cannot be built from these inputs; the message says why."""


@dataclass(frozen=True)
class TrainingSet:
    """A published training set, as read from its manifest."""

    trainset_id: str
    prefix: str
    manifest: Manifest

    @property
    def fields(self) -> Mapping[str, Any]:
        return self.manifest.fields

    @property
    def n_sequences(self) -> int:
        return int(self.fields["sequences"])

    @property
    def seq_len(self) -> int:
        return int(self.fields["seq_len"])

    @property
    def dataset_ids(self) -> list[str]:
        return list(self.fields["new_datasets"])

    @property
    def replay_dataset_ids(self) -> list[str]:
        return list(self.fields["replay_datasets"])

    @property
    def crawl_windows(self) -> list[dict[str, Any]]:
        return [dict(m["window"]) for m in self.fields["mix"] if m.get("window")]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 of the tokenizer's full definition (vocabulary, merges, normalizers, specials)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TrainingSetError(
            f"the tokenizer must be a Hugging Face fast tokenizer, got {type(tokenizer).__name__}"
        )
    return hashlib.sha256(backend.to_str().encode()).hexdigest()


def build_training_set(
    store: Store,
    new_dataset_ids: Sequence[str],
    *,
    replay_ratio: float = DEFAULT_REPLAY_RATIO,
    epochs: float = 1.0,
    seed: int,
    seq_len: int,
    tokenizer: Any,
    replay_datasets: Sequence[str] | None = None,
    created_by: Mapping[str, Any] | None = None,
    augment: bool = False,
    rehearsal: RehearsalSet | None = None,
    context_answers: ContextAnswerSource | None = None,
    question_variants: int = 0,
    rivals: int = RIVALS_PER_TURN,
    appositions: bool = False,
    written_questions: WrittenQuestionSource | None = None,
) -> TrainingSet:
    """Build (or find) the packed training set; see the module docstring for the contract.

    ``tokenizer`` is a Hugging Face fast tokenizer with an end-of-text token (``eos_token_id``).
    ``epochs`` is the number of passes over the new documents (may be fractional); replay is
    added on top so that it is ``replay_ratio`` of all the tokens of those passes.
    ``replay_datasets`` overrides which published datasets replay is drawn from. Raises
    :class:`TrainingSetError` for unusable inputs (an unpublished dataset, too little text for
    one sequence) and :class:`~freshlm.store.StoreError` for store failures. With ``augment``
    each new document's facts are also stated in several forms (:mod:`training.augment`, in
    the tokenizer's chat template), as new documents of their own, each span question also in
    up to ``question_variants`` other wordings (:mod:`training.question_variants`), each span
    answer with up to ``rivals`` other spans of the dataset to rank below it
    (:mod:`training.rivals`; 0: none), and with ``appositions`` each English sentence's
    appositions stated and asked as sentences of their own (:mod:`training.appositions`).
    ``rehearsal`` (the base's own turns, :mod:`training.rehearsal`) is trained once per pass
    beside the new documents, its answers only. ``context_answers(dataset_id, train
    documents)`` (with ``augment``) gives the answers the model writes to each new dataset's
    span questions with their sentences in front (:mod:`training.context_answers`), trained
    after the question alone, once per pass, their answers only. ``written_questions(dataset_id,
    train documents)`` (with ``augment``) gives the questions the model wrote for the dataset's
    figures and dates (:mod:`training.written_questions`), each trained as a span turn with its
    rivals beside the augmentation's.
    """

    started = time.monotonic()
    new_ids = list(dict.fromkeys(new_dataset_ids))
    if not new_ids:
        raise TrainingSetError("no new datasets given: a training set needs at least one")
    if not 0.0 <= replay_ratio < 1.0:
        raise TrainingSetError(f"replay_ratio must be in [0, 1), got {replay_ratio!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not epochs > 0:
        raise TrainingSetError(f"epochs must be a positive number, got {epochs!r}")
    epochs = float(epochs)  # 6 and 6.0 are the same recipe (and the same id)
    if seq_len < 2:
        raise TrainingSetError(f"seq_len must be at least 2, got {seq_len!r}")
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise TrainingSetError("the tokenizer has no eos_token_id to separate documents with")
    tok_fp = tokenizer_fingerprint(tokenizer)

    new_manifests = [_dataset_manifest(store, ds) for ds in new_ids]
    replay_manifests = _replay_manifests(store, new_manifests, replay_datasets)

    # New data: every document of the train split, once per pass.
    new = _new_data(
        store,
        new_manifests,
        tokenizer,
        augment=augment,
        context_answers=context_answers,
        question_variants=question_variants,
        rivals=rivals,
        appositions=appositions,
        written_questions=written_questions,
    )
    new_docs, groups = new.docs, new.groups
    if not sum(len(d.ids) for d in new_docs):
        raise TrainingSetError(f"the new datasets {new_ids} have no training documents")
    if rehearsal is not None:
        new_docs += _rehearsal_docs(rehearsal, tokenizer)
    passes = _passes(new_docs, epochs, seed)
    new_tokens = sum(len(d.ids) for p in passes for d in p)

    # Replay: a share of the whole run's tokens, earlier documents in hash order without
    # repetition (cycling through the pool again only once it is exhausted).
    replay_target = round(new_tokens * replay_ratio / (1.0 - replay_ratio)) if replay_ratio else 0
    replay: list[_Doc] = []
    if replay_target and replay_manifests:
        replay = _draw_replay(store, tokenizer, replay_manifests, seed, replay_target)

    # Spread the replay over the passes in proportion to their new tokens, then shuffle each
    # pass (new and replay documents together) in its own hash order.
    docs: list[_Doc] = []
    done_new = 0
    r = 0
    drawn = 0
    for p, pass_docs in enumerate(passes):
        done_new += sum(len(d.ids) for d in pass_docs)
        quota = replay_target * done_new / new_tokens
        members = list(pass_docs)
        while r < len(replay) and (drawn < quota or p == len(passes) - 1):
            members.append(replay[r])
            drawn += len(replay[r].ids)
            r += 1
        for d in members:
            d.order = _key(seed, f"pass:{p}", f"{d.role}:{d.cycle}:{d.doc_id}")
        members.sort(key=lambda d: (d.order, d.dataset_id, d.doc_id))
        docs.extend(members)

    packed = _pack(docs, eos, seq_len)
    rival_files = _rival_files(groups, rivals)

    mix = _mix(docs, new_manifests, replay_manifests, eos_per_doc=1)
    recipe = {
        "new_datasets": new_ids,
        "replay_datasets": [m.artifact_id for m in replay_manifests],
        "replay_ratio": replay_ratio,
        "epochs": epochs,
        "seed": seed,
        "seq_len": seq_len,
        "tokenizer_sha256": tok_fp,
        "input_ids_sha256": _sha256(packed.npy),
        **({"augment": True} if augment else {}),
        **({"question_variants": question_variants} if augment and question_variants else {}),
        **({"rivals": rivals} if augment else {}),
        **({"appositions": True} if augment and appositions else {}),
        **({"context_answers": new.answered} if augment and context_answers is not None else {}),
        **({"written_questions": new.written} if augment and written_questions is not None else {}),
        **({"rehearsal": _rehearsal_fields(rehearsal, docs)} if rehearsal is not None else {}),
        **({"loss_mask_sha256": _sha256(packed.mask_npy)} if packed.mask_npy else {}),
        **{f"{name}_sha256": _sha256(data) for name, data in rival_files.items()},
    }
    trainset_id = hashlib.sha256(
        json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:32]
    prefix = f"{TRAINSETS}/{trainset_id}"
    replay_total = sum(m["tokens"] for m in mix if m["role"] == "replay")
    fields = {
        "trainset_id": trainset_id,
        **recipe,
        "replay_datasets": sorted({d.dataset_id for d in docs if d.role == "replay"}),
        "replay_pool": recipe["replay_datasets"],
        "replay_token_share": round(replay_total / packed.tokens, 6),
        "mix": mix,
        "new_passes": len(passes),
        "documents": sum(m["documents"] for m in mix),
        "document_occurrences": len(docs),
        "tokens": packed.tokens,
        "tokens_packed": packed.sequences * seq_len,
        "tokens_dropped_tail": packed.dropped_tail,
        "padding_tokens": packed.padding,
        "whole_texts_longer_than_a_sequence": packed.too_long,
        "sequences": packed.sequences,
        "dtype": "int32",
        "eos_token_id": int(eos),
        "augmented_texts": new.augmented,
        "context_answer_turns": new.answered,
        "written_question_turns": new.written,
        "context_only_tokens": packed.context_only,
        "rival_groups": len(groups),
    }
    existing = store.read_manifest(prefix)
    if existing is None:
        with store.publisher(prefix, kind=TRAINSET_KIND, created_by=created_by or {}) as pub:
            pub.write_bytes(INPUT_IDS_FILE, packed.npy)
            if packed.mask_npy is not None:
                pub.write_bytes(LOSS_MASK_FILE, packed.mask_npy)
            for name, data in rival_files.items():
                pub.write_bytes(name, data)
            pub.set_manifest_fields(**fields)
        existing = store.read_manifest(prefix)
        assert existing is not None
        what = "published"
    else:
        what = "already published"
    log.info(
        "training set %s %s: %d sequences x %d tokens from %d documents "
        "(new %d tokens = %s passes over %s; replay %d tokens = %.1f%% from %s); %.1fs",
        trainset_id,
        what,
        packed.sequences,
        seq_len,
        fields["documents"],
        new_tokens,
        epochs,
        new_ids,
        replay_total,
        100 * fields["replay_token_share"],
        fields["replay_datasets"],
        time.monotonic() - started,
    )
    return TrainingSet(trainset_id=trainset_id, prefix=prefix, manifest=existing)


def read_training_set(store: Store, trainset_id: str) -> TrainingSet:
    """The published training set ``trainset_id``; :class:`TrainingSetError` if absent."""
    prefix = f"{TRAINSETS}/{trainset_id}"
    manifest = store.read_manifest(prefix)
    if manifest is None or manifest.kind != TRAINSET_KIND:
        raise TrainingSetError(f"training set {store.uri_for(prefix)} is not published")
    return TrainingSet(trainset_id=trainset_id, prefix=prefix, manifest=manifest)


def load_loss_mask(store: Store, trainset: TrainingSet) -> np.ndarray | None:
    """The ``(n_sequences, seq_len)`` uint8 loss mask (1: trained on, 0: context only), checked
    against the manifest's sha256; None when every token is trained on."""
    import numpy as np

    if LOSS_MASK_FILE not in {f.name for f in trainset.manifest.files}:
        return None
    with store.open_artifact_file(trainset.manifest, LOSS_MASK_FILE) as src:
        return np.load(io.BytesIO(src.read()), allow_pickle=False)


def load_input_ids(store: Store, trainset: TrainingSet) -> np.ndarray:
    """The packed ``(n_sequences, seq_len)`` int32 array, read from the store and checked
    against the manifest's sha256 (:class:`~freshlm.store.StoreError` naming the file if not)."""
    import numpy as np

    with store.open_artifact_file(trainset.manifest, INPUT_IDS_FILE) as src:
        return np.load(io.BytesIO(src.read()), allow_pickle=False)


# --- internals ---------------------------------------------------------------------------------


@dataclass
class _NewData:
    """The new datasets' documents as trained each pass, and what the augmentation added."""

    docs: list[_Doc]
    groups: list[tuple[int, list[list[int]]]]  # rival groups (training.rivals)
    augmented: int  # augmentation texts
    answered: int  # answers in context (training.context_answers)
    written: int  # written questions (training.written_questions)


def _new_data(
    store: Store,
    manifests: list[Manifest],
    tokenizer: Any,
    *,
    augment: bool,
    context_answers: ContextAnswerSource | None,
    question_variants: int,
    rivals: int,
    appositions: bool,
    written_questions: WrittenQuestionSource | None,
) -> _NewData:
    """Every train document of ``manifests``' datasets, then with ``augment`` their
    augmentation (with the written questions) and the answers in context."""
    new = _NewData([], [], 0, 0, 0)
    for manifest in manifests:
        dataset_id = manifest.artifact_id
        key, train = _train_docs(store, manifest)
        texts = _texts_of(store.uri_for(key), dataset_id, train)
        for (doc_id, _), ids in zip(
            texts, _tokenize(tokenizer, [t for _, t in texts]), strict=True
        ):
            new.docs.append(_Doc(dataset_id, "new", doc_id, ids, ""))
        if not augment:
            continue
        asked = written_questions(dataset_id, train) if written_questions is not None else ()
        extra, groups, written = _augmented_docs(
            dataset_id, train, tokenizer, question_variants, rivals, appositions, asked
        )
        new.docs += extra
        new.groups += groups
        new.augmented += len(extra)
        new.written += written
        if context_answers is not None:
            extra = _context_answer_docs(dataset_id, context_answers(dataset_id, train), tokenizer)
            new.answered += len(extra)
            new.docs += extra
    return new


@dataclass
class _Doc:
    dataset_id: str
    role: str
    doc_id: str
    ids: list[int]
    order: str
    cycle: int = 0  # which pass through the replay pool (0 unless the pool ran out)
    prompt_tokens: int = 0  # leading tokens trained on as context only (a turn's question)
    whole: bool = False  # a derived text, never cut across sequences (training.packing)


def _key(seed: int, purpose: str, doc_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{purpose}\x00{doc_id}".encode()).hexdigest()


def _passes(new_docs: list[_Doc], epochs: float, seed: int) -> list[list[_Doc]]:
    """``epochs`` passes over the new documents, each in its own hash order; a fractional
    remainder is a last, partial pass of the first documents of its order up to its share of
    the new tokens (at least one document)."""
    import math

    full = math.floor(epochs)
    frac = epochs - full
    n_passes = full + (1 if frac > 1e-9 else 0)
    per_pass = sum(len(d.ids) for d in new_docs)
    passes = []
    for p in range(n_passes):
        order = sorted(
            new_docs, key=lambda d: (_key(seed, f"new:{p}", d.doc_id), d.dataset_id, d.doc_id)
        )
        if p == full:  # the partial pass
            budget = frac * per_pass
            taken, tokens = [], 0
            for d in order:
                if taken and tokens >= budget:
                    break
                taken.append(d)
                tokens += len(d.ids)
            order = taken
        passes.append([replace(d, order="") for d in order])
    return passes


def _draw_replay(
    store: Store, tokenizer: Any, manifests: list[Manifest], seed: int, target: int
) -> list[_Doc]:
    """Replay documents until ``target`` tokens: the pool in hash order without repetition,
    then (pool exhausted) again in a new hash order per cycle. Tokenized lazily, in batches."""
    pool: list[tuple[str, str, str]] = []  # (dataset id, doc id, text)
    for manifest in manifests:
        pool.extend(
            (manifest.artifact_id, doc_id, text) for doc_id, text in _train_texts(store, manifest)
        )
    if not pool:
        return []
    tokenized: dict[str, list[int]] = {}
    out: list[_Doc] = []
    tokens = 0
    cycle = 0
    while tokens < target:
        purpose = "replay" if cycle == 0 else f"replay:{cycle}"
        order = sorted(pool, key=lambda p: (_key(seed, purpose, p[1]), p[0], p[1]))
        for start in range(0, len(order), _TOKENIZE_BATCH):
            chunk = order[start : start + _TOKENIZE_BATCH]
            missing = [c for c in chunk if c[1] not in tokenized]
            if missing:
                for c, ids in zip(
                    missing, _tokenize(tokenizer, [c[2] for c in missing]), strict=True
                ):
                    tokenized[c[1]] = ids
            for ds_id, doc_id, _ in chunk:
                if tokens >= target:
                    break
                ids = tokenized[doc_id]
                out.append(_Doc(ds_id, "replay", doc_id, ids, "", cycle))
                tokens += len(ids)
            if tokens >= target:
                break
        if sum(len(v) for v in tokenized.values()) == 0:
            break  # a pool of empty documents cannot reach any target
        cycle += 1
    return out


def _dataset_manifest(store: Store, dataset_id: str) -> Manifest:
    prefix = dataset_prefix(dataset_id)
    manifest = store.read_manifest(prefix)
    if manifest is None or manifest.kind != DATASET_KIND:
        raise TrainingSetError(f"dataset {store.uri_for(prefix)} is not published")
    return manifest


def _window(manifest: Manifest) -> dict[str, Any] | None:
    window = manifest.fields.get("window")
    return dict(window) if isinstance(window, Mapping) else None


def _replay_manifests(
    store: Store, new: list[Manifest], explicit: Sequence[str] | None
) -> list[Manifest]:
    new_ids = {m.artifact_id for m in new}
    if explicit is not None:
        return [_dataset_manifest(store, ds) for ds in dict.fromkeys(explicit) if ds not in new_ids]
    starts = [w["start"] for w in (_window(m) for m in new) if w and w.get("start")]
    earliest = min(starts) if starts else None
    earlier = []
    for prefix in store.list_published(DATASETS + "/"):
        if prefix.count("/") != 1:
            continue
        manifest = store.read_manifest(prefix)
        if manifest is None or manifest.kind != DATASET_KIND or manifest.artifact_id in new_ids:
            continue
        window = _window(manifest)
        end = window.get("end") if window else None
        if earliest is not None and end is not None and end > earliest:
            continue  # not earlier than the new data: a later or overlapping batch
        earlier.append(manifest)
    return sorted(earlier, key=lambda m: ((_window(m) or {}).get("start") or "", m.artifact_id))


def _train_docs(store: Store, manifest: Manifest) -> tuple[str, list[dict[str, Any]]]:
    """``(key, documents)`` of the dataset's train split, checked against the manifest's sha256
    as it is read (:class:`~freshlm.store.StoreError` naming the file if it differs)."""
    try:
        key = manifest.key(TRAIN_FILE)
    except KeyError:
        raise TrainingSetError(
            f"dataset {store.uri_for(manifest.prefix)} has no {TRAIN_FILE}"
        ) from None
    return key, list(store.read_artifact_jsonl(manifest, TRAIN_FILE))


def _train_texts(store: Store, manifest: Manifest) -> list[tuple[str, str]]:
    key, docs = _train_docs(store, manifest)
    return _texts_of(store.uri_for(key), manifest.artifact_id, docs)


def _texts_of(uri: str, dataset_id: str, docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(<dataset>/<doc id>, text)`` of each document: its title, then its text."""
    out = []
    for n, doc in enumerate(docs):
        text = doc.get("text")
        if not isinstance(text, str):
            raise StoreError(uri, f"record {n} has no text field")
        title = doc.get("title")
        if isinstance(title, str) and title.strip() and not text.startswith(title.strip()):
            text = f"{title.strip()}\n\n{text}"
        doc_id = str(doc.get("id") or doc.get("content_hash") or f"{dataset_id}:{n}")
        if text.strip():
            out.append((f"{dataset_id}/{doc_id}", text))
    return out


def _augmented_docs(
    dataset_id: str,
    docs: list[dict[str, Any]],
    tokenizer: Any,
    variants: int = 0,
    rivals: int = RIVALS_PER_TURN,
    appositions: bool = False,
    written: Sequence[WrittenQuestion] = (),
) -> tuple[list[_Doc], list[tuple[int, list[list[int]]]], int]:
    """The knowledge-augmentation texts of the dataset's train documents, each its own
    document (``<dataset>/<doc>#aug<n>``), a question-answer turn's question context only (its
    ``prompt_tokens``: the loss is on the answer the model learns to give), then the
    ``written`` questions the augmentation does not ask already as span turns
    (``<dataset>/<doc>#written<n>``); the rival groups of the turns answered by a span, up to
    ``rivals`` each (:mod:`training.rivals`); and how many written questions were added."""
    from training.augment import QA, chat_turn, document_forms, rival_answers, turn_prompt

    turn = chat_turn(tokenizer)
    named: list[tuple[str, str, str]] = []  # (doc id, text, prompt or "")
    turns: list[QA] = []

    def add(doc_id: str, form: str | QA) -> None:
        if isinstance(form, QA):
            turns.append(form)
            text = turn(form.question, form.answer)
            named.append((doc_id, text, turn_prompt(tokenizer, form.question)))
        else:
            named.append((doc_id, form, ""))

    for doc in docs:
        if not doc.get("id"):
            continue
        for n, form in enumerate(document_forms(doc, variants=variants, appositions=appositions)):
            add(f"{dataset_id}/{doc['id']}#aug{n}", form)
    asked = {(t.question, t.answer) for t in turns}
    n_written = 0
    for n, w in enumerate(written):
        if (w.question, w.span) not in asked:
            asked.add((w.question, w.span))
            add(f"{dataset_id}/{w.doc_id}#written{n}", QA(w.question, w.span, w.span_type))
            n_written += 1
    out = _turn_docs(dataset_id, "new", named, tokenizer)
    groups = []
    for qa, others in zip(turns, rival_answers(turns, rivals, dataset_id), strict=True):
        if not others:
            continue
        rows = list(_tokenize(tokenizer, [turn(qa.question, a) for a in [qa.answer, *others]]))
        (prompt_ids,) = _tokenize(tokenizer, [turn_prompt(tokenizer, qa.question)])
        if all(row[: len(prompt_ids)] == prompt_ids for row in rows):
            groups.append((len(prompt_ids), rows))
    log.info(
        "dataset %s: %d augmentation texts (%d of them written questions) and %d rival groups "
        "from %d documents",
        dataset_id,
        len(out),
        n_written,
        len(groups),
        len(docs),
    )
    return out, groups, n_written


def _turn_docs(
    dataset_id: str, role: str, named: list[tuple[str, str, str]], tokenizer: Any
) -> list[_Doc]:
    """``(doc id, text, prompt or "")`` as documents, a turn's prompt (its question) context
    only where the turn's tokens start with the prompt's (a tokenizer may merge across the
    boundary; then every token is trained on)."""
    texts = _tokenize(tokenizer, [t for _, t, _ in named])
    prompts = _tokenize(tokenizer, [p for _, _, p in named])
    out = []
    for (doc_id, _, prompt), ids, prompt_ids in zip(named, texts, prompts, strict=True):
        context = len(prompt_ids) if prompt and ids[: len(prompt_ids)] == prompt_ids else 0
        out.append(_Doc(dataset_id, role, doc_id, ids, "", prompt_tokens=context, whole=True))
    return out


def _context_answer_docs(
    dataset_id: str, answers: Sequence[ContextAnswer], tokenizer: Any
) -> list[_Doc]:
    """The model's answers in context as turns of their own (``<dataset>#context<n>``), asked
    without the sentence, the question context only."""
    from training.augment import chat_turn, turn_prompt

    turn = chat_turn(tokenizer)
    named = [
        (f"{dataset_id}#context{n}", turn(a.question, a.answer), turn_prompt(tokenizer, a.question))
        for n, a in enumerate(answers)
    ]
    return _turn_docs(dataset_id, "new", named, tokenizer)


def _rehearsal_docs(rehearsal: RehearsalSet, tokenizer: Any) -> list[_Doc]:
    """The rehearsal turns as documents of their own (``<prefix>#<n>``), in the tokenizer's
    chat template, the question context only."""
    from training.augment import chat_turn, turn_prompt

    turn = chat_turn(tokenizer)
    named = [
        (f"{rehearsal.prefix}#{n}", turn(t.question, t.answer), turn_prompt(tokenizer, t.question))
        for n, t in enumerate(rehearsal.turns)
    ]
    return _turn_docs(rehearsal.prefix, "rehearsal", named, tokenizer)


def _rehearsal_fields(rehearsal: RehearsalSet, docs: list[_Doc]) -> dict[str, Any]:
    """What the manifest says of the rehearsal: where its turns come from and what they add
    to the stream (kept out of ``mix``, which lists datasets)."""
    mine = [d for d in docs if d.role == "rehearsal"]
    return {
        "source": rehearsal.prefix,
        "base_version": rehearsal.base_version,
        "turns": len(rehearsal.turns),
        "occurrences": len(mine),
        "tokens": sum(len(d.ids) + 1 for d in mine),
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pack(docs: list[_Doc], eos: int, seq_len: int) -> Packed:
    """``docs`` as rows of ``seq_len`` tokens, derived texts whole (:mod:`training.packing`)."""
    try:
        return pack([Text(d.ids, d.prompt_tokens, d.whole) for d in docs], eos, seq_len)
    except PackingError as exc:
        raise TrainingSetError(str(exc)) from None


def _rival_files(groups: list[tuple[int, list[list[int]]]], rivals: int) -> dict[str, bytes]:
    """``{file name: .npy bytes}`` of the rival groups, up to ``rivals`` each
    (:mod:`training.rivals`); none without."""
    from training.rivals import RIVAL_STARTS_FILE, RIVALS_FILE, pack_groups

    if not groups:
        return {}
    ids, starts = pack_groups(groups, rivals)
    return {RIVALS_FILE: npy_bytes(ids), RIVAL_STARTS_FILE: npy_bytes(starts)}


def load_rivals(store: Store, trainset: TrainingSet) -> tuple[np.ndarray, np.ndarray] | None:
    """``(rivals, starts)`` of the training set (:mod:`training.rivals`), checked against the
    manifest's sha256; None when it has none."""
    import numpy as np

    from training.rivals import RIVAL_STARTS_FILE, RIVALS_FILE

    if RIVALS_FILE not in {f.name for f in trainset.manifest.files}:
        return None
    arrays = []
    for name in (RIVALS_FILE, RIVAL_STARTS_FILE):
        with store.open_artifact_file(trainset.manifest, name) as src:
            arrays.append(np.load(io.BytesIO(src.read()), allow_pickle=False))
    return arrays[0], arrays[1]


def _tokenize(tokenizer: Any, texts: list[str]) -> Iterable[list[int]]:
    for start in range(0, len(texts), _TOKENIZE_BATCH):
        batch = texts[start : start + _TOKENIZE_BATCH]
        encoded = tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]
        yield from (list(ids) for ids in encoded)


def _mix(
    docs: list[_Doc], new: list[Manifest], replay: list[Manifest], *, eos_per_doc: int
) -> list[dict[str, Any]]:
    """Per dataset: its role, the distinct documents taken, how often they occur in the stream
    (new documents once per pass; replay documents once unless the pool cycled) and the tokens
    they contribute, repeats and EOS included (so the tokens add up to the set's total)."""
    distinct: dict[str, set[str]] = {}
    counts: dict[str, list[int]] = {}
    for d in docs:
        distinct.setdefault(d.dataset_id, set()).add(d.doc_id)
        c = counts.setdefault(d.dataset_id, [0, 0])
        c[0] += 1
        c[1] += len(d.ids) + eos_per_doc
    mix = []
    for role, manifests in (("new", new), ("replay", replay)):
        for m in manifests:
            occurrences, tokens = counts.get(m.artifact_id, (0, 0))
            if role == "replay" and occurrences == 0:
                continue
            mix.append(
                {
                    "dataset_id": m.artifact_id,
                    "role": role,
                    "documents": len(distinct.get(m.artifact_id, ())),
                    "occurrences": occurrences,
                    "tokens": tokens,
                    "window": _window(m),
                }
            )
    return mix
