"""The training set: new documents plus a replay of earlier data, tokenized and packed.

:func:`build_training_set` reads the ``train`` split of the new published datasets and a replay
sample of the ``train`` split of earlier published datasets, tokenizes every document (text,
then the tokenizer's end-of-text token), shuffles the documents, concatenates them and cuts the
stream into sequences of exactly ``seq_len`` tokens (the tail that does not fill a sequence is
dropped and counted). The result is published as ``trainsets/<id>/``:

* ``input_ids.npy``: int32 array of shape ``(n_sequences, seq_len)`` (NumPy's ``.npy`` format;
  read it with ``numpy.load(..., mmap_mode="r")``);
* a manifest whose fields carry the mix: for each dataset its role (``new`` or ``replay``), the
  documents and tokens taken from it, and its crawl window; the requested replay ratio and the
  share the replay really got; seed, sequence length, the tokenizer's fingerprint; totals.

Deterministic: the same inputs (dataset contents, replay ratio, seed, seq_len, tokenizer) give
byte-identical files and the same id, and a rerun finds the set already published (DESIGN
invariant 1). Every choice is keyed on a hash of the seed and the document id, never on the
order in which the store lists objects. The id is a content hash of the packed tokens and the
recipe that produced them.

Replay is drawn so that replay tokens make up ``replay_ratio`` of the training tokens:
``replay_tokens ~= new_tokens * r / (1 - r)``, or all earlier data when there is less. "Earlier"
means published datasets other than the new ones whose crawl window ended by the earliest new
window's start (or an explicit ``replay_datasets`` list). Why replay and the default ratio:
:data:`training.config.DEFAULT_REPLAY_RATIO`.

Importing this module is cheap; NumPy is imported when a set is built or read.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from freshlm.store import Manifest, Store, StoreError
from training.config import DEFAULT_REPLAY_RATIO

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

TRAINSETS = "trainsets"
DATASETS = "datasets"
TRAINSET_KIND = "trainset"
INPUT_IDS_FILE = "input_ids.npy"
TRAIN_FILE = "train.jsonl.gz"  # the train split of a published dataset
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
    seed: int,
    seq_len: int,
    tokenizer: Any,
    replay_datasets: Sequence[str] | None = None,
    created_by: Mapping[str, Any] | None = None,
) -> TrainingSet:
    """Build (or find) the packed training set; see the module docstring for the contract.

    ``tokenizer`` is a Hugging Face fast tokenizer with an end-of-text token (``eos_token_id``).
    ``replay_datasets`` overrides which published datasets replay is drawn from. Raises
    :class:`TrainingSetError` for unusable inputs (an unpublished dataset, too little text for
    one sequence) and :class:`~freshlm.store.StoreError` for store failures.
    """
    import numpy as np

    started = time.monotonic()
    new_ids = list(dict.fromkeys(new_dataset_ids))
    if not new_ids:
        raise TrainingSetError("no new datasets given: a training set needs at least one")
    if not 0.0 <= replay_ratio < 1.0:
        raise TrainingSetError(f"replay_ratio must be in [0, 1), got {replay_ratio!r}")
    if seq_len < 2:
        raise TrainingSetError(f"seq_len must be at least 2, got {seq_len!r}")
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise TrainingSetError("the tokenizer has no eos_token_id to separate documents with")
    tok_fp = tokenizer_fingerprint(tokenizer)

    new_manifests = [_dataset_manifest(store, ds) for ds in new_ids]
    replay_manifests = _replay_manifests(store, new_manifests, replay_datasets)

    # New data: every document of the train split.
    docs: list[_Doc] = []
    for manifest in new_manifests:
        texts = _train_texts(store, manifest)
        for (doc_id, _), ids in zip(
            texts, _tokenize(tokenizer, [t for _, t in texts]), strict=True
        ):
            docs.append(_Doc(manifest.artifact_id, "new", doc_id, ids, _key(seed, "doc", doc_id)))
    new_tokens = sum(len(d.ids) for d in docs)
    if new_tokens == 0:
        raise TrainingSetError(f"the new datasets {new_ids} have no training documents")

    # Replay: earlier documents in hash order until the replay share of tokens is reached.
    replay_target = round(new_tokens * replay_ratio / (1.0 - replay_ratio)) if replay_ratio else 0
    replay_tokens = 0
    if replay_target and replay_manifests:
        pool: list[tuple[str, str, str, str]] = []  # (order key, dataset id, doc id, text)
        for manifest in replay_manifests:
            for doc_id, text in _train_texts(store, manifest):
                pool.append((_key(seed, "replay", doc_id), manifest.artifact_id, doc_id, text))
        pool.sort()
        i = 0
        while i < len(pool) and replay_tokens < replay_target:
            chunk = pool[i : i + _TOKENIZE_BATCH]
            i += len(chunk)
            for (_, ds_id, doc_id, _), ids in zip(
                chunk, _tokenize(tokenizer, [p[3] for p in chunk]), strict=True
            ):
                if replay_tokens >= replay_target:
                    break
                docs.append(_Doc(ds_id, "replay", doc_id, ids, _key(seed, "doc", doc_id)))
                replay_tokens += len(ids)

    # Pack: shuffle documents (hash order), concatenate with EOS, cut into full sequences.
    docs.sort(key=lambda d: (d.order, d.dataset_id, d.doc_id))
    stream = np.fromiter(
        (t for d in docs for t in (*d.ids, eos)),
        dtype=np.int64,
    )
    n_seq = len(stream) // seq_len
    if n_seq == 0:
        raise TrainingSetError(
            f"{len(stream)} tokens from {len(docs)} documents do not fill one sequence of "
            f"seq_len={seq_len}; lower seq_len or add data"
        )
    if int(stream.max()) > np.iinfo(np.int32).max:
        raise TrainingSetError("token ids do not fit int32")
    packed = stream[: n_seq * seq_len].astype(np.int32).reshape(n_seq, seq_len)
    npy = _npy_bytes(packed)

    mix = _mix(docs, new_manifests, replay_manifests, eos_per_doc=1)
    recipe = {
        "new_datasets": new_ids,
        "replay_datasets": [m.artifact_id for m in replay_manifests],
        "replay_ratio": replay_ratio,
        "seed": seed,
        "seq_len": seq_len,
        "tokenizer_sha256": tok_fp,
        "input_ids_sha256": hashlib.sha256(npy).hexdigest(),
    }
    trainset_id = hashlib.sha256(
        json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()[:32]
    prefix = f"{TRAINSETS}/{trainset_id}"
    total_tokens = len(stream)
    replay_total = sum(m["tokens"] for m in mix if m["role"] == "replay")
    fields = {
        "trainset_id": trainset_id,
        **recipe,
        "replay_datasets": sorted({d.dataset_id for d in docs if d.role == "replay"}),
        "replay_pool": recipe["replay_datasets"],
        "replay_token_share": round(replay_total / total_tokens, 6),
        "mix": mix,
        "documents": len(docs),
        "tokens": total_tokens,
        "tokens_packed": n_seq * seq_len,
        "tokens_dropped_tail": total_tokens - n_seq * seq_len,
        "sequences": n_seq,
        "dtype": "int32",
        "eos_token_id": int(eos),
    }
    existing = store.read_manifest(prefix)
    if existing is None:
        with store.publisher(prefix, kind=TRAINSET_KIND, created_by=created_by or {}) as pub:
            pub.write_bytes(INPUT_IDS_FILE, npy)
            pub.set_manifest_fields(**fields)
        existing = store.read_manifest(prefix)
        assert existing is not None
        what = "published"
    else:
        what = "already published"
    log.info(
        "training set %s %s: %d sequences x %d tokens from %d documents "
        "(new %d tokens from %s; replay %d tokens = %.1f%% from %s); %.1fs",
        trainset_id,
        what,
        n_seq,
        seq_len,
        len(docs),
        new_tokens,
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


def load_input_ids(store: Store, trainset: TrainingSet) -> np.ndarray:
    """The packed ``(n_sequences, seq_len)`` int32 array, read from the store."""
    import numpy as np

    with store.open_read(trainset.manifest.key(INPUT_IDS_FILE)) as src:
        return np.load(io.BytesIO(src.read()), allow_pickle=False)


# --- internals ---------------------------------------------------------------------------------


@dataclass
class _Doc:
    dataset_id: str
    role: str
    doc_id: str
    ids: list[int]
    order: str


def _key(seed: int, purpose: str, doc_id: str) -> str:
    return hashlib.sha256(f"{seed}\x00{purpose}\x00{doc_id}".encode()).hexdigest()


def _dataset_manifest(store: Store, dataset_id: str) -> Manifest:
    prefix = f"{DATASETS}/{dataset_id}"
    manifest = store.read_manifest(prefix)
    if manifest is None or manifest.kind != "dataset":
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
        if manifest is None or manifest.kind != "dataset" or manifest.artifact_id in new_ids:
            continue
        window = _window(manifest)
        end = window.get("end") if window else None
        if earliest is not None and end is not None and end > earliest:
            continue  # not earlier than the new data: a later or overlapping batch
        earlier.append(manifest)
    return sorted(earlier, key=lambda m: ((_window(m) or {}).get("start") or "", m.artifact_id))


def _train_texts(store: Store, manifest: Manifest) -> list[tuple[str, str]]:
    try:
        key = manifest.key(TRAIN_FILE)
    except KeyError:
        raise TrainingSetError(
            f"dataset {store.uri_for(manifest.prefix)} has no {TRAIN_FILE}"
        ) from None
    out = []
    for n, doc in enumerate(store.read_jsonl(key)):
        text = doc.get("text")
        if not isinstance(text, str):
            raise StoreError(store.uri_for(key), f"record {n} has no text field")
        title = doc.get("title")
        if isinstance(title, str) and title.strip() and not text.startswith(title.strip()):
            text = f"{title.strip()}\n\n{text}"
        doc_id = str(doc.get("id") or doc.get("content_hash") or f"{manifest.artifact_id}:{n}")
        if text.strip():
            out.append((f"{manifest.artifact_id}/{doc_id}", text))
    return out


def _tokenize(tokenizer: Any, texts: list[str]) -> Iterable[list[int]]:
    for start in range(0, len(texts), _TOKENIZE_BATCH):
        batch = texts[start : start + _TOKENIZE_BATCH]
        encoded = tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]
        yield from (list(ids) for ids in encoded)


def _npy_bytes(array: np.ndarray) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _mix(
    docs: list[_Doc], new: list[Manifest], replay: list[Manifest], *, eos_per_doc: int
) -> list[dict[str, Any]]:
    counts: dict[str, list[int]] = {}
    for d in docs:
        c = counts.setdefault(d.dataset_id, [0, 0])
        c[0] += 1
        c[1] += len(d.ids) + eos_per_doc
    mix = []
    for role, manifests in (("new", new), ("replay", replay)):
        for m in manifests:
            documents, tokens = counts.get(m.artifact_id, (0, 0))
            if role == "replay" and documents == 0:
                continue
            mix.append(
                {
                    "dataset_id": m.artifact_id,
                    "role": role,
                    "documents": documents,
                    "tokens": tokens,
                    "window": _window(m),
                }
            )
    return mix
