"""What a ``freshlm_train`` run trains: its Params and triggering events, checked against the store.

The DAG's first task calls :func:`plan_training`. Everything a user can get wrong is caught here,
before a rank starts, with a :class:`PlanError` that names the Param:

* ``datasets`` — published dataset ids; empty means the datasets announced by the triggering
  ``freshlm://datasets`` events, or (a manual run with no event) the newest published dataset.
  Each must be a published dataset in the store.
* ``base_version`` — an alias (``production``, ``previous``) or a model version id; resolved to
  a version id now, so the run trains from the model that was production when it was planned
  even if production moves while it trains.
* ``mode``, ``train_layers``, ``epochs``, ``learning_rate``, ``replay_ratio``, ``augment``,
  ``rehearsal``, ``context_answers``, ``question_variants``, ``rivals``, ``appositions``,
  ``written_questions``, ``micro_batch_size``, ``max_steps``, ``ds_config`` —
  become the :class:`~training.config.TrainConfig` (validated field by field).
* ``backend`` and ``gpus`` — where it runs: ``local`` starts the DeepSpeed launcher with
  ``gpus`` ranks on the worker (CPU ranks where there is no GPU), ``kubernetes`` one pod with
  ``gpus`` GPUs. The global batch depends on the number of ranks, so ``gpus`` is the config's
  ``num_ranks``: the same Params give the same model version on either backend.

A Param that is absent, None or empty takes its default here, from one place: ``epochs``,
``learning_rate``, ``backend`` and ``gpus`` from the settings (``FRESHLM_TRAIN_*``), the others
from :class:`~training.config.TrainConfig`'s field defaults.

The plan also records the **baseline**: the version ``production`` pointed at when the run was
planned. The evaluation compares the candidate against it, and the promotion moves
``production`` only if it still points there (compare-and-swap).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from freshlm.artifacts import (
    MODELS,
    TRAIN_DEFERRED,
    ArtifactNotFound,
    published_datasets,
    read_published_dataset,
)
from freshlm.registry import PRODUCTION, get_version, read_alias
from freshlm.registry.errors import VersionNotFound
from freshlm.settings import Settings, get_settings
from freshlm.store import Store
from training.config import (
    DS_CONFIGS,
    MODES,
    ConfigError,
    TrainConfig,
    config_positions,
    default_of,
)

BACKENDS = ("local", "kubernetes")
ALIASES = ("production", "previous")


class PlanError(ValueError):
    """A ``freshlm_train`` Param or event is invalid; the message names it and what is wrong."""


class TooLittleNewData(PlanError):
    """A scheduled run's new datasets hold fewer tokens than ``FRESHLM_TRAIN_MIN_NEW_TOKENS``:
    the run is skipped and its datasets deferred to the next scheduled run."""


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """One run's resolved work: the config, where it runs, and what it will be compared with."""

    config: TrainConfig
    backend: str
    gpus: int
    base_version: str
    baseline_version: str | None
    trigger: str  # "asset" (scheduled on freshlm://datasets) or "manual"

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "backend": self.backend,
            "gpus": self.gpus,
            "base_version": self.base_version,
            "baseline_version": self.baseline_version,
            "trigger": self.trigger,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TrainingPlan:
        fields = dict(doc)
        fields["config"] = TrainConfig.from_dict(fields["config"])
        return cls(**fields)


def datasets_from_events(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """The dataset ids announced by ``freshlm://datasets`` events (their extra's
    ``dataset_id``), oldest first, without repeats."""
    ids: list[str] = []
    for i, extra in enumerate(events):
        dataset_id = extra.get("dataset_id") if isinstance(extra, Mapping) else None
        if not isinstance(dataset_id, str) or not dataset_id:
            raise PlanError(
                f"triggering freshlm://datasets event #{i} has no dataset_id in its extra "
                f"(got {dict(extra) if isinstance(extra, Mapping) else extra!r}); trigger the run "
                "by hand with the Param datasets"
            )
        if dataset_id not in ids:
            ids.append(dataset_id)
    return ids


def published_dataset_ids(store: Store) -> list[str]:
    """Every published dataset id, oldest crawl window first."""
    return [d.dataset_id for d in published_datasets(store)]


def resolve_datasets(
    store: Store, requested: Sequence[str], events: Sequence[Mapping[str, Any]]
) -> tuple[list[str], str]:
    """``(dataset ids, trigger)``: the Param wins, then the events, then the newest dataset."""
    if requested:
        ids, trigger = list(dict.fromkeys(requested)), "manual"
    elif events:
        ids, trigger = datasets_from_events(events), "asset"
    else:
        published = published_dataset_ids(store)
        if not published:
            raise PlanError(
                "datasets: none given and nothing is published yet; run freshlm_crawl and "
                "freshlm_curate first, or give the Param datasets"
            )
        ids, trigger = [published[-1]], "manual"
    for dataset_id in ids:
        try:
            read_published_dataset(store, dataset_id)
        except ArtifactNotFound:
            known = published_dataset_ids(store)
            raise PlanError(
                f"datasets: {dataset_id!r} is not a published dataset in {store.root_uri} "
                f"(published: {', '.join(known[-5:]) or 'none'})"
            ) from None
    return ids, trigger


def trained_datasets(store: Store, version_id: str) -> set[str]:
    """Every dataset the version and its ancestors were trained on (their lineages)."""
    seen: set[str] = set()
    found: set[str] = set()
    current: str | None = version_id
    while current and current not in seen:
        seen.add(current)
        try:
            lineage = get_version(store, current).lineage
        except (VersionNotFound, ValueError):
            break
        found.update(lineage.dataset_ids or ())
        current = lineage.parent_version
    return found


def _with_deferred(
    store: Store, datasets: list[str], base_version: str, min_tokens: int
) -> list[str]:
    """A scheduled run's datasets with the ones earlier runs deferred (still published, not
    yet in the base's lineage) in front; raises :class:`TooLittleNewData`, deferring them all,
    when together they hold fewer than ``min_tokens`` tokens."""
    trained = trained_datasets(store, base_version)
    found = {}
    for key in sorted(store.list(TRAIN_DEFERRED + "/")):
        dataset_id = key.rsplit("/", 1)[-1].removesuffix(".json")
        if dataset_id in trained or dataset_id in datasets:
            continue
        try:
            found[dataset_id] = read_published_dataset(store, dataset_id)
        except ArtifactNotFound:
            continue  # forgotten or expired since: nothing left to train
    for dataset_id in datasets:
        found[dataset_id] = read_published_dataset(store, dataset_id)
    ids = list(found)
    tokens = sum(int(d.fields.get("tokens") or 0) for d in found.values())
    if tokens >= min_tokens:
        return ids
    for dataset_id in ids:
        store.write_json(
            f"{TRAIN_DEFERRED}/{dataset_id}.json",
            {"dataset_id": dataset_id, "tokens_with_the_run": tokens, "min_tokens": min_tokens},
        )
    raise TooLittleNewData(
        f"datasets: {len(ids)} new dataset(s) hold {tokens} tokens, fewer than "
        f"FRESHLM_TRAIN_MIN_NEW_TOKENS={min_tokens}; skipped, and deferred to the next scheduled "
        f"run: {', '.join(ids)}"
    )


def resolve_version(store: Store, name: str, *, param: str = "base_version") -> str:
    """A model version id from an alias name or a version id, checked against the registry."""
    if not isinstance(name, str) or not name.strip():
        raise PlanError(f"{param}: give an alias ({', '.join(ALIASES)}) or a model version id")
    name = name.strip()
    if name in ALIASES:
        move = read_alias(store, name)
        if move is None:
            hint = (
                "bootstrap the base model first (`python -m training.bootstrap` from a published "
                "base corpus or with --base; embedded: `python -m sandbox.base_model` or the demo)"
                if name == PRODUCTION
                else "nothing was promoted twice yet"
            )
            raise PlanError(f"{param}: the alias {name!r} is not set: {hint}")
        return move.version_id
    try:
        return get_version(store, name).version_id
    except VersionNotFound as exc:
        raise PlanError(f"{param}: {exc}") from None
    except ValueError as exc:  # a malformed id
        raise PlanError(f"{param}: {exc}") from None


def base_positions(store: Store, version_id: str) -> int | None:
    """The base model's positions, from its published config.json (no download of weights)."""
    import json

    try:
        doc = json.loads(store.read_bytes(f"{MODELS}/{version_id}/config.json"))
    except Exception:  # a missing or unreadable config: the entrypoint checks again
        return None
    return config_positions(doc) if isinstance(doc, dict) else None


def _flag(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise PlanError(f"{name}: {value!r} must be true or false")
    return value


def _number(params: Mapping[str, Any], name: str, default: Any) -> Any:
    value = params.get(name)
    return default if value is None else value


def plan_training(
    params: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    store: Store,
    settings: Settings | None = None,
) -> TrainingPlan:
    """Resolve a run's Params and triggering events into a :class:`TrainingPlan`."""
    settings = settings or get_settings()
    backend = params.get("backend") or settings.train_backend
    if backend not in BACKENDS:
        raise PlanError(f"backend: {backend!r} is not one of {BACKENDS}")
    mode = params.get("mode") or default_of("mode")
    if mode not in MODES:
        raise PlanError(f"mode: {mode!r} is not one of {MODES}")
    ds_config = params.get("ds_config") or default_of("ds_config")
    if ds_config not in DS_CONFIGS:
        raise PlanError(f"ds_config: {ds_config!r} is not one of {DS_CONFIGS}")
    gpus = _number(params, "gpus", settings.train_gpus)
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 1:
        raise PlanError(f"gpus: {gpus!r} must be an integer >= 1")

    datasets, trigger = resolve_datasets(store, params.get("datasets") or [], events)
    base_version = resolve_version(store, params.get("base_version") or PRODUCTION)
    if trigger == "asset":
        datasets = _with_deferred(store, datasets, base_version, settings.train_min_new_tokens)
    production = read_alias(store, PRODUCTION)
    max_steps = params.get("max_steps")
    seq_len = params.get("seq_len")
    if seq_len is None:
        # The default length, or less for a base model with fewer positions (the embedded
        # tiny models have 64 to 256).
        positions = base_positions(store, base_version)
        seq_len = default_of("seq_len")
        seq_len = min(seq_len, positions) if positions else seq_len
    try:
        config = TrainConfig(
            datasets=tuple(datasets),
            base_version=base_version,
            mode=mode,
            epochs=_number(params, "epochs", settings.train_epochs),
            learning_rate=_number(params, "learning_rate", settings.train_learning_rate),
            replay_ratio=_number(params, "replay_ratio", default_of("replay_ratio")),
            augment=_flag(params, "augment", default_of("augment")),
            train_layers=_number(params, "train_layers", default_of("train_layers")),
            rehearsal=_number(params, "rehearsal", default_of("rehearsal")),
            context_answers=_flag(params, "context_answers", default_of("context_answers")),
            question_variants=_number(params, "question_variants", default_of("question_variants")),
            rivals=_number(params, "rivals", default_of("rivals")),
            appositions=_flag(params, "appositions", default_of("appositions")),
            written_questions=_flag(params, "written_questions", default_of("written_questions")),
            micro_batch_size=_number(params, "micro_batch_size", settings.train_micro_batch),
            max_steps=-1 if max_steps is None else max_steps,
            seq_len=seq_len,
            ds_config=ds_config,
            num_ranks=gpus,
            store_uri=store.root_uri,
            checkpoint_every=int(
                _number(params, "checkpoint_every", default_of("checkpoint_every"))
            ),
        )
    except ConfigError as exc:
        # "TrainConfig.learning_rate = -1: must be ..." names the Param it came from.
        raise PlanError(str(exc).replace("TrainConfig.", "", 1)) from None
    return TrainingPlan(
        config=config,
        backend=backend,
        gpus=gpus,
        base_version=base_version,
        baseline_version=production.version_id if production else None,
        trigger=trigger,
    )
