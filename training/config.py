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

from training.precision import BF16_CHOICES

#: Share of ALL the run's training tokens drawn from earlier published datasets ("replay").
#:
#: Measured against the run's whole budget, not one pass over the new data, as Ibrahim et al.
#: 2024, "Simple and Scalable Strategies to Continually Pre-train Large Language Models"
#: (arXiv:2403.08763), state it (a share of the tokens trained on); they find 5% enough under a
#: weak distribution shift and about 25% needed under a strong one; Scialom et al. 2022
#: (arXiv:2205.12393) keep most earlier skills with 1% rehearsal. A night of FreshLM is a far
#: stronger shift than either: a few thousand tokens of one day's text, passed over many times
#: (``epochs``) so that a small model learns its facts, against a base that memorized its whole
#: archive. 0.6 is the share at which the sandbox world's retention probes stay within the
#: promotion gate (lower shares forgot); it costs 60% of each night's compute. The measurements
#: behind it are in bench/RESULTS.md ("training defaults: the measurements behind them").
#: That is the ``tiny`` base's recipe; a config takes the configured base's
#: (``FRESHLM_TRAIN_REPLAY_RATIO``, :mod:`freshlm.base_recipes`).
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
        # How fast the same computation runs, not what it computes.
        "torch_compile",
        "loader_workers",
        "fused_loss",
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
    ``train_layers``: with ``mode`` ``full``, train only the top N transformer blocks (and
    the final norm); the embeddings and the blocks below stay frozen, so the backward pass
    stops early. 0 trains every weight.
    ``augment``: also train on each new document's facts stated in several forms, questions
    and answers in the model's chat template among them (:mod:`training.augment`), the loss
    on the answers only, each span answer ranked above the night's rival ones
    (:mod:`training.rivals`).
    ``rehearsal``: that many of the lineage's root base's own question-answer turns
    (self-synthesized rehearsal, :mod:`training.rehearsal`) trained each pass, so the model
    keeps answering what it knew; 0: none.
    ``context_answers`` (with ``augment``): also train the answers the model itself gives to
    the augmentation's span questions with the span's sentence in its prompt, asked without
    it (:mod:`training.context_answers`), so it learns to say the night's facts in its own
    form.
    ``rivals``: with ``augment``, each span answer ranked above the same question answered by
    up to that many other spans of the night (:mod:`training.rivals`); 0: no ranking loss.
    Without ``augment`` there are no span answers, and the field is not part of the recipe.
    ``appositions`` (with ``augment``): each English fact sentence's appositions also stated
    and asked as sentences of their own (:mod:`training.appositions`).
    ``written_questions`` (with ``augment``): each price, count and date of the night also
    asked in a question the base writes itself and answers from its sentence
    (:mod:`training.written_questions`), answered by the span.
    ``question_variants`` (with ``augment``): each span question also asked in up to that many
    other wordings by rule (:mod:`training.question_variants`), so a fact is said when asked
    as a user asks it, not only in the augmentation's wording; 0: none.
    Length: ``epochs`` is the number of passes over the NEW documents; the packed training set
    holds those passes plus the replay (``replay_ratio`` of all its tokens) and the trainer runs
    one pass over it, or ``max_steps`` steps if positive.
    Defaults: ``epochs``, ``learning_rate``, ``train_layers``, ``augment``, ``replay_ratio``,
    ``rehearsal``, ``context_answers``, ``question_variants``, ``rivals``, ``appositions``,
    ``written_questions`` and ``bf16`` come from the settings (``FRESHLM_TRAIN_EPOCHS``,
    ``_LEARNING_RATE``, ``_LAYERS``, ``_AUGMENT``, ``_REPLAY_RATIO``, ``_REHEARSAL``,
    ``_CONTEXT_ANSWERS``, ``_QUESTION_VARIANTS``, ``_RIVALS``, ``_APPOSITIONS``,
    ``_WRITTEN_QUESTIONS``, ``_BF16``, which default to the
    base model's recipe, :mod:`freshlm.base_recipes`), and
    ``micro_batch_size`` from ``FRESHLM_TRAIN_MICRO_BATCH`` (the machine's, not the recipe's):
    their one source, read when a config is built without them.
    Batch: ``micro_batch_size`` sequences per rank per step, times ``grad_accum``, times
    ``num_ranks`` is the global batch. ``bf16`` is ``"auto"`` (on a GPU that has it),
    ``"native"`` (also on a CPU with bf16 instructions, as autocast), ``True`` or ``False``
    (:mod:`training.precision`). ``ds_config`` names a file in ``training/ds_configs/``.
    GPU path (runtime only: the run key and version do not depend on them): ``torch_compile``
    compiles the model (DeepSpeed applies it to its engine); ``loader_workers`` data loader
    processes with pinned memory on a GPU rank (none on CPU ranks, where they would take the
    ranks' cores); ``fused_loss`` (``"auto"``: on a GPU where Liger Kernel is installed) fuses
    the output head with the cross-entropy, so no fp32 logits are materialised.
    """

    datasets: tuple[str, ...]
    base_version: str | None = None
    base_model_path: str | None = None
    replay_ratio: float = dataclasses.field(default_factory=lambda: _setting("train_replay_ratio"))
    augment: bool = dataclasses.field(default_factory=lambda: _setting("train_augment"))
    rehearsal: int = dataclasses.field(default_factory=lambda: _setting("train_rehearsal"))
    context_answers: bool = dataclasses.field(
        default_factory=lambda: _setting("train_context_answers")
    )
    question_variants: int = dataclasses.field(
        default_factory=lambda: _setting("train_question_variants")
    )
    rivals: int = dataclasses.field(default_factory=lambda: _setting("train_rivals"))
    appositions: bool = dataclasses.field(default_factory=lambda: _setting("train_appositions"))
    written_questions: bool = dataclasses.field(
        default_factory=lambda: _setting("train_written_questions")
    )
    seq_len: int = 128
    epochs: float = dataclasses.field(default_factory=lambda: _setting("train_epochs"))
    max_steps: int = -1
    learning_rate: float = dataclasses.field(
        default_factory=lambda: _setting("train_learning_rate")
    )
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    micro_batch_size: int = dataclasses.field(default_factory=lambda: _setting("train_micro_batch"))
    grad_accum: int = 1
    mode: str = "full"
    train_layers: int = dataclasses.field(default_factory=lambda: _setting("train_layers"))
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] | None = None
    lora_merge: bool = True
    gradient_checkpointing: bool = False
    bf16: bool | str = dataclasses.field(default_factory=lambda: _setting("train_bf16"))
    torch_compile: bool = False
    loader_workers: int = 2
    fused_loss: bool | str = "auto"
    ds_config: str = "zero2"
    seed: int = 0
    num_ranks: int = 1
    # --- runtime (not part of the fingerprint) ---
    checkpoint_every: int = 50  # often enough that a crash loses minutes, not the night
    keep_checkpoints: int = 2  # while the run trains; all go once its version is published
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
        if not _is_int(self.train_layers) or self.train_layers < 0:
            fail("train_layers", "must be an integer >= 0 (0: every layer)")
        if not _is_int(self.rehearsal) or self.rehearsal < 0:
            fail("rehearsal", "must be an integer >= 0 (0: no rehearsal)")
        if self.context_answers and not self.augment:
            fail("context_answers", "needs augment: the questions are the augmentation's")
        if not _is_int(self.question_variants) or self.question_variants < 0:
            fail("question_variants", "must be an integer >= 0 (0: no other wordings)")
        if self.question_variants and not self.augment:
            fail("question_variants", "needs augment: the questions are the augmentation's")
        if not _is_int(self.rivals) or self.rivals < 0:
            fail("rivals", "must be an integer >= 0 (0: no ranking loss)")
        if self.appositions and not self.augment:
            fail("appositions", "needs augment: the restatements are the augmentation's")
        if self.written_questions and not self.augment:
            fail("written_questions", "needs augment: its questions are trained as its turns")
        if self.train_layers and self.mode != "full":
            fail("train_layers", "applies to mode 'full' only (LoRA chooses its own weights)")
        if self.lora_target_modules is not None:
            modules = self.lora_target_modules
            if isinstance(modules, str) or not isinstance(modules, (list, tuple)) or not modules:
                fail("lora_target_modules", "must be null or a non-empty list of module names")
            if not all(isinstance(m, str) and m for m in modules):
                fail("lora_target_modules", "module names must be non-empty strings")
            object.__setattr__(self, "lora_target_modules", tuple(modules))
        for name in (
            "lora_merge",
            "gradient_checkpointing",
            "augment",
            "context_answers",
            "appositions",
            "written_questions",
            "torch_compile",
        ):
            if not isinstance(getattr(self, name), bool):
                fail(name, "must be true or false")
        if self.bf16 not in BF16_CHOICES and not isinstance(self.bf16, bool):
            fail("bf16", 'must be "auto", "native", true or false')
        if self.fused_loss != "auto" and not isinstance(self.fused_loss, bool):
            fail("fused_loss", 'must be "auto", true or false')
        if not _is_int(self.loader_workers) or self.loader_workers < 0:
            fail("loader_workers", "must be an integer >= 0")
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
        recipe = {k: v for k, v in self.to_dict().items() if k not in skip}
        # Off is the absence of the option: the fingerprint omits it.
        for name in (
            "augment",
            "train_layers",
            "rehearsal",
            "context_answers",
            "question_variants",
            "rivals",
            "appositions",
            "written_questions",
        ):
            if not recipe[name]:
                del recipe[name]
        if not self.augment:
            recipe.pop("rivals", None)
        return recipe

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


def _setting(name: str) -> Any:
    """A training default from the settings (core): the one place it is defined."""
    from freshlm.settings import get_settings

    return getattr(get_settings(), name)


def default_of(name: str) -> Any:
    """The default of the :class:`TrainConfig` field ``name`` (a settings-backed one is read
    from the settings now)."""
    field = TrainConfig.__dataclass_fields__[name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise KeyError(f"TrainConfig.{name} has no default")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
