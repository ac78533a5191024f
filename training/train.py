"""The training entrypoint: one DeepSpeed rank of a FreshLM fine-tune.

Run by the ``deepspeed`` launcher, locally (CPU ranks over gloo, :mod:`training.launch_local`)
or in GPU pods (:mod:`training.k8s_specs`)::

    deepspeed --num_gpus N training/train.py --config config.json
    deepspeed --num_gpus N --module training.train --config config.json

``config.json`` is a :class:`training.config.TrainConfig`. Every rank runs :func:`train`:

1. **Inputs.** The base model (a published ``models/<id>`` downloaded into the work folder, or a
   local folder) and the packed training set ``trainsets/<id>`` (built here from the config's
   datasets unless the launching task already built it and passed ``trainset_id``). On each
   node the local rank 0 downloads and the other ranks wait for it. Everything read from the
   store is checked against its manifest's sha256, and a file that differs fails the rank
   with an error naming it.
2. **Identity.** ``run_key`` hashes the training set id, the config's recipe fingerprint and the
   base model's identity; the model ``version_id`` hashes the run key. Both are deterministic,
   so a rerun of the same inputs finds the same checkpoints and the same version. If
   ``models/<version_id>`` is already published, the run stops here: an identical rerun trains
   nothing and publishes no duplicate (DESIGN invariant 1).
3. **Resume.** If ``runs/<run_key>/checkpoints/step-N`` artifacts are published, the highest N is
   downloaded, checked against its manifest's sha256 (a damaged one fails the rank with
   :class:`CheckpointDamaged` naming the file, before DeepSpeed loads anything), and passed
   to ``Trainer.train(resume_from_checkpoint=...)``: weights, optimizer and scheduler state,
   RNG states and the Trainer's state (step, loss history) come back, and the data loader
   skips the batches already seen.
4. **Training.** The Hugging Face Trainer with the DeepSpeed config named by the config
   (``"auto"`` values filled by the Trainer), bf16 where the accelerator has it, optional
   gradient checkpointing, full fine-tuning or LoRA (peft). Every ``checkpoint_every`` steps the
   Trainer saves a checkpoint locally and rank 0 publishes it atomically to
   ``runs/<run_key>/checkpoints/step-N/`` (older ones beyond ``keep_checkpoints`` are deleted,
   and all of them once the version is published: they serve only to resume the run).
   Rank 0 logs progress: step, loss, tokens/s, ETA. A training set with a loss mask takes no
   loss on context-only tokens (the augmentation's questions); one with rival groups adds
   their ranking loss (:mod:`training.rivals`), reported as ``rank_loss_first``/``_final``.
5. **Publish.** Rank 0 publishes ``models/<version_id>/`` atomically: Hugging Face layout
   (config, safetensors, tokenizer; a LoRA adapter merged into the weights, or kept as an
   adapter, by config), ``metrics.json`` (loss curve, tokens/s, wall time), the DeepSpeed config
   as the Trainer filled it (``ds_config.json``), ``train_config.json``, and in the manifest the
   lineage (dataset ids and crawl windows, training set id, base model version, config, code
   revision) and the metrics.

A rank that fails writes its error (type, message, traceback) to ``$FRESHLM_TRAIN_ERROR_DIR``
(when set) and prints a ``FRESHLM_TRAIN_ERROR`` line, so the launching task can fail with the
rank's real error instead of an exit code. The last line rank 0 prints on success is
``FRESHLM_TRAIN_RESULT {json}``.

Importing this module is cheap: torch, transformers and deepspeed are imported inside the
functions that need them.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a script (training/train.py): import from the repo root
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == _here:
        sys.path[0] = os.path.dirname(_here)

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from freshlm.artifacts import MODELS, RUNS, delete_run
from freshlm.footprint import Meter
from freshlm.registry.model_card import render_model_card
from freshlm.registry.versions import Lineage
from freshlm.revision import code_revision
from freshlm.store import Manifest, Store, StoreError, matches_entry, open_store
from training.config import ConfigError, TrainConfig, config_positions
from training.precision import cpu_autocast_trainer_class, resolve_precision
from training.rehearsal import RehearsalSet, ensure_rehearsal_set
from training.rivals import RIVALS_PER_TURN
from training.tied_weights import drop_duplicate_head
from training.trainset import (
    ContextAnswerSource,
    TrainingSet,
    TrainingSetError,
    WrittenQuestionSource,
    build_training_set,
    read_training_set,
)

log = logging.getLogger("freshlm.training")

MODEL_KIND = "model"
CHECKPOINT_KIND = "checkpoint"
METRICS_FILE = "metrics.json"
DS_CONFIG_FILE = "ds_config.json"
MODEL_CARD_FILE = "README.md"  # the Hugging Face model card, with lineage and metrics
TRAIN_CONFIG_FILE = "train_config.json"
PROGRESS_FILE = "freshlm_progress.json"
ERROR_DIR_ENV = "FRESHLM_TRAIN_ERROR_DIR"
RESULT_MARKER = "FRESHLM_TRAIN_RESULT"
ERROR_MARKER = "FRESHLM_TRAIN_ERROR"
_COMPLETE_MARKER = ".freshlm-complete"
# Files a checkpoint or the Trainer writes that are not part of a served model version.
_NOT_PUBLISHED = {"training_args.bin", _COMPLETE_MARKER}


# --- identity and inputs ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BaseModel:
    """The resolved base model: a local folder plus what identifies it for lineage."""

    path: Path
    identity: str  # "version:<id>" or "sha256:<content hash of the folder>"
    version: str | None  # the registry version trained from, if any
    root: str  # lineage's base_model: the root of the chain (bootstrap version, hub name, path)


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    run_key: str
    version_id: str

    @property
    def model_prefix(self) -> str:
        return f"{MODELS}/{self.version_id}"

    @property
    def checkpoints_prefix(self) -> str:
        return f"{RUNS}/{self.run_key}/checkpoints"


def work_dir_for(config: TrainConfig) -> Path:
    """The local scratch folder (base model, downloaded checkpoints, Trainer output)."""
    if config.work_dir:
        return Path(config.work_dir).resolve()
    from freshlm.settings import get_settings

    return get_settings().home / "work" / "training"


def download_artifact(store: Store, prefix: str, dest: Path) -> Path:
    """Copy the published artifact at ``prefix`` into ``dest`` (idempotent), every file checked
    against the manifest's size and sha256.

    A rank loads what it downloads (a checkpoint's pickles, a base model's weights), so bytes
    that are not the ones published (replaced, truncated or damaged in the store) raise
    :class:`~freshlm.store.StoreError` naming the file, and nothing of the copy is left. A
    marker holding the manifest's content hash is written last: an interrupted download is
    redone, and a complete one is reused only while its files still match the manifest.
    """
    manifest = store.read_manifest(prefix)
    if manifest is None:
        raise FileNotFoundError(f"{store.uri_for(prefix)} is not published")
    marker = dest / _COMPLETE_MARKER
    if marker.is_file() and marker.read_text().strip() == manifest.content_sha256:
        if _local_copy_intact(dest, manifest):
            return dest
        log.warning(
            "local copy %s of %s changed since its download; fetching it again", dest, prefix
        )
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        for entry in manifest.files:
            target = dest / entry.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with store.open_artifact_file(manifest, entry.name) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    marker.write_text(manifest.content_sha256 + "\n")
    return dest


def _local_copy_intact(dest: Path, manifest: Manifest) -> bool:
    """Whether every file of the local copy still holds the bytes the manifest published."""
    for entry in manifest.files:
        path = dest / entry.name
        if not path.is_file():
            return False
        with open(path, "rb") as stream:
            if not matches_entry(stream, entry):
                return False
    return True


def _folder_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel in ("README.md", _COMPLETE_MARKER):
            continue  # a model card describes the weights; it does not change them
        h = hashlib.sha256()
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest.update(f"{rel}\x00{h.hexdigest()}\n".encode())
    return digest.hexdigest()


def resolve_base(store: Store, config: TrainConfig, work_dir: Path) -> BaseModel:
    """The base model folder, downloading a published version into ``work_dir/base/<id>``."""
    if config.base_version is not None:
        prefix = f"{MODELS}/{config.base_version}"
        manifest = store.read_manifest(prefix)
        if manifest is None or manifest.kind != MODEL_KIND:
            raise ConfigError(
                f"TrainConfig.base_version = {config.base_version!r}: "
                f"{store.uri_for(prefix)} is not a published model version"
            )
        path = download_artifact(store, prefix, work_dir / "base" / config.base_version)
        lineage = manifest.fields.get("lineage") or {}
        root = lineage.get("base_model") or config.base_version
        return BaseModel(path, f"version:{config.base_version}", config.base_version, str(root))
    path = Path(config.base_model_path or "").resolve()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"TrainConfig.base_model_path = {config.base_model_path!r}: no config.json there "
            "(expected a Hugging Face model folder with its tokenizer)"
        )
    return BaseModel(path, f"sha256:{_folder_sha256(path)}", None, str(path))


def max_positions(model_dir: Path) -> int | None:
    """How many positions the model's config says it can attend over (None if it does not say)."""
    try:
        doc = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return config_positions(doc) if isinstance(doc, dict) else None


def check_seq_len(config: TrainConfig, base: BaseModel) -> None:
    """A sequence longer than the model's positions fails deep inside a rank with an
    IndexError; say so here instead, before anything is built."""
    limit = max_positions(base.path)
    if limit is not None and config.seq_len > limit:
        raise ConfigError(
            f"TrainConfig.seq_len = {config.seq_len}: the base model ({base.identity}) has only "
            f"{limit} positions; use seq_len <= {limit}"
        )


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def root_writer(
    store: Store, config: TrainConfig, base: BaseModel
) -> tuple[str, Callable[[], tuple[Any, Any]]]:
    """The lineage's root base, which writes the rehearsal turns (:mod:`training.rehearsal`)
    and the written questions (:mod:`training.written_questions`): its key (a version id, or
    a folder base's hash) and a loader that downloads and loads it on first use, once for
    both. The root, not the night's production model, writes them, so every night's are the
    same model's and drift does not accumulate. Its own tokenizer: generation may set a pad
    token, and the training set's tokenizer (whose fingerprint names the set) must stay as
    loaded."""
    from freshlm.registry import root_version

    root = (
        base.identity.removeprefix("sha256:")[:32]  # a folder base is its own root
        if base.version is None
        else root_version(store, base.version)
    )
    loaded: list[tuple[Any, Any]] = []

    def load() -> tuple[Any, Any]:
        if not loaded:
            folder = base.path
            if base.version is not None and root != base.version:
                folder = work_dir_for(config) / "base" / root
                download_artifact(store, f"{MODELS}/{root}", folder)
            loaded.append((_load_for_generation(folder), load_tokenizer(folder)))
        return loaded[0]

    return root, load


def resolve_rehearsal(
    store: Store,
    config: TrainConfig,
    base: BaseModel,
    tokenizer: Any,
    writer: tuple[str, Callable[[], tuple[Any, Any]]] | None = None,
) -> RehearsalSet | None:
    """The rehearsal turns of the lineage's root base (:mod:`training.rehearsal`, ``writer``
    by default :func:`root_writer`): published once per root, written the first time. None
    when the config asks for none."""
    if not config.rehearsal:
        return None
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"TrainConfig.rehearsal = {config.rehearsal}: the base model ({base.identity}) has "
            "no chat template, so it cannot write question-answer turns to rehearse; set "
            "rehearsal to 0 (FRESHLM_TRAIN_REHEARSAL=0)"
        )
    root, load = writer or root_writer(store, config, base)
    return ensure_rehearsal_set(
        store,
        root,
        load,
        config.rehearsal,
        seed=config.seed,
        created_by={"task": "training.train"},
    )


def _load_for_generation(path: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    # The launching process writes the turns before the ranks start: on a GPU machine the GPU
    # is free then, and generation there takes seconds instead of minutes on the CPU.
    return model.to("cuda") if torch.cuda.is_available() else model


def trainset_mismatches(
    fields: Mapping[str, Any], config: TrainConfig
) -> list[tuple[str, Any, Any]]:
    """``(field, the training set's value, the config's)`` for each way a published training
    set's manifest ``fields`` differs from what ``config`` would build."""
    pairs = [
        ("datasets", fields["new_datasets"], list(config.datasets)),
        ("seq_len", fields["seq_len"], config.seq_len),
        ("seed", fields["seed"], config.seed),
        ("replay_ratio", fields["replay_ratio"], config.replay_ratio),
        ("epochs", fields.get("epochs"), config.epochs),
        ("rehearsal", bool(fields.get("rehearsal")), bool(config.rehearsal)),
        ("context_answers", "context_answers" in fields, config.context_answers),
        ("question_variants", fields.get("question_variants", 0), config.question_variants),
        ("appositions", bool(fields.get("appositions")), config.appositions),
        ("written_questions", "written_questions" in fields, config.written_questions),
    ]
    if config.augment:  # rivals are written only beside span answers
        pairs.append(("rivals", fields.get("rivals", RIVALS_PER_TURN), config.rivals))
    return [(name, built, asked) for name, built, asked in pairs if built != asked]


def resolve_trainset(
    store: Store, config: TrainConfig, base: BaseModel, tokenizer: Any = None
) -> TrainingSet:
    """The config's training set: ``trainset_id`` if given (checked against the config), else
    built (or found, it is content-addressed) from ``datasets`` with the base's tokenizer."""
    if config.trainset_id is not None:
        trainset = read_training_set(store, config.trainset_id)
        differ = trainset_mismatches(trainset.fields, config)
        if differ:
            raise ConfigError(
                f"TrainConfig.trainset_id = {config.trainset_id!r} does not match this config: "
                + "; ".join(
                    f"{name} is {built!r} in the set, {asked!r} here"
                    for name, built, asked in differ
                )
            )
        return trainset
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(base.path)
    writer = (
        root_writer(store, config, base) if config.rehearsal or config.written_questions else None
    )
    return build_training_set(
        store,
        config.datasets,
        replay_ratio=config.replay_ratio,
        epochs=config.epochs,
        seed=config.seed,
        seq_len=config.seq_len,
        tokenizer=tokenizer,
        created_by={"task": "training.train"},
        augment=config.augment,
        rehearsal=resolve_rehearsal(store, config, base, tokenizer, writer),
        context_answers=resolve_context_answers(store, config, base, tokenizer),
        question_variants=config.question_variants,
        rivals=config.rivals,
        appositions=config.appositions,
        written_questions=resolve_written_questions(store, config, base, writer),
    )


def resolve_context_answers(
    store: Store, config: TrainConfig, base: BaseModel, tokenizer: Any
) -> ContextAnswerSource | None:
    """Where the training set finds the base's answers in context to each new dataset's span
    questions (:mod:`training.context_answers`): published ones, else the base loaded here
    once (on the GPU when there is one) writes them. None when the config asks for none."""
    if not config.context_answers:
        return None
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"TrainConfig.context_answers = True: the base model ({base.identity}) has no chat "
            "template to be asked in; set context_answers to false "
            "(FRESHLM_TRAIN_CONTEXT_ANSWERS=false)"
        )
    from training.context_answers import ensure_context_answers

    key = base.version or base.identity.removeprefix("sha256:")[:32]
    loaded: list[tuple[Any, Any]] = []

    def load() -> tuple[Any, Any]:
        # Its own tokenizer: generation sets a pad token and padding side.
        if not loaded:
            loaded.append((_load_for_generation(base.path), load_tokenizer(base.path)))
        return loaded[0]

    def answers(dataset_id: str, docs: list[dict[str, Any]]) -> Any:
        return ensure_context_answers(
            store, key, dataset_id, docs, load, created_by={"task": "training.train"}
        )

    return answers


def resolve_written_questions(
    store: Store,
    config: TrainConfig,
    base: BaseModel,
    writer: tuple[str, Callable[[], tuple[Any, Any]]] | None = None,
) -> WrittenQuestionSource | None:
    """Where the training set finds the questions the lineage's root base (``writer``, by
    default :func:`root_writer`) writes for each new dataset's figures and dates
    (:mod:`training.written_questions`): published ones, else written now. None when the
    config asks for none."""
    if not config.written_questions:
        return None
    from training.written_questions import ensure_written_questions

    root, load = writer or root_writer(store, config, base)

    def questions(dataset_id: str, docs: list[dict[str, Any]]) -> Any:
        return ensure_written_questions(
            store, root, dataset_id, docs, load, created_by={"task": "training.train"}
        )

    return questions


def run_identity(config: TrainConfig, trainset_id: str, base: BaseModel) -> RunIdentity:
    """Deterministic run key and model version id for these inputs."""
    doc = {"trainset": trainset_id, "recipe": config.fingerprint(), "base": base.identity}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    run_key = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    version_id = hashlib.sha256(f"freshlm-model\x00{run_key}".encode()).hexdigest()[:32]
    return RunIdentity(run_key=run_key, version_id=version_id)


def published_checkpoints(store: Store, ident: RunIdentity) -> list[tuple[int, str]]:
    """``(step, prefix)`` of the run's published checkpoints, oldest first."""
    out = []
    for prefix in store.list_published(ident.checkpoints_prefix + "/"):
        name = prefix.rsplit("/", 1)[-1]
        if name.startswith("step-") and name[5:].isdigit():
            out.append((int(name[5:]), prefix))
    return sorted(out)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What a launching task resolves before starting ranks (see :func:`prepare`)."""

    config: TrainConfig  # with trainset_id filled in
    base: BaseModel
    trainset: TrainingSet
    identity: RunIdentity
    published: bool  # the model version already exists: nothing to train


def prepare(config: TrainConfig) -> Prepared:
    """Resolve base model, training set and identity in the launching process.

    The task calls this before starting any rank: it downloads the base, builds the training
    set once (not once per rank) and learns whether the version is already published.
    """
    store = open_store(config.store_uri)
    base = resolve_base(store, config, work_dir_for(config))
    check_seq_len(config, base)
    trainset = resolve_trainset(store, config, base)
    ident = run_identity(config, trainset.trainset_id, base)
    published = store.read_manifest(ident.model_prefix) is not None
    return Prepared(
        config.replace(trainset_id=trainset.trainset_id), base, trainset, ident, published
    )


# --- distributed helpers ---------------------------------------------------------------------


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _dist_ready() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return False
    return dist.is_available() and dist.is_initialized()


def _destroy_process_group() -> None:
    """Destroy the ranks' process group while the interpreter is whole. Left to the
    interpreter's exit, Gloo's worker threads can still hold Python objects, and a rank whose
    work is done and published aborts ("terminate called without an active exception",
    SIGABRT; pytorch/pytorch#190489): the launcher then fails a run that succeeded."""
    if _dist_ready():
        import torch.distributed as dist

        dist.destroy_process_group()


def _barrier() -> None:
    if _dist_ready():
        import torch.distributed as dist

        dist.barrier()


@contextlib.contextmanager
def _local_main_first(local_main: bool) -> Iterator[None]:
    """The node's local rank 0 runs the block first (e.g. a download); the others after it."""
    if not local_main:
        _barrier()
    yield
    if local_main:
        _barrier()


def _broadcast(value: Any) -> Any:
    if not _dist_ready():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# --- the Trainer's pieces ----------------------------------------------------------------------


def rank_precision(config: TrainConfig) -> str:
    """This rank's number format for ``config.bf16`` (:mod:`training.precision`)."""
    import torch

    gpu = torch.cuda.is_available()
    return resolve_precision(config.bf16, gpu, gpu and torch.cuda.is_bf16_supported())


def apply_lora(model: Any, config: TrainConfig) -> Any:
    """Wrap ``model`` with LoRA adapters (peft); only the adapters train."""
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules) if config.lora_target_modules else None,
    )
    return get_peft_model(model, lora)


def transformer_blocks(model: Any) -> Any:
    """The model's stack of transformer blocks: its largest ``ModuleList`` (``model.layers``
    of Llama-style models, ``transformer.h`` of GPT-2)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no stack of transformer blocks")
    return max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))


def freeze_below_top_layers(model: Any, keep: int) -> int:
    """Train only the top ``keep`` transformer blocks and the final norm; freeze the rest
    (embeddings, a tied output head, the blocks below), so the backward pass stops at the
    lowest block that trains. Returns the number of trainable parameters."""
    blocks = transformer_blocks(model)
    if keep > len(blocks):
        raise ValueError(f"train_layers={keep}, but the model has {len(blocks)} blocks")
    for param in model.parameters():
        param.requires_grad_(False)
    trained = list(blocks[len(blocks) - keep :])
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    norm = getattr(decoder, "norm", None) or getattr(decoder, "ln_f", None)
    if norm is None and hasattr(model, "transformer"):
        norm = getattr(model.transformer, "ln_f", None)
    if norm is not None:
        trained.append(norm)
    for module in trained:
        for param in module.parameters():
            param.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@contextlib.contextmanager
def _zero3_init_disabled() -> Iterator[None]:
    """Load whole weights on this process, as if no ZeRO-3 run were configured.

    After a ZeRO-3 run the Trainer's DeepSpeed config is still registered with transformers, so
    ``from_pretrained`` would partition the weights it loads (to empty tensors on one rank).
    """
    try:
        from transformers.integrations import deepspeed as hf_deepspeed
    except ImportError:  # pragma: no cover
        yield
        return
    saved = getattr(hf_deepspeed, "_hf_deepspeed_config_weak_ref", None)
    hf_deepspeed._hf_deepspeed_config_weak_ref = None
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


def merge_lora(base_path: Path, adapter_path: Path, out: Path) -> Path:
    """Merge the adapter saved in ``adapter_path`` into the base weights; save to ``out``."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    with _zero3_init_disabled():
        base = AutoModelForCausalLM.from_pretrained(str(base_path))
        merged = PeftModel.from_pretrained(base, str(adapter_path)).merge_and_unload()
        if out.exists():
            shutil.rmtree(out)
        merged.save_pretrained(str(out))
    for name in os.listdir(adapter_path):  # the tokenizer files travel with the weights
        if name.startswith(("tokenizer", "special_tokens", "vocab", "merges", "chat_template")):
            shutil.copy2(adapter_path / name, out / name)
    return out


def _packed_dataset(array: Any, loss_mask: Any = None) -> Any:
    import torch

    class PackedSequences(torch.utils.data.Dataset):
        """Fixed-length token sequences; labels are the inputs (the model shifts them), -100
        (no loss) where the training set's loss mask marks a token as context only."""

        def __init__(self, ids: Any, mask: Any) -> None:
            self.ids, self.mask = ids, mask

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict[str, Any]:
            x = torch.as_tensor(self.ids[i], dtype=torch.long)
            labels = x.clone()
            if self.mask is not None:
                labels[torch.as_tensor(self.mask[i]) == 0] = -100
            return {"input_ids": x, "labels": labels}

    return PackedSequences(array, loss_mask)


def _progress_callback(
    *,
    store: Store,
    ident: RunIdentity,
    config: TrainConfig,
    tokens_per_step: int,
    is_main: bool,
    prior: Mapping[str, Any],
    trainset_id: str,
) -> Any:
    from transformers import TrainerCallback

    class FreshLMProgress(TrainerCallback):
        """Rank 0 logs progress; every save is published to the store as a checkpoint."""

        def __init__(self) -> None:
            self.started = time.monotonic()
            self.start_step = 0
            self.prior_wall = float(prior.get("wall_time_s", 0.0))
            self.attempts = int(prior.get("attempts", 0)) + 1

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()
            self.start_step = state.global_step
            if is_main:
                log.info(
                    "training: %d steps to go (step %d of %d), %d tokens per step",
                    state.max_steps - state.global_step,
                    state.global_step,
                    state.max_steps,
                    tokens_per_step,
                )

        def elapsed(self) -> float:
            return time.monotonic() - self.started

        def tokens_per_second(self, state, elapsed: float | None = None) -> float:
            done = state.global_step - self.start_step
            seconds = self.elapsed() if elapsed is None else elapsed
            return done * tokens_per_step / max(seconds, 1e-9)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not is_main or not logs or "loss" not in logs:
                return
            done = state.global_step - self.start_step
            elapsed = self.elapsed()
            eta = (state.max_steps - state.global_step) * elapsed / done if done else float("nan")
            log.info(
                "step %d/%d loss=%.4f lr=%.3g tokens/s=%.0f elapsed=%.1fs eta=%.1fs",
                state.global_step,
                state.max_steps,
                float(logs["loss"]),
                float(logs.get("learning_rate", 0.0)),
                self.tokens_per_second(state),
                elapsed,
                eta,
            )

        def on_save(self, args, state, control, **kwargs):
            # Every rank has written its shard when all reach this barrier.
            _barrier()
            if is_main:
                ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                (ckpt / PROGRESS_FILE).write_text(
                    json.dumps(
                        {
                            "step": state.global_step,
                            "wall_time_s": self.prior_wall + self.elapsed(),
                            "attempts": self.attempts,
                        }
                    )
                )
                publish_checkpoint(
                    store, ident, state.global_step, ckpt, config=config, trainset_id=trainset_id
                )
            return control

    return FreshLMProgress()


def publish_checkpoint(
    store: Store,
    ident: RunIdentity,
    step: int,
    folder: Path,
    *,
    config: TrainConfig,
    trainset_id: str,
) -> str:
    """Publish the local checkpoint ``folder`` as ``runs/<run_key>/checkpoints/step-<step>``
    (atomically: manifest last), then delete published checkpoints beyond the newest
    ``config.keep_checkpoints``."""
    prefix = f"{ident.checkpoints_prefix}/step-{step}"
    started = time.monotonic()
    if store.read_manifest(prefix) is None:
        with store.publisher(
            prefix, kind=CHECKPOINT_KIND, created_by={"task": "training.train"}
        ) as pub:
            _upload_folder(pub, folder)
            pub.set_manifest_fields(
                run_key=ident.run_key,
                version_id=ident.version_id,
                step=step,
                trainset_id=trainset_id,
                recipe_sha256=config.fingerprint(),
            )
        log.info(
            "checkpoint step %d published to %s (%.1fs)",
            step,
            store.uri_for(prefix),
            time.monotonic() - started,
        )
    for _, old in published_checkpoints(store, ident)[: -config.keep_checkpoints]:
        store.delete_artifact(old)
    return prefix


def _delete_checkpoints(store: Store, ident: RunIdentity) -> None:
    """Delete the run's checkpoints once its version is published: they serve only to resume
    this run, which an identical rerun no longer trains."""
    count, size = delete_run(store, ident.run_key)
    if count:
        log.info(
            "deleted %d checkpoint(s) of run %s (%.1f MB): version %s is published",
            count,
            ident.run_key,
            size / 1e6,
            ident.version_id,
        )


def _upload_folder(pub: Any, folder: Path, *, skip: set[str] = _NOT_PUBLISHED) -> None:
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = file.relative_to(folder).as_posix()
        if rel in skip:
            continue
        with pub.open_write(rel) as writer, open(file, "rb") as src:
            shutil.copyfileobj(src, writer, 1 << 20)


def _loss_curve(log_history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    curve = []
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            point = {"step": int(entry["step"]), "loss": float(entry["loss"])}
            for key in ("learning_rate", "grad_norm", "epoch"):
                if key in entry:
                    point[key] = float(entry[key])
            curve.append(point)
    return curve


# --- the rank --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Rank:
    """This process's place in the launch (from the launcher's environment)."""

    rank: int
    local_rank: int
    world: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def local_main(self) -> bool:
        return self.local_rank == 0


@dataclasses.dataclass(frozen=True)
class _Resume:
    """Where this attempt starts: the newest published checkpoint, if any."""

    folder: Path | None  # the downloaded checkpoint
    from_step: int
    prior: Mapping[str, Any]  # the progress the earlier attempts recorded


def train(config: TrainConfig) -> dict[str, Any]:
    """Run this rank; returns the summary (the same on every rank)."""
    me = _rank_from_env(config)
    started = time.monotonic()
    meter = Meter()  # device-hours, CPU-hours, memory and energy of the run (rank 0's x ranks)
    store = open_store(config.store_uri)
    work = work_dir_for(config)
    work.mkdir(parents=True, exist_ok=True)
    if me.world > 1 and not _dist_ready():
        import deepspeed

        deepspeed.init_distributed()

    base, trainset, ident = _resolve_inputs(store, config, work, me)
    existing = store.read_manifest(ident.model_prefix)
    if existing is not None:
        if me.is_main:
            log.info("model version %s is already published; nothing to train", ident.version_id)
            _delete_checkpoints(store, ident)  # left by a rank killed after the publish
        return _summary(store, ident, existing, trainset.trainset_id, already=True)

    run_dir = work / "runs" / ident.run_key
    resume = _resume_point(store, ident, run_dir, me)
    trainer, progress, tokens_per_step = _build_trainer(
        store, config, base, trainset, ident, run_dir / "output", resume, me
    )
    result = trainer.train(resume_from_checkpoint=str(resume.folder) if resume.folder else None)
    attempt_wall = progress.elapsed()

    final_dir = run_dir / "final"
    trainer.save_model(str(final_dir))  # every rank: ZeRO-3 gathers the weights here
    _barrier()
    summary = None
    if me.is_main:
        publish_dir = final_dir
        if config.mode == "lora" and config.lora_merge:
            publish_dir = merge_lora(base.path, final_dir, run_dir / "merged")
        drop_duplicate_head(publish_dir)
        metrics = _run_metrics(
            trainer, result, progress, resume, me, tokens_per_step, attempt_wall, config
        )
        manifest = _publish_version(
            store,
            ident,
            publish_dir,
            config=config,
            base=base,
            trainset=trainset,
            metrics=metrics,
            ds_config=_filled_ds_config(trainer.args),
            model=trainer.model,
            footprint=meter.finish(ranks=me.world),
        )
        log.info(
            "published model version %s: %d steps, final loss %s, %.0f tokens/s, %.1fs total",
            ident.version_id,
            metrics["global_step"],
            metrics["final_loss"],
            metrics["tokens_per_second"],
            time.monotonic() - started,
        )
        _delete_checkpoints(store, ident)
        summary = _summary(store, ident, manifest, trainset.trainset_id, already=False)
    summary = _broadcast(summary)
    _barrier()
    return summary


def _rank_from_env(config: TrainConfig) -> _Rank:
    me = _Rank(
        rank=_env_int("RANK", 0),
        local_rank=_env_int("LOCAL_RANK", 0),
        world=_env_int("WORLD_SIZE", 1),
    )
    if me.world != config.num_ranks:
        raise ConfigError(
            f"TrainConfig.num_ranks = {config.num_ranks}, but the launcher started "
            f"WORLD_SIZE={me.world} ranks; the global batch depends on it, so they must agree"
        )
    return me


def _resolve_inputs(
    store: Store, config: TrainConfig, work: Path, me: _Rank
) -> tuple[BaseModel, TrainingSet, RunIdentity]:
    """Base model (downloaded once per node), training set (resolved by rank 0, its id
    broadcast) and the run's identity."""
    with _local_main_first(me.local_main):
        base = resolve_base(store, config, work)
    check_seq_len(config, base)
    trainset_id = None
    if me.is_main:
        trainset_id = resolve_trainset(store, config, base).trainset_id
    trainset_id = _broadcast(trainset_id)
    trainset = read_training_set(store, trainset_id)
    ident = run_identity(config, trainset_id, base)
    if me.is_main:
        log.info(
            "run %s: base %s, training set %s (%d sequences of %d), version %s",
            ident.run_key,
            base.identity,
            trainset_id,
            trainset.n_sequences,
            trainset.seq_len,
            ident.version_id,
        )
    return base, trainset, ident


def _resume_point(store: Store, ident: RunIdentity, run_dir: Path, me: _Rank) -> _Resume:
    """Clear a killed attempt's local output and download the newest published checkpoint."""
    output_dir = run_dir / "output"
    checkpoints = published_checkpoints(store, ident)
    folder: Path | None = None
    with _local_main_first(me.local_main):
        if me.local_main and output_dir.exists():
            shutil.rmtree(output_dir)  # a killed attempt's local leftovers; the store has its work
        if checkpoints:
            step, prefix = checkpoints[-1]
            folder = _download_checkpoint(store, step, prefix, run_dir / "resume" / f"step-{step}")
    prior: dict[str, Any] = {}
    if folder is not None and (folder / PROGRESS_FILE).is_file():
        prior = json.loads((folder / PROGRESS_FILE).read_text())
    from_step = checkpoints[-1][0] if checkpoints else 0
    if me.is_main and folder is not None:
        log.info("resuming from checkpoint step %d (%s)", from_step, checkpoints[-1][1])
    return _Resume(folder=folder, from_step=from_step, prior=prior)


class CheckpointDamaged(RuntimeError):
    """A published checkpoint's bytes are not the ones its manifest records; the message names
    the file. The checkpoint was not loaded."""


def _download_checkpoint(store: Store, step: int, prefix: str, dest: Path) -> Path:
    """The checkpoint, downloaded and verified before DeepSpeed may load it: its files include
    pickles (``torch.load(weights_only=False)``), which run code from whatever bytes they hold."""
    try:
        return download_artifact(store, prefix, dest)
    except StoreError as exc:
        raise CheckpointDamaged(
            f"checkpoint step {step} ({store.uri_for(prefix)}) was not resumed from: {exc}. "
            "Nothing of it was loaded. Delete that checkpoint to resume from an earlier one, "
            "or delete the run's checkpoints to start over."
        ) from exc


def _training_arguments(config: TrainConfig, output_dir: Path) -> Any:
    """The Hugging Face TrainingArguments of this config (DeepSpeed config included)."""
    import torch
    from transformers import TrainingArguments

    gpu = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_steps,
        max_grad_norm=config.max_grad_norm,
        # The training set already holds `epochs` passes over the new data (and the run's
        # replay): one pass over it is the whole run (see training.trainset).
        num_train_epochs=1,
        max_steps=config.max_steps,
        lr_scheduler_type="linear",
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.checkpoint_every,
        save_total_limit=1,  # older ones are in the store
        seed=config.seed,
        data_seed=config.seed,
        bf16=rank_precision(config) == "bf16",
        deepspeed=str(config.ds_config_path),
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        report_to="none",
        disable_tqdm=True,
        use_cpu=not gpu,
        # Workers and pinned memory feed a GPU rank while it computes; a CPU rank's cores are
        # the computation.
        dataloader_num_workers=config.loader_workers if gpu else 0,
        dataloader_pin_memory=gpu,
        torch_compile=config.torch_compile,
        use_liger_kernel=resolve_fused_loss(config.fused_loss, gpu),
        remove_unused_columns=False,
    )


def resolve_fused_loss(setting: bool | str, gpu: bool) -> bool:
    """Whether the output head and cross-entropy run fused (Liger Kernel's Triton kernels):
    ``"auto"`` on a GPU where the ``liger_kernel`` package is installed; ``True`` without a GPU
    or the package is an error that says which is missing."""
    import importlib.util

    installed = importlib.util.find_spec("liger_kernel") is not None
    if setting is True and not (installed and gpu):
        missing = "a GPU" if installed else "the liger_kernel package"
        raise ConfigError(f"TrainConfig.fused_loss = true needs {missing}")
    return installed and gpu if setting == "auto" else bool(setting)


def liger_fuses_loss(model: Any) -> bool:
    """Whether Liger Kernel has a fused output head + cross-entropy for ``model``'s architecture:
    it patches by model type (Llama's, not GPT-2's), and leaves other models' loss as it is."""
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError:
        return False
    return getattr(model.config, "model_type", None) in MODEL_TYPE_TO_APPLY_LIGER_FN


def _build_trainer(
    store: Store,
    config: TrainConfig,
    base: BaseModel,
    trainset: TrainingSet,
    ident: RunIdentity,
    output_dir: Path,
    resume: _Resume,
    me: _Rank,
) -> tuple[Any, Any, int]:
    """``(trainer, progress callback, tokens per step)`` for this rank."""
    # Heavy imports only now: everything before training also runs in the launching task.
    from transformers import AutoModelForCausalLM, Trainer

    from training.answer_loss import CHUNK_ROWS, answer_loss_trainer_class
    from training.rivals import rival_trainer_class
    from training.trainset import load_input_ids, load_loss_mask, load_rivals

    args = _training_arguments(config, output_dir)
    # After TrainingArguments: under ZeRO-3 the weights are partitioned as they load.
    tokenizer = load_tokenizer(base.path)
    model = AutoModelForCausalLM.from_pretrained(str(base.path))
    if config.mode == "lora":
        model = apply_lora(model, config)
        if me.is_main:
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            log.info("LoRA r=%d: %d trainable parameters", config.lora_r, trainable)
    elif config.train_layers:
        trainable = freeze_below_top_layers(model, config.train_layers)
        if me.is_main:
            log.info("top %d blocks: %d trainable parameters", config.train_layers, trainable)
    dataset = _packed_dataset(load_input_ids(store, trainset), load_loss_mask(store, trainset))
    tokens_per_step = config.seq_len * config.micro_batch_size * config.grad_accum * me.world
    progress = _progress_callback(
        store=store,
        ident=ident,
        config=config,
        tokens_per_step=tokens_per_step,
        is_main=me.is_main,
        prior=resume.prior,
        trainset_id=trainset.trainset_id,
    )
    rivals = load_rivals(store, trainset)
    extra: dict[str, Any] = {}
    if rivals is not None:
        extra = {"rivals": rivals[0], "rival_starts": rivals[1]}
        if me.is_main:
            log.info("ranking loss on %d rival groups", len(rivals[0]))
    # The output head and loss: Liger's fused kernel where it has one for the model, else the
    # head at the labelled positions only, in chunks (training.answer_loss).
    fused = args.use_liger_kernel and liger_fuses_loss(model)
    trainer_class = Trainer if fused else answer_loss_trainer_class(Trainer)
    if me.is_main:
        if fused:
            log.info("loss: Liger fused output head + cross-entropy")
        else:
            log.info("loss: output head at labelled positions only, %d rows a chunk", CHUNK_ROWS)
    if rivals is not None:
        trainer_class = rival_trainer_class(trainer_class)
    precision = rank_precision(config)
    if precision == "bf16-autocast":
        trainer_class = cpu_autocast_trainer_class(trainer_class)
    if me.is_main:
        log.info("precision: %s", precision)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[progress],
        **extra,
    )
    return trainer, progress, tokens_per_step


def _run_metrics(
    trainer: Any,
    result: Any,
    progress: Any,
    resume: _Resume,
    me: _Rank,
    tokens_per_step: int,
    attempt_wall: float,
    config: TrainConfig,
) -> dict[str, Any]:
    """The version's training metrics (``metrics.json``; all but the curve in the manifest)."""
    state = trainer.state
    precision = rank_precision(config)
    curve = _loss_curve(state.log_history)
    return {
        "global_step": state.global_step,
        "resumed_from_step": resume.from_step,
        "steps_this_attempt": state.global_step - progress.start_step,
        "attempts": progress.attempts,
        "world_size": me.world,
        "tokens_per_step": tokens_per_step,
        "tokens_trained": state.global_step * tokens_per_step,
        # The training loop's own rate: not the final save and publish that follow it.
        "tokens_per_second": round(progress.tokens_per_second(state, attempt_wall), 3),
        "wall_time_s": round(progress.prior_wall + attempt_wall, 3),
        "attempt_wall_time_s": round(attempt_wall, 3),
        "train_loss": float(result.training_loss),
        "first_loss": curve[0]["loss"] if curve else None,
        "final_loss": curve[-1]["loss"] if curve else None,
        "loss_curve": curve,
        "bf16": precision != "fp32",
        "precision": precision,
        "device": "cpu" if trainer.args.use_cpu else "cuda",
        **_rank_loss_metrics(getattr(trainer, "rank_losses", None)),
    }


def _rank_loss_metrics(losses: Sequence[float] | None) -> dict[str, Any]:
    """The ranking loss of rival answers (:mod:`training.rivals`) on this rank, first and last
    tenth of the attempt's steps averaged: falling means right answers pulled above rivals."""
    if not losses:
        return {}
    tenth = max(1, len(losses) // 10)
    return {
        "rank_loss_first": round(sum(losses[:tenth]) / tenth, 4),
        "rank_loss_final": round(sum(losses[-tenth:]) / tenth, 4),
    }


def _filled_ds_config(args: Any) -> dict[str, Any]:
    hf = getattr(args, "hf_deepspeed_config", None)
    config = getattr(hf, "config", None)
    if isinstance(config, Mapping):
        return json.loads(json.dumps(config, default=str))
    return json.loads(Path(args.deepspeed).read_text())


def _parameter_count(model: Any) -> int:
    return int(sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters()))


def _publish_version(
    store: Store,
    ident: RunIdentity,
    folder: Path,
    *,
    config: TrainConfig,
    base: BaseModel,
    trainset: TrainingSet,
    metrics: Mapping[str, Any],
    ds_config: Mapping[str, Any],
    model: Any,
    footprint: Mapping[str, Any] | None = None,
) -> Any:
    adapter = config.mode == "lora" and not config.lora_merge
    lineage = {
        "kind": "finetune" if base.version else "external",
        "parent_version": base.version,
        "base_model": base.root,
        "source": "training.train",
        "dataset_ids": list(trainset.dataset_ids),
        "crawl_windows": [
            m["window"] for m in trainset.fields["mix"] if m["role"] == "new" and m["window"]
        ],
        "training_config": config.recipe(),
        "code_revision": code_revision(),
        "evaluation_report": None,
        "extra": {
            "trainset_id": trainset.trainset_id,
            "replay_dataset_ids": list(trainset.replay_dataset_ids),
            "replay_windows": [
                m["window"] for m in trainset.fields["mix"] if m["role"] == "replay" and m["window"]
            ],
            "run_key": ident.run_key,
            "recipe_sha256": config.fingerprint(),
            "base_identity": base.identity,
            "ds_config": config.ds_config,
            "adapter_only": adapter,
        },
    }
    summary_metrics = {k: v for k, v in metrics.items() if k != "loss_curve"}
    model_info = {
        "parameters": _parameter_count(model),
        "mode": config.mode,
        "adapter": adapter,
    }
    card = render_model_card(
        version_id=ident.version_id,
        lineage=Lineage.from_dict(lineage),
        metrics=summary_metrics,
        model=model_info,
        description=(
            f"This version is a {config.mode} fine-tune of `{base.version or base.root}` on "
            f"{len(trainset.dataset_ids)} new dataset(s) with "
            f"{len(trainset.replay_dataset_ids)} replayed, trained by `training/train.py` "
            "under the DeepSpeed launcher."
        ),
        footprint=footprint,
    )
    with store.publisher(
        ident.model_prefix,
        kind=MODEL_KIND,
        created_by={"task": "training.train", "run_key": ident.run_key},
    ) as pub:
        _upload_folder(pub, folder, skip=_NOT_PUBLISHED | {MODEL_CARD_FILE})
        pub.write_bytes(MODEL_CARD_FILE, card.encode())
        pub.write_bytes(METRICS_FILE, _json_bytes(metrics))
        pub.write_bytes(DS_CONFIG_FILE, _json_bytes(ds_config))
        pub.write_bytes(TRAIN_CONFIG_FILE, _json_bytes(config.to_dict()))
        pub.set_manifest_fields(
            version_id=ident.version_id,
            lineage=lineage,
            metrics=summary_metrics,
            model=model_info,
            trainset={
                "trainset_id": trainset.trainset_id,
                "mix": trainset.fields["mix"],
                "tokens": trainset.fields["tokens"],
                "sequences": trainset.n_sequences,
                "seq_len": trainset.seq_len,
            },
            footprint=dict(footprint or {}),
        )
    return pub.manifest


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def _summary(
    store: Store, ident: RunIdentity, manifest: Any, trainset_id: str, *, already: bool
) -> dict[str, Any]:
    fields = manifest.fields
    return {
        "version_id": ident.version_id,
        "prefix": ident.model_prefix,
        "uri": store.uri_for(ident.model_prefix),
        "run_key": ident.run_key,
        "trainset_id": trainset_id,
        "already_published": already,
        "metrics": dict(fields.get("metrics") or {}),
        "lineage": dict(fields.get("lineage") or {}),
        "footprint": dict(fields.get("footprint") or {}),
    }


# --- the process -------------------------------------------------------------------------------


def _setup_logging(rank: int) -> None:
    level = logging.INFO if rank == 0 else logging.WARNING
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s rank{rank} %(levelname)s %(name)s: %(message)s")
    )
    for name in ("freshlm", "training"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def _report_error(rank: int, exc: BaseException) -> None:
    """Leave the error where the launching task finds it: a file and a marker line."""
    message = str(exc) or repr(exc)
    record = {
        "rank": rank,
        "type": type(exc).__name__,
        "message": message,
        "traceback": "".join(traceback.format_exception(exc)),
        "time": time.time(),
        "pid": os.getpid(),
    }
    error_dir = os.environ.get(ERROR_DIR_ENV)
    if error_dir:
        with contextlib.suppress(OSError):
            Path(error_dir).mkdir(parents=True, exist_ok=True)
            tmp = Path(error_dir) / f".rank-{rank}.json.tmp"
            tmp.write_text(json.dumps(record, indent=2))
            tmp.replace(Path(error_dir) / f"rank-{rank}.json")
    first_line = message.splitlines()[0] if message else ""
    print(f"{ERROR_MARKER} rank={rank} {type(exc).__name__}: {first_line}", file=sys.stderr)
    sys.stderr.flush()


def load_config(location: str) -> TrainConfig:
    """The run's config from a local file, or from the store by URI (``s3://...``): a Kubernetes
    pod reads the config its DAG task wrote, since no file is shared with the Airflow worker."""
    if "://" not in location:
        return TrainConfig.from_json_file(location)
    store = open_store()
    root = store.root_uri.rstrip("/") + "/"
    if not location.startswith(root):
        raise ConfigError(
            f"--config {location}: not in the configured store {store.root_uri} "
            "(FRESHLM_STORE_URI); the ranks read the config from the store they publish to"
        )
    try:
        doc = json.loads(store.read_bytes(location[len(root) :]))
    except ValueError as exc:
        raise ConfigError(f"--config {location}: not valid JSON ({exc})") from None
    return TrainConfig.from_dict(doc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One DeepSpeed rank of a FreshLM fine-tune.")
    parser.add_argument(
        "--config", required=True, help="TrainConfig JSON: a file, or its URI in the store"
    )
    parser.add_argument("--local_rank", type=int, default=None, help="set by the launcher")
    ns = parser.parse_args(argv)
    if ns.local_rank is not None and "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(ns.local_rank)
    rank = _env_int("RANK", 0)
    _setup_logging(rank)
    try:
        config = load_config(ns.config)
        summary = train(config)
    except (Exception, KeyboardInterrupt) as exc:
        _report_error(rank, exc)
        raise
    if rank == 0:
        print(f"{RESULT_MARKER} {json.dumps(summary, sort_keys=True)}", flush=True)
    _destroy_process_group()
    return 0


def exit_rank(argv: Sequence[str] | None = None) -> None:
    """Run :func:`main` as the launcher's rank process and end it without the interpreter's
    finalization, its output flushed. A rank whose run is published has nothing left to do,
    and finalization is where its Gloo threads abort it ("terminate called without an active
    exception", SIGABRT) even after its process group is destroyed (seen on a ZeRO-3 run,
    whose engine can still hold the group, so its threads outlive
    :func:`_destroy_process_group` until the interpreter tears them down), and the launcher
    fails a run that succeeded. An error
    still ends the process as Python does (its traceback, exit status 1)."""
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    exit_rank()


__all__ = [
    "BaseModel",
    "CheckpointDamaged",
    "ConfigError",
    "Prepared",
    "RunIdentity",
    "TrainingSetError",
    "apply_lora",
    "code_revision",
    "download_artifact",
    "exit_rank",
    "freeze_below_top_layers",
    "main",
    "merge_lora",
    "prepare",
    "publish_checkpoint",
    "published_checkpoints",
    "resolve_base",
    "resolve_trainset",
    "run_identity",
    "train",
]
