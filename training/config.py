"""The training configuration: one typed, validated record of how a model version is trained.

A :class:`TrainConfig` travels as JSON (``--config`` of :mod:`training.train`, written by the
task that launches it) and is validated field by field on load, so a mistake fails the task
before any rank starts, with a message naming the field. Importing this module is cheap (no
torch, no transformers): DAG files and the UI may validate parameters with it.

Which fields matter for the result is explicit: :meth:`TrainConfig.fingerprint` hashes every
field except the operational ones in :data:`RUNTIME_FIELDS` (where the run writes, how often it
checkpoints, how chatty it is). The fingerprint is part of the run key, so changing the learning
rate starts a new run, while moving the work folder or checkpointing more often resumes the
same one (DESIGN invariant 1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Share of ALL the run's training tokens drawn from earlier published datasets ("replay").
#:
#: Measured against the run's whole budget, not one pass over the new data, as Ibrahim et al.
#: 2024, "Simple and Scalable Strategies to Continually Pre-train Large Language Models"
#: (arXiv:2403.08763), state it (a share of the tokens trained on); they find 5% enough under a
#: weak distribution shift (Pile -> SlimPajama) and about 25% needed under a strong one
#: (English -> German). Scialom et al. 2022 (arXiv:2205.12393) keep most earlier skills with 1%
#: rehearsal. A night of FreshLM is a far stronger shift than either: a few thousand tokens of
#: one day's news, slang and papers, passed over many times (``epochs``) so that a small model
#: learns its facts, against a base that memorized its whole archive. Measured on the sandbox
#: world (4.2M-parameter GPT-2, day 1 = 4.7k new tokens, 20 passes at lr 2e-3, 2 CPU ranks):
#: replay 0.5 of the run's tokens kept old-text perplexity (-1.5%) but retention probes dropped
#: 3.75 points (gate: 2); replay 0.6 (140k tokens: the whole 395-document archive about twice)
#: gave retention drop 0.0, old perplexity -3.3%, new-knowledge +0.58 and world facts 0.92. The
#: old per-pass 0.25 (the same ~6 archive documents replayed every pass, 30 passes) forgot:
#: retention -18 points, old perplexity +598%. With the shipped defaults (30 passes, lr 1e-3,
#: replay 0.6) night 1 vs the base: new-knowledge +0.59, retention +0.02, old perplexity -2.9%;
#: night 3 vs night 1: new-knowledge +0.69, retention -0.004, old perplexity -1.3%, world
#: facts 0.58 -> 0.75 (20 passes at lr 2e-3: 0.71 with retention -4.2 points; 40 at 1e-3:
#: 0.71). 0.6 costs 60% of each night's compute, which on
#: nightly batches this small is about a minute on two CPU ranks.
#:
#: The world facts after night 3 (24 questions) vary from 14 to 18 right between seeds, and no
#: replay or schedule change moved them beyond that (2026-11-28, night 3 trained from the same
#: night-1 model): half of the replay from night 1's documents (20 passes instead of 2.6) 14-18;
#: peak lr 5e-4 or 3e-4 14-16; 15 warmup steps 15-18; nights 1 and 3 trained jointly from the base
#: 16; an 8-layer base (7.4M parameters) 17; quiz-style question/answer articles added to the
#: pretraining archive 15; each pass over the new documents in another sentence order (4 orders, the
#: "permute" augmentation of Allen-Zhu & Li 2023, arXiv:2309.14316) 16; scoring unnormalized instead
#: of per byte 15; a base pretrained 800 steps instead of 300 15. Night 1 alone answers 11-13 of its
#: 13 questions, but its wrong answers are strings the model has never seen; after night 3 the
#: distractors include facts it has learned (another slang word's meaning, another date), and a
#: model this small cannot tell which memorised answer belongs to which question. Replay is not the
#: limit; the small model's question-to-answer binding is (the 8-layer base, pretrained for the same
#: 300 steps, did not bind better). Measured directly (2026-11-28): asked under *another* fact's
#: question (three rotations), the same choices still score 15-16 of 24 after night 3 (18 under
#: the right one) and 12-14 of 24 after night 1 (14), so most of the accuracy is familiarity
#: with the answer strings; the evaluation report carries this control (``controls``). Also
#: tried since: whole articles in one window (seq_len 256) 17; averaging the night-1 and night-3
#: weights (night 1 + beta x the night-3 update, beta 0.3-0.8) 16-19; a base with 8 heads of 32
#: dimensions 16; one with 6 layers and 8 heads 13.
DEFAULT_REPLAY_RATIO = 0.6

MODES = ("full", "lora")
DS_CONFIGS = ("zero2", "zero3")
DS_CONFIG_DIR = Path(__file__).resolve().parent / "ds_configs"

#: Fields that change where or how visibly a run works, not what it produces: left out of the
#: fingerprint so a rerun with a different work folder or checkpoint cadence resumes the same run.
#: ``trainset_id`` is derived from ``datasets``/``epochs``/``replay_ratio``/``seed``/``seq_len`` and
#: enters the run key on its own.
RUNTIME_FIELDS = frozenset(
    {
        "store_uri",
        "work_dir",
        "checkpoint_every",
        "keep_checkpoints",
        "logging_steps",
        "trainset_id",
    }
)

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ConfigError(ValueError):
    """An invalid training configuration; the message names the field and what is wrong."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one model version is trained.

    Base model: exactly one of ``base_version`` (a published ``models/<id>`` in the store,
    downloaded into the work folder) or ``base_model_path`` (a local Hugging Face folder).
    Data: ``datasets`` are the new published dataset ids; ``replay_ratio`` of the training
    tokens are replayed from earlier published datasets (see :data:`DEFAULT_REPLAY_RATIO`).
    Length: ``epochs`` is the number of passes over the NEW documents; the packed training set
    holds those passes plus the replay (``replay_ratio`` of all its tokens) and the trainer runs
    one pass over it, or ``max_steps`` steps if positive.
    Batch: ``micro_batch_size`` sequences per rank per step, times ``grad_accum``, times
    ``num_ranks`` is the global batch. ``bf16`` is ``"auto"`` (on where the accelerator has it),
    ``True`` or ``False``. ``ds_config`` names a file in ``training/ds_configs/``.
    """

    datasets: tuple[str, ...]
    base_version: str | None = None
    base_model_path: str | None = None
    replay_ratio: float = DEFAULT_REPLAY_RATIO
    seq_len: int = 128
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    micro_batch_size: int = 8
    grad_accum: int = 1
    mode: str = "full"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] | None = None
    lora_merge: bool = True
    gradient_checkpointing: bool = False
    bf16: bool | str = "auto"
    ds_config: str = "zero2"
    seed: int = 0
    num_ranks: int = 1
    # --- runtime (not part of the fingerprint) ---
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    logging_steps: int = 1
    store_uri: str | None = None
    work_dir: str | None = None
    trainset_id: str | None = None

    def __post_init__(self) -> None:
        self._validate()

    # --- validation ---------------------------------------------------------------------------

    def _validate(self) -> None:
        def fail(field: str, why: str) -> None:
            value = getattr(self, field)
            raise ConfigError(f"TrainConfig.{field} = {value!r}: {why}")

        if isinstance(self.datasets, str) or not isinstance(self.datasets, (list, tuple)):
            fail("datasets", "must be a list of published dataset ids")
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if not self.datasets:
            fail("datasets", "needs at least one published dataset id")
        for ds in self.datasets:
            if not isinstance(ds, str) or not _ID_RE.match(ds):
                fail("datasets", f"{ds!r} is not a dataset id")
        if len(set(self.datasets)) != len(self.datasets):
            fail("datasets", "lists a dataset twice")
        if (self.base_version is None) == (self.base_model_path is None):
            raise ConfigError(
                "TrainConfig.base_version / base_model_path: give exactly one "
                f"(got base_version={self.base_version!r}, "
                f"base_model_path={self.base_model_path!r})"
            )
        if self.base_version is not None and (
            not isinstance(self.base_version, str) or not _ID_RE.match(self.base_version)
        ):
            fail("base_version", "is not a model version id")
        if self.base_model_path is not None and (
            not isinstance(self.base_model_path, str) or not self.base_model_path
        ):
            fail("base_model_path", "must be a path to a Hugging Face model folder")

        for name in ("replay_ratio", "lora_dropout"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value < 1.0:
                fail(name, "must be a number in [0, 1)")
        for name in ("learning_rate", "epochs"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                fail(name, "must be a positive number")
        for name in ("weight_decay", "max_grad_norm"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                fail(name, "must be a number >= 0")
        for name in (
            "seq_len",
            "micro_batch_size",
            "grad_accum",
            "lora_r",
            "lora_alpha",
            "num_ranks",
            "checkpoint_every",
            "keep_checkpoints",
            "logging_steps",
        ):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "must be an integer >= 1")
        if not _is_int(self.seq_len) or self.seq_len < 8:
            fail("seq_len", "must be an integer >= 8")
        if not _is_int(self.max_steps) or (self.max_steps < 1 and self.max_steps != -1):
            fail("max_steps", "must be a positive integer, or -1 to train for `epochs`")
        for name in ("warmup_steps", "seed"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "must be an integer >= 0")
        if self.mode not in MODES:
            fail("mode", f"must be one of {MODES}")
        if self.lora_target_modules is not None:
            modules = self.lora_target_modules
            if isinstance(modules, str) or not isinstance(modules, (list, tuple)) or not modules:
                fail("lora_target_modules", "must be null or a non-empty list of module names")
            if not all(isinstance(m, str) and m for m in modules):
                fail("lora_target_modules", "module names must be non-empty strings")
            object.__setattr__(self, "lora_target_modules", tuple(modules))
        for name in ("lora_merge", "gradient_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "must be true or false")
        if self.bf16 != "auto" and not isinstance(self.bf16, bool):
            fail("bf16", 'must be "auto", true or false')
        if self.ds_config not in DS_CONFIGS:
            fail("ds_config", f"must be one of {DS_CONFIGS} (files in training/ds_configs/)")
        for name in ("store_uri", "work_dir", "trainset_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                fail(name, "must be null or a non-empty string")

    # --- (de)serialization --------------------------------------------------------------------

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TrainConfig:
        """Build from JSON-like data; unknown or missing fields raise :class:`ConfigError`."""
        if not isinstance(doc, Mapping):
            raise ConfigError(f"TrainConfig: expected a JSON object, got {type(doc).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(doc) - names)
        if unknown:
            raise ConfigError(f"TrainConfig: unknown field(s) {unknown}; known: {sorted(names)}")
        if "datasets" not in doc:
            raise ConfigError("TrainConfig.datasets: missing (a list of published dataset ids)")
        return cls(**dict(doc))

    @classmethod
    def from_json_file(cls, path: str | Path) -> TrainConfig:
        try:
            doc = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"TrainConfig file {path}: cannot read ({exc})") from None
        except ValueError as exc:
            raise ConfigError(f"TrainConfig file {path}: not valid JSON ({exc})") from None
        return cls.from_dict(doc)

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["datasets"] = list(self.datasets)
        if self.lora_target_modules is not None:
            doc["lora_target_modules"] = list(self.lora_target_modules)
        return doc

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    # --- identity -----------------------------------------------------------------------------

    def recipe(self) -> dict[str, Any]:
        """The fields that determine the trained weights (all but :data:`RUNTIME_FIELDS`).

        ``base_model_path`` is left out too: where a base model lies says nothing about it, so
        the run key names the base by its content instead (see ``training.train.run_identity``).
        """
        skip = RUNTIME_FIELDS | {"base_model_path"}
        return {k: v for k, v in self.to_dict().items() if k not in skip}

    def fingerprint(self) -> str:
        """sha256 (hex) of :meth:`recipe` as canonical JSON."""
        canonical = json.dumps(self.recipe(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def ds_config_path(self) -> Path:
        return DS_CONFIG_DIR / f"{self.ds_config}.json"


def config_positions(doc: Mapping[str, Any]) -> int | None:
    """How many positions a Hugging Face ``config.json`` says the model attends over (None if
    it does not say): GPT-2 names it ``n_positions``, Llama-style models
    ``max_position_embeddings``."""
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = doc.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
