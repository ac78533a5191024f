"""Every artifact the stages hand each other: where it lives in the store, how it is announced.

Stages never import each other (DESIGN: core ← stages ← DAGs); they talk through artifacts in
the store, and this module is the one place that names them:

* store prefixes and the files of a published dataset;
* the Airflow Assets that announce them (built on first use, so importing this module stays
  cheap and free of Airflow for code that runs outside it: spiders, training ranks);
* readers of the artifacts more than one stage reads: published datasets (and the base
  model's corpus among them) and evaluation reports; and :func:`delete_run`, a training run's
  checkpoints, deleted by training once its version is published and by forgetting;
* :func:`dag_defaults`, the ``default_args`` every FreshLM DAG shares (with the Slack failure
  callback, so every DAG alerts).

A published artifact is a folder with a ``_MANIFEST.json`` written last (see
:mod:`freshlm.store.publish`); readers trust only manifests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freshlm.store import Manifest, Store

# --- store prefixes -----------------------------------------------------------------------------

RAW = "raw"  # raw/<source>/<window>/: one crawl shard per source and window (crawlers)
CURSORS = "cursors"  # cursors/<source>.json: incremental crawl state (crawlers)
CANDIDATES = "candidates"  # candidates/<id>/: a curated batch before the gate (curation)
DEDUP_INDEX = "dedup-index"  # exact and near-duplicate index of everything published (curation)
GATE_REPORTS = "gate-reports"  # gate-reports/<candidate>/<run>/: gate.json + Data Docs (gate)
DATASETS = "datasets"  # datasets/<id>/: a published dataset (curation, base corpus)
QUARANTINED_BATCHES = "quarantine/batches"  # quarantine/batches/<candidate>/ (curation)
TRAINSETS = "trainsets"  # trainsets/<id>/: a packed training set (training)
TRAIN_CONFIGS = "train-configs"  # train-configs/<run>.json: one run's config (training)
TRAIN_DEFERRED = "train-deferred"  # <dataset>.json: too small to train alone (training)
RUNS = "runs"  # runs/<run>/: checkpoints of a training run (training)
MODELS = "models"  # models/<version>/: a model version (registry)
PROBES = "probes"  # probes/<dataset>/: evaluation items of a dataset (evaluation)
REPORTS = "reports"  # reports/<candidate>/<baseline>/: an evaluation report (evaluation)
SCORE_MEMOS = "evaluations/scores"  # <version>/<dtype>-<device>.jsonl.gz: scores (evaluation)
REGISTRY_ALIASES = "registry/aliases"  # production, previous (registry)
REGISTRY_AUDIT = "registry/audit"  # one record per alias move (registry)
REGISTRY_DECISIONS = "registry/decisions"  # promotion decisions (promotion)
DEPLOYMENTS = "serving/deployments"  # serving/deployments/<time>-<version>.json: reloads (serving)
MONITOR_HISTORY = "monitoring/history"  # monitoring/history/<run>.json: one check each (monitoring)
LINEAGE_INDEX = "lineage-index"  # lineage-index/<artifact prefix>.json: what it holds (core)
DENY_LIST = "forget/deny-list.json"  # items forgotten on request; crawls skip them (forget)
FORGET_AUDIT = "audit/forget"  # audit/forget/<request>/<step>.json: every forget request
RETENTION_REPORTS = "retention/reports"  # retention/reports/<run>.json: what expired (retention)

# --- kinds of published artifact (a manifest's ``kind``) --------------------------------------

DATASET_KIND = "dataset"
RAW_SHARD_KIND = "raw-shard"
CANDIDATE_KIND = "candidate-dataset"
QUARANTINED_BATCH_KIND = "quarantined-batch"
TRAINSET_KIND = "trainset"
REPORT_KIND = "eval-report"

# --- the files of a published dataset (datasets/<id>/) and of a candidate ----------------------

TRAIN_FILE = "train.jsonl.gz"  # documents of the train split (freshlm.documents)
HELDOUT_FILE = "heldout.jsonl.gz"  # documents of the held-out split
QUARANTINE_FILE = "quarantine.jsonl.gz"  # candidates only: dropped documents with reasons
STATS_FILE = "stats.json"  # counts per step and reason
REPORT_JSON = "report.json"  # the evaluation report in reports/<…>/
GATE_JSON = "gate.json"  # the gate's verdict in gate-reports/<…>/ (expectations.gate.GateResult)

#: ``role`` in the manifest of the dataset that holds a base model's own pretraining corpus:
#: old text for replay and retention, published beside the base (never crawled).
BASE_CORPUS_ROLE = "base-corpus"


def dataset_prefix(dataset_id: str) -> str:
    return f"{DATASETS}/{dataset_id}"


# --- published datasets ------------------------------------------------------------------------


class ArtifactNotFound(LookupError):
    """No published artifact of the expected kind where one was asked for."""


@dataclasses.dataclass(frozen=True)
class PublishedDataset:
    """A published dataset, as its manifest describes it."""

    manifest: Manifest

    @property
    def dataset_id(self) -> str:
        return str(self.manifest.fields.get("dataset_id") or self.manifest.artifact_id)

    @property
    def prefix(self) -> str:
        return self.manifest.prefix

    @property
    def fields(self) -> Mapping[str, Any]:
        return self.manifest.fields

    @property
    def window(self) -> Mapping[str, str]:
        return self.manifest.fields["window"]

    @property
    def role(self) -> str | None:
        return self.manifest.fields.get("role")

    def documents(self, store: Store, split: str = "train") -> Iterator[dict[str, Any]]:
        """The documents of one split (``train`` or ``heldout``)."""
        files = {"train": TRAIN_FILE, "heldout": HELDOUT_FILE}
        if split not in files:
            raise ValueError(f"split {split!r}: expected one of {sorted(files)}")
        return store.read_jsonl(self.manifest.key(files[split]))


def read_published_dataset(store: Store, dataset_id: str) -> PublishedDataset:
    """The published dataset ``datasets/<dataset_id>``; :class:`ArtifactNotFound` naming its
    URI when nothing complete is published there."""
    prefix = dataset_prefix(dataset_id)
    manifest = store.read_manifest(prefix)
    if manifest is None or manifest.kind != DATASET_KIND:
        raise ArtifactNotFound(f"{store.uri_for(prefix)}: no published dataset {dataset_id!r}")
    return PublishedDataset(manifest)


def published_datasets(store: Store) -> list[PublishedDataset]:
    """Every published dataset, oldest crawl window first."""
    found = []
    for prefix in store.list_published(DATASETS + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is not None and manifest.kind == DATASET_KIND:
            found.append(PublishedDataset(manifest))
    return sorted(found, key=lambda d: (d.window["start"], d.manifest.artifact_id))


def base_corpus(
    store: Store, datasets: list[PublishedDataset] | None = None
) -> PublishedDataset | None:
    """The newest published base-model corpus (``role: base-corpus``), or None when the base
    came without one (an external model): then no text is known to be the base's own.
    ``datasets``: :func:`published_datasets` when the caller has already listed them."""
    if datasets is None:
        datasets = published_datasets(store)
    corpora = [d for d in datasets if d.role == BASE_CORPUS_ROLE]
    return corpora[-1] if corpora else None


# --- gate reports ------------------------------------------------------------------------------


def read_gate_report(store: Store, report_uri: str) -> dict[str, Any]:
    """The gate's verdict (``gate.json``) of the gate report at a store URI or prefix: the
    severity, whether the batch passed (or was accepted: ``override``), the failures with
    observed vs expected, the statistics, and the Data Docs index."""
    prefix = store.prefix_for(report_uri)
    manifest = store.read_manifest(prefix)
    if manifest is None:
        raise ArtifactNotFound(f"{store.uri_for(prefix)}: no published gate report")
    return store.read_json(manifest.key(GATE_JSON))


# --- evaluation reports ------------------------------------------------------------------------


def report_prefix(candidate_version: str, baseline_version: str) -> str:
    """``reports/<candidate>/vs-<baseline>``: where the report of this pair is published."""
    from freshlm.registry.versions import check_version_id

    return (
        f"{REPORTS}/{check_version_id(candidate_version)}/vs-{check_version_id(baseline_version)}"
    )


def read_manifest_of_kind(store: Store, prefix: str, kind: str) -> Manifest | None:
    """The manifest published at ``prefix``, or None if there is none; :class:`ArtifactNotFound`
    naming both kinds when an artifact of another kind is published there."""
    manifest = store.read_manifest(prefix)
    if manifest is not None and manifest.kind != kind:
        raise ArtifactNotFound(
            f"{store.uri_for(prefix)}: artifact of kind {manifest.kind!r}, not {kind!r}"
        )
    return manifest


def read_report(store: Store, candidate_version: str, baseline_version: str) -> dict | None:
    """The published evaluation report of this pair (``report.json``), or None if there is
    none; :class:`ArtifactNotFound` when something other than a report is published there."""
    manifest = read_manifest_of_kind(
        store, report_prefix(candidate_version, baseline_version), REPORT_KIND
    )
    return None if manifest is None else store.read_json(manifest.key(REPORT_JSON))


# --- training runs -----------------------------------------------------------------------------


def delete_run(store: Store, run_key: str) -> tuple[int, int]:
    """Delete everything under ``runs/<run_key>/``: its published checkpoints and any upload a
    killed rank left half-written. Returns (published checkpoints deleted, their bytes).

    A run's checkpoints serve only to resume it: once its version is published an identical
    rerun stops before training, so training deletes them then (each holds the optimizer's
    state, several times the model's size); forgetting a version deletes its run's too."""
    deleted = size = 0
    for prefix in store.list_published(f"{RUNS}/{run_key}/"):
        manifest = store.read_manifest(prefix)
        size += manifest.total_size if manifest is not None else 0
        store.delete_artifact(prefix)
        deleted += 1
    for key in store.list(f"{RUNS}/{run_key}/"):
        store.delete(key)
    return deleted, size


# --- Airflow Assets ----------------------------------------------------------------------------

#: Python name -> (Asset name, Asset URI). Announced by one DAG, scheduled on by the next.
ASSETS: dict[str, tuple[str, str]] = {
    "CRAWL_BATCH_ASSET": ("freshlm-raw-batch", "freshlm://raw/batch"),
    "DATASETS_ASSET": ("freshlm-datasets", "freshlm://datasets"),
    "CANDIDATE_MODELS_ASSET": ("freshlm-candidate-models", "freshlm://models/candidates"),
    "PRODUCTION_ASSET": ("freshlm-production-model", "freshlm://models/production"),
}


def raw_source_asset(source: str) -> Any:
    """The Asset ``freshlm://raw/<source>`` one source's crawl task announces."""
    from airflow.sdk import Asset

    return Asset(name=f"freshlm-raw-{source}", uri=f"freshlm://raw/{source}")


def __getattr__(name: str) -> Any:
    # The Assets are built on first use: airflow.sdk is imported only by code that needs them.
    if name in ASSETS:
        from airflow.sdk import Asset

        asset_name, uri = ASSETS[name]
        asset = Asset(name=asset_name, uri=uri)
        globals()[name] = asset
        return asset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- DAG defaults ------------------------------------------------------------------------------


def dag_defaults(
    *,
    retries: int = 1,
    retry_delay: timedelta | None = None,
    execution_timeout: timedelta = timedelta(hours=6),
    **overrides: Any,
) -> dict[str, Any]:
    """``default_args`` of every FreshLM DAG: owner, retries, an ``execution_timeout`` (no task
    hangs forever: Airflow fails it, and the task's own cleanup kills its child processes), and
    the Slack alert on a task's final failure (set per task: Airflow 3 runs task-level failure
    callbacks reliably). ``retry_delay`` defaults to ``FRESHLM_TASK_RETRY_DELAY_S``."""
    from freshlm.alerts.callbacks import on_task_failure

    if retry_delay is None:
        from freshlm.settings import get_settings

        retry_delay = timedelta(seconds=get_settings().task_retry_delay_s)
    return {
        "owner": "freshlm",
        "retries": retries,
        "retry_delay": retry_delay,
        "execution_timeout": execution_timeout,
        "on_failure_callback": on_task_failure,
        **overrides,
    }
