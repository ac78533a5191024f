"""Bootstrap the base model offline: tokenizer, tiny GPT-2, brief pretraining, registry.

Nothing may be downloaded at run time, so the embedded mode makes its own base model from a
published **base-corpus dataset** (``role: base-corpus``,
:data:`freshlm.artifacts.BASE_CORPUS_ROLE`): the text the base is pretrained on, published
before the model exists (the demo publishes the sandbox world's archive:
:mod:`sandbox.base_model`). The same dataset is later replayed and
probed for retention, so the base's own text is an earlier dataset like any other.

1. :func:`read_corpus` — the corpus's documents: each document's text is its title and its
   ``text``, one per line; documents are ordered by ``meta.slug`` (else id) and split by their
   ``split`` field (train, or held out for perplexity).
2. :func:`train_tokenizer` — a byte-level BPE tokenizer trained with ``tokenizers`` (lossless
   on any text, Korean included, since every byte has a token).
3. :func:`build_model` — a ``GPT2LMHeadModel`` sized by :class:`ModelConfig` (default ~4.2M
   parameters: 4 layers, 256 wide, 4 heads, 256 positions).
4. :func:`pretrain` — a plain, deterministic torch loop over random windows of the text, so the
   model starts from real language statistics.
5. :func:`bootstrap_base_model` — all of the above, saved in the standard Hugging Face layout
   (``save_pretrained`` of model and tokenizer, plus a model card) and published as the model
   version ``models/<version_id>/`` (id = content hash of weights and tokenizer), which becomes
   ``production`` if nothing is in production yet. Its lineage names the corpus dataset.

Any other Hugging Face causal LM can be the base instead: :func:`register_external_base` copies
a local model folder (or, when the hub is reachable, a hub model) into a version.

Idempotent (DESIGN invariant 1): training is seeded and runs with deterministic kernels on a
fixed thread count, so a rerun produces byte-identical weights and the same version id; a rerun
with the same recipe (configuration, seed, corpus) finds the published version and does not
train at all unless asked to (``reuse=False``).

CLI: ``python -m training.bootstrap [--corpus DATASET_ID] [--steps N] [--seed S] [--store URI]
[--base PATH_OR_NAME]`` prints the version and its metrics as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freshlm.artifacts import (
    BASE_CORPUS_ROLE,
    ArtifactNotFound,
    PublishedDataset,
    base_corpus,
    read_published_dataset,
)
from freshlm.registry import (
    ABSENT,
    PRODUCTION,
    Lineage,
    PromotionConflict,
    RegistryError,
    list_versions,
    move_alias,
    publish_version,
    read_alias,
)
from freshlm.registry.versions import check_model_dir
from freshlm.revision import code_revision

if TYPE_CHECKING:
    import torch
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    from freshlm.store import Store

log = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"  # also the BOS token, as in GPT-2: documents are separated by it
PAD_TOKEN = "<|pad|>"
#: Bump when the recipe changes in a way neither the configuration nor the corpus hash (each
#: document's text and split) shows: the loop, how a document becomes text.
RECIPE_VERSION = 2
ACTOR = "training.bootstrap"


# --- configuration ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The tokenizer's target vocabulary and the GPT-2 shape.

    The default has ~4.2M parameters: small enough to pretrain on CPU cores, big enough to
    learn the sandbox archive (a small corpus may not fill the 4,096-token vocabulary).
    """

    vocab_size: int = 4096  # target; a small corpus may yield fewer merges
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_positions: int = 256
    dropout: float = 0.0  # the run is short and the text repetitive: dropout only slows it

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_embd", "n_head", "n_positions"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer")
        if self.vocab_size < 300:
            raise ValueError("ModelConfig.vocab_size must be at least 300 (256 bytes + merges)")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"ModelConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("ModelConfig.dropout must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """The pretraining loop. The held-out documents (for perplexity) are the corpus's own
    ``heldout`` split. ``threads`` is fixed because float results may depend on the thread
    count, and the version id on the floats. ``steps``: 300, since the model learns the
    archive's templated text late (fewer steps leave its perplexity far higher)."""

    steps: int = 300
    seq_len: int = 128
    batch: int = 16
    lr: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    threads: int = 2
    log_every: int = 25

    def __post_init__(self) -> None:
        for name in ("steps", "seq_len", "batch", "threads", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"PretrainConfig.{name} must be a positive integer")
        if not self.lr > 0 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError("PretrainConfig needs lr > 0, warmup_steps >= 0, weight_decay >= 0")


@dataclasses.dataclass(frozen=True)
class BootstrapConfig:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    pretrain: PretrainConfig = dataclasses.field(default_factory=PretrainConfig)

    def __post_init__(self) -> None:
        if self.pretrain.seq_len > self.model.n_positions:
            raise ValueError(
                f"pretrain.seq_len ({self.pretrain.seq_len}) exceeds the model's n_positions "
                f"({self.model.n_positions})"
            )

    @classmethod
    def tiny(cls, steps: int = 30) -> BootstrapConfig:
        """A seconds-long configuration for tests and smoke runs (~0.1M parameters)."""
        return cls(
            model=ModelConfig(vocab_size=512, n_layer=2, n_embd=64, n_head=2, n_positions=64),
            pretrain=PretrainConfig(
                steps=steps, seq_len=48, batch=8, lr=5e-3, warmup_steps=3, log_every=10
            ),
        )

    def with_steps(self, steps: int) -> BootstrapConfig:
        return dataclasses.replace(self, pretrain=dataclasses.replace(self.pretrain, steps=steps))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PretrainResult:
    steps: int
    losses: tuple[float, ...]
    tokens: int
    seconds: float

    @property
    def first_loss(self) -> float:
        return self.losses[0]

    @property
    def last_loss(self) -> float:
        """Mean of the last tenth of the steps: one step's loss is noisy."""
        tail = self.losses[-max(1, len(self.losses) // 10) :]
        return sum(tail) / len(tail)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


# --- the pieces -------------------------------------------------------------------------------


def train_tokenizer(
    texts: Sequence[str], vocab_size: int = 4096, *, model_max_length: int = 1024
) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2 style) trained on ``texts``; deterministic.

    Special tokens: ``<|endoftext|>`` (eos and bos, ids 0) and ``<|pad|>`` (pad, id 1). Any
    text round-trips through encode/decode, since unseen characters fall back to bytes.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if not texts:
        raise ValueError("train_tokenizer needs at least one text")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )


def build_model(
    tokenizer: PreTrainedTokenizerFast, config: ModelConfig | None = None, *, seed: int = 0
) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 for ``tokenizer`` (vocabulary = the tokenizer's size);
    the initial weights depend only on ``seed`` and ``config``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = config or ModelConfig()
    gpt2 = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(gpt2)
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded RNG, deterministic kernels and a fixed thread count, restored afterwards (the
    settings are process-wide and the caller, e.g. a test session, may rely on its own)."""
    import torch

    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic)


def token_stream(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> torch.Tensor:
    """All texts as one 1-D tensor of ids, each followed by ``<|endoftext|>``."""
    import torch

    ids: list[int] = []
    for encoded in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        ids.extend(encoded)
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth: the usual short-run schedule."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def pretrain(
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
    texts: Sequence[str],
    steps: int,
    seq_len: int,
    batch: int,
    lr: float,
    seed: int = 0,
    *,
    warmup_steps: int | None = None,
    weight_decay: float = 0.01,
    threads: int = 2,
    log_every: int = 25,
) -> PretrainResult:
    """Train ``model`` in place on random ``seq_len`` windows of ``texts`` (AdamW, warm-up +
    cosine, gradient clipping at 1.0); deterministic for a given seed and thread count.

    Logs step, loss, learning rate, tokens/s and ETA every ``log_every`` steps, and leaves the
    model in eval mode.
    """
    import torch

    stream = token_stream(tokenizer, texts)
    if len(stream) < seq_len + 1:
        raise ValueError(
            f"the training text has {len(stream)} tokens, fewer than one window of "
            f"seq_len={seq_len}; give more text or a shorter seq_len"
        )
    if seq_len > model.config.n_positions:
        raise ValueError(f"seq_len {seq_len} exceeds the model's {model.config.n_positions}")
    warmup = max(1, steps // 10) if warmup_steps is None else warmup_steps
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    losses: list[float] = []
    with deterministic(seed, threads):
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=lr,
            betas=(0.9, 0.95),
        )
        generator = torch.Generator().manual_seed(seed)
        offsets_max = len(stream) - seq_len
        model.train()
        started = time.perf_counter()
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, steps, lr, warmup)
            starts = torch.randint(0, offsets_max, (batch,), generator=generator)
            inputs = torch.stack([stream[s : s + seq_len] for s in starts.tolist()])
            loss = model(input_ids=inputs, labels=inputs).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
            done = step + 1
            if done % log_every == 0 or done == steps:
                elapsed = time.perf_counter() - started
                rate = done * batch * seq_len / elapsed
                log.info(
                    "pretrain step %d/%d loss %.4f lr %.2e %.0f tokens/s ETA %.0fs",
                    done,
                    steps,
                    losses[-1],
                    optimizer.param_groups[0]["lr"],
                    rate,
                    elapsed / done * (steps - done),
                )
        seconds = time.perf_counter() - started
    model.eval()
    return PretrainResult(
        steps=steps, losses=tuple(losses), tokens=steps * batch * seq_len, seconds=seconds
    )


def heldout_perplexity(
    model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
    texts: Sequence[str],
    *,
    seq_len: int,
    batch: int = 16,
    threads: int = 2,
) -> tuple[float, int]:
    """``(perplexity, tokens)`` of ``texts``: exp of the mean next-token loss over consecutive
    non-overlapping ``seq_len`` windows of their token stream."""
    import torch

    stream = token_stream(tokenizer, texts)
    windows = [stream[i : i + seq_len] for i in range(0, len(stream), seq_len)]
    windows = [w for w in windows if len(w) >= 2]
    if not windows:
        raise ValueError("no held-out text to measure perplexity on")
    total_loss = 0.0
    total_tokens = 0
    was_training = model.training
    model.eval()
    with deterministic(0, threads), torch.no_grad():
        for i in range(0, len(windows), batch):
            group = windows[i : i + batch]
            width = max(len(w) for w in group)
            inputs = torch.full((len(group), width), tokenizer.pad_token_id, dtype=torch.long)
            labels = torch.full((len(group), width), -100, dtype=torch.long)  # -100: ignored
            for row, window in enumerate(group):
                inputs[row, : len(window)] = window
                labels[row, : len(window)] = window
            logits = model(input_ids=inputs).logits[:, :-1].float()
            targets = labels[:, 1:]
            total_loss += float(
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="sum"
                )
            )
            total_tokens += int((targets != -100).sum())
    model.train(was_training)
    return math.exp(total_loss / total_tokens), total_tokens


# --- the corpus -------------------------------------------------------------------------------


class CorpusNotFound(RegistryError):
    """No base-corpus dataset is published where the bootstrap looks for one."""


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The pretraining text of a base model, read from its published dataset.

    ``documents``: ``(key, text, split)`` ordered by key (the document's ``meta.slug``, else its
    id); ``text`` is the title and the document's text, one per line.
    """

    dataset_id: str
    documents: tuple[tuple[str, str, str], ...]

    @property
    def train_texts(self) -> list[str]:
        return [text for _, text, split in self.documents if split == "train"]

    @property
    def heldout_texts(self) -> list[str]:
        return [text for _, text, split in self.documents if split == "heldout"]

    @property
    def sha256(self) -> str:
        """Content hash of the documents and their split: part of the bootstrap recipe."""
        digest = hashlib.sha256()
        for key, text, split in self.documents:
            digest.update(json.dumps([key, text, split], ensure_ascii=False).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def pretraining_text(doc: Mapping[str, Any]) -> str:
    """A corpus document as pretraining text: its title, then its text, one per line."""
    title = doc.get("title")
    text = doc["text"]
    return f"{title}\n{text}" if isinstance(title, str) and title else text


def resolve_corpus(store: Store, dataset_id: str | None = None) -> PublishedDataset:
    """The dataset ``dataset_id``, else the newest published base corpus; a
    :class:`CorpusNotFound` that says what to publish when there is none."""
    if dataset_id is not None:
        try:
            return read_published_dataset(store, dataset_id)
        except ArtifactNotFound as exc:
            raise CorpusNotFound(f"the base corpus: {exc}") from None
    found = base_corpus(store)
    if found is None:
        raise CorpusNotFound(
            f"no base-model corpus is published in {store.root_uri}: publish the text to "
            f"pretrain on as a dataset with role {BASE_CORPUS_ROLE!r} first (the embedded demo's "
            "archive: `python -m sandbox.base_model`, which publishes it and bootstraps), or "
            "name one with --corpus, or register an existing model with --base"
        )
    return found


def read_corpus(store: Store, dataset_id: str | None = None) -> Corpus:
    """The pretraining corpus from its published dataset (see :func:`resolve_corpus`)."""
    dataset = resolve_corpus(store, dataset_id)
    documents = []
    for file_split in ("train", "heldout"):
        for doc in dataset.documents(store, file_split):
            key = (doc.get("meta") or {}).get("slug") or doc["id"]
            split = doc.get("split") or file_split
            documents.append((str(key), pretraining_text(doc), split))
    documents.sort(key=lambda d: d[0])
    corpus = Corpus(dataset.dataset_id, tuple(documents))
    if not corpus.train_texts or not corpus.heldout_texts:
        raise CorpusNotFound(
            f"the base corpus {store.uri_for(dataset.prefix)} has {len(corpus.train_texts)} "
            f"train and {len(corpus.heldout_texts)} held-out documents; pretraining needs both"
        )
    return corpus


def recipe_sha256(config: BootstrapConfig, seed: int, corpus_sha256: str) -> str:
    """What determines the bootstrapped weights; equal recipes give equal versions."""
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "config": config.to_dict(),
        "seed": seed,
        "corpus_sha256": corpus_sha256,
    }
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# --- bootstrap and registration ---------------------------------------------------------------


def ensure_production(store: Store, version_id: str, metrics: Mapping[str, Any], reason: str):
    """Make ``version_id`` production if nothing is in production yet; never replace a
    production model (a rerun of the bootstrap must not undo the nightly promotions)."""
    current = read_alias(store, PRODUCTION)
    if current is None:
        try:
            move = move_alias(
                store,
                PRODUCTION,
                version_id,
                actor=ACTOR,
                reason=reason,
                metrics=metrics,
                expected_from=ABSENT,
            )
            return move.version_id, True
        except PromotionConflict as exc:  # a concurrent bootstrap set it first: fine
            log.info("production was set concurrently to %s", exc.actual)
            current = read_alias(store, PRODUCTION)
    assert current is not None
    if current.version_id != version_id:
        log.info("production stays at %s (set by %s)", current.version_id, current.actor)
    return current.version_id, False


def make_production(
    store: Store, version_id: str, reason: str, replace: bool, actor: str
) -> tuple[str, bool]:
    """``(production, promoted)`` after making a new base production: always with
    ``replace``, else only when nothing is production yet (:func:`ensure_production`)."""
    if not replace:
        return ensure_production(store, version_id, {}, reason)
    before = read_alias(store, PRODUCTION)
    move = move_alias(store, PRODUCTION, version_id, actor=actor, reason=reason)
    return move.version_id, before is None or before.version_id != move.version_id


def bootstrap_base_model(
    store: Store,
    *,
    corpus: str | None = None,
    config: BootstrapConfig | None = None,
    seed: int = 0,
    reuse: bool = True,
) -> dict[str, Any]:
    """Train the embedded base model on a published base corpus and register it.

    ``corpus`` is the dataset id to pretrain on; None takes the newest published dataset with
    ``role: base-corpus`` (:class:`CorpusNotFound` when there is none). Publishes
    ``models/<version_id>/`` (Hugging Face layout + model card, lineage and metrics in the
    manifest) and points ``production`` at it if production is unset. With ``reuse`` (the
    default) a version already published from the same recipe is returned without training.
    Returns a JSON-able summary: ``base_corpus_dataset``, ``version_id``, ``uri``, ``created``,
    ``reused``, ``production``, ``promoted``, ``metrics``, ``model`` and, when it trained,
    ``timings``.
    """
    config = config or BootstrapConfig()
    started = time.perf_counter()
    text = read_corpus(store, corpus)
    recipe = recipe_sha256(config, seed, text.sha256)
    if reuse:
        for version in list_versions(store):
            if version.lineage.extra.get("recipe_sha256") == recipe:
                log.info(
                    "version %s was bootstrapped with this recipe; reusing it", version.version_id
                )
                return _summary(store, version, text.dataset_id, created=False, reused=True)

    trained = _train_base(text, config, seed)
    lineage = Lineage(
        kind="bootstrap",
        source=ACTOR,
        dataset_ids=(text.dataset_id,),
        training_config={**config.to_dict(), "seed": seed},
        code_revision=code_revision(),
        extra={
            "recipe_sha256": recipe,
            "corpus": {
                "dataset_id": text.dataset_id,
                "sha256": text.sha256,
                "documents": len(text.documents),
                "train_documents": len(text.train_texts),
                "heldout_documents": len(text.heldout_texts),
            },
        },
    )
    with tempfile.TemporaryDirectory(prefix="freshlm-bootstrap-") as tmp:
        trained.model.save_pretrained(tmp)
        trained.tokenizer.save_pretrained(tmp)
        version, created = publish_version(
            store,
            tmp,
            lineage=lineage,
            metrics=trained.metrics,
            model=trained.model_info,
            created_by={"component": ACTOR},
        )
    summary = _summary(store, version, text.dataset_id, created=created, reused=False)
    summary["timings"] = {
        **trained.timings,
        "total_seconds": round(time.perf_counter() - started, 2),
    }
    return summary


@dataclasses.dataclass(frozen=True)
class _Trained:
    model: GPT2LMHeadModel
    tokenizer: PreTrainedTokenizerFast
    metrics: dict[str, Any]
    model_info: dict[str, Any]
    timings: dict[str, Any]


def _train_base(corpus: Corpus, config: BootstrapConfig, seed: int) -> _Trained:
    """Tokenizer, model and pretraining on the corpus's train split; perplexity on its
    held-out split before and after."""
    pre = config.pretrain
    train_texts, heldout_texts = corpus.train_texts, corpus.heldout_texts
    log.info(
        "bootstrap: %d train and %d held-out documents (%d bytes) from dataset %s",
        len(train_texts),
        len(heldout_texts),
        sum(len(t.encode()) for t in train_texts + heldout_texts),
        corpus.dataset_id,
    )
    t0 = time.perf_counter()
    tokenizer = train_tokenizer(
        train_texts, config.model.vocab_size, model_max_length=config.model.n_positions
    )
    tokenizer_seconds = time.perf_counter() - t0
    model = build_model(tokenizer, config.model, seed=seed)
    parameters = count_parameters(model)
    log.info("bootstrap: vocabulary %d, %d parameters", len(tokenizer), parameters)
    ppl_before, heldout_tokens = heldout_perplexity(
        model, tokenizer, heldout_texts, seq_len=pre.seq_len, threads=pre.threads
    )
    result = pretrain(
        model,
        tokenizer,
        train_texts,
        steps=pre.steps,
        seq_len=pre.seq_len,
        batch=pre.batch,
        lr=pre.lr,
        seed=seed,
        warmup_steps=pre.warmup_steps,
        weight_decay=pre.weight_decay,
        threads=pre.threads,
        log_every=pre.log_every,
    )
    ppl_after, _ = heldout_perplexity(
        model, tokenizer, heldout_texts, seq_len=pre.seq_len, threads=pre.threads
    )
    log.info("bootstrap: held-out perplexity %.1f -> %.1f", ppl_before, ppl_after)
    # Only deterministic figures go into the version (its card is part of the artifact and
    # must come out identical on a rerun); timings are returned and logged.
    metrics = {
        "heldout_perplexity_before": round(ppl_before, 4),
        "heldout_perplexity_after": round(ppl_after, 4),
        "train_loss_first": round(result.first_loss, 4),
        "train_loss_last": round(result.last_loss, 4),
        "train_tokens_seen": result.tokens,
        "heldout_tokens": heldout_tokens,
    }
    model_info = {
        "architecture": type(model).__name__,
        "model_type": model.config.model_type,
        "parameters": parameters,
        "vocab_size": len(tokenizer),
        "n_layer": config.model.n_layer,
        "n_embd": config.model.n_embd,
        "n_head": config.model.n_head,
        "n_positions": config.model.n_positions,
        "tokenizer": "byte-level BPE (tokenizers)",
    }
    timings = {
        "tokenizer_seconds": round(tokenizer_seconds, 2),
        "pretrain_seconds": round(result.seconds, 2),
        "pretrain_tokens_per_second": round(result.tokens_per_second),
    }
    return _Trained(model, tokenizer, metrics, model_info, timings)


def _summary(
    store: Store, version: Any, corpus_id: str, *, created: bool, reused: bool
) -> dict[str, Any]:
    """The bootstrap's JSON summary of ``version``, after making it production if nothing is."""
    production, promoted = ensure_production(
        store, version.version_id, version.metrics, "bootstrap: first base model"
    )
    return {
        "base_corpus_dataset": corpus_id,
        "version_id": version.version_id,
        "uri": store.uri_for(version.prefix),
        "created": created,
        "reused": reused,
        "production": production,
        "promoted": promoted,
        "metrics": dict(version.metrics),
        "model": dict(version.model),
    }


def _fetch_from_hub(name: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                repo_id=name,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"],
            )
        )
    except Exception as exc:  # the hub client raises many types; all mean "not available"
        raise RegistryError(
            f"{name!r} is not a local folder, and the Hugging Face hub could not provide it "
            f"({type(exc).__name__}: {exc}). Offline, pass the path of a local model folder"
        ) from None


def _safetensors_parameters(model_dir: Path, names: Sequence[str]) -> int | None:
    """Parameter count from the safetensors headers, without loading the weights."""
    from safetensors import safe_open

    total = 0
    files = [n for n in names if n.endswith(".safetensors")]
    if not files:
        return None
    for name in files:
        with safe_open(model_dir / name, framework="pt") as weights:
            for key in weights.keys():  # noqa: SIM118 -- safe_open is not a Mapping
                total += math.prod(weights.get_slice(key).get_shape())
    return total


def register_external_base(
    store: Store,
    name_or_path: str | os.PathLike[str],
    *,
    promote: bool = False,
    actor: str = ACTOR,
    reason: str | None = None,
) -> dict[str, Any]:
    """Register any Hugging Face causal LM as a base model version.

    ``name_or_path`` is a local model folder (``save_pretrained`` layout with a tokenizer) or,
    when the hub is reachable, a hub name such as ``"gpt2"``. The files are copied into
    ``models/<version_id>/`` with a model card. The version becomes production if production
    is unset, or with ``promote=True`` replaces it (``previous`` then holds the old one).
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    source = str(name_or_path)
    local = Path(source).expanduser()
    model_dir = local.resolve() if local.exists() else _fetch_from_hub(source)
    if local.exists():
        source = str(model_dir)
    names = check_model_dir(model_dir)
    try:
        hf_config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise RegistryError(
            f"{model_dir}: config.json cannot be read by transformers: {exc}"
        ) from None
    if hf_config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise RegistryError(
            f"{model_dir}: model type {hf_config.model_type!r} is not a causal language model "
            "(AutoModelForCausalLM cannot load it); FreshLM fine-tunes causal LMs such as "
            "GPT-2 or Llama"
        )
    model_info = {
        "architecture": ",".join(hf_config.architectures or [])
        or MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[hf_config.model_type],
        "model_type": hf_config.model_type,
        "parameters": _safetensors_parameters(model_dir, names),
        "vocab_size": getattr(hf_config, "vocab_size", None),
    }
    lineage = Lineage(kind="external", base_model=source, source=source)
    version, created = publish_version(
        store,
        model_dir,
        lineage=lineage,
        model={k: v for k, v in model_info.items() if v is not None},
        created_by={"component": ACTOR, "actor": actor},
    )
    why = reason or f"configured external base model {source}"
    production, promoted = make_production(store, version.version_id, why, promote, actor)
    return {
        "version_id": version.version_id,
        "uri": store.uri_for(version.prefix),
        "created": created,
        "reused": False,
        "production": production,
        "promoted": promoted,
        "metrics": dict(version.metrics),
        "model": dict(version.model),
    }


# --- CLI --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.bootstrap",
        description="Bootstrap FreshLM's base model offline (or register an external one) and "
        "make it production if nothing is. Prints the version and its metrics as JSON.",
    )
    parser.add_argument(
        "--corpus",
        help="the published dataset to pretrain on (default: the newest base-corpus dataset)",
    )
    parser.add_argument("--steps", type=int, help="pretraining steps (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", help="store URI (default: the configured FRESHLM store)")
    parser.add_argument(
        "--base", help="register this Hugging Face causal LM (folder or hub name) instead"
    )
    parser.add_argument(
        "--promote", action="store_true", help="with --base: replace the production model"
    )
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke-test model")
    parser.add_argument(
        "--retrain", action="store_true", help="train even if this recipe is already published"
    )
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be a positive integer")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from freshlm.store import StoreError, open_store

    try:
        store = open_store(args.store)
        if args.base:
            summary = register_external_base(store, args.base, promote=args.promote)
        else:
            config = BootstrapConfig.tiny() if args.tiny else BootstrapConfig()
            if args.steps is not None:
                config = config.with_steps(args.steps)
            summary = bootstrap_base_model(
                store, corpus=args.corpus, config=config, seed=args.seed, reuse=not args.retrain
            )
    except (RegistryError, StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
