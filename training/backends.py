"""The two launch backends of ``freshlm_train`` and the candidate they announce.

One code path (DESIGN invariant 6): both backends run ``training/train.py`` under the
``deepspeed`` launcher with the plan's :class:`~training.config.TrainConfig`; only where the
ranks run differs.

* ``local`` — :func:`train_locally`: the launcher as a subprocess of the Airflow task
  (:mod:`training.launch_local`); the failing rank's own error fails the task.
* ``kubernetes`` — :func:`stage_kubernetes_run` resolves the inputs on the worker (base model,
  training set, the deterministic version id), writes the config into the store where the pod
  reads it, and builds the pod (:func:`training.k8s_specs.train_pod`, with the run's GPU count);
  the DAG's ``KubernetesPodOperator`` runs it unless :func:`training_pod_needed` finds the
  version already in the store (a retried or re-triggered run that already finished: a GPU pod
  would start only to find it published); :func:`kubernetes_result` then reads the version.

:func:`candidate_event` is the extra of the ``freshlm://models/candidates`` Asset event that
schedules ``freshlm_evaluate``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from freshlm.artifacts import TRAIN_CONFIGS
from freshlm.settings import Settings, get_settings
from freshlm.store import Store, open_store
from training.plan import TrainingPlan

log = logging.getLogger("freshlm.training")


class KubernetesRunMissing(RuntimeError):
    """The training pod finished but its model version is not in the store."""


def train_locally(plan: TrainingPlan) -> dict[str, Any]:
    """Run the plan with the ``local`` backend; the published version's summary."""
    from training.launch_local import run_local_training

    log.info(
        "training %s from base %s on datasets %s with %d local rank(s)",
        plan.config.mode,
        plan.base_version,
        ", ".join(plan.config.datasets),
        plan.gpus,
    )
    return run_local_training(plan.config)


def stage_kubernetes_run(
    plan: TrainingPlan, *, run_name: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Prepare a ``kubernetes`` run: ``{config_uri, version_id, prefix, pod, already_published}``.

    ``pod`` is the pod manifest as a dict (the operator's ``pod_template_dict``). If the version
    is already published, the DAG skips the pod and announces that version.
    """
    from training import k8s_specs
    from training.train import prepare

    settings = settings or get_settings()
    prepared = prepare(plan.config)
    ident = prepared.identity
    store = open_store(plan.config.store_uri)
    key = f"{TRAIN_CONFIGS}/{ident.run_key}.json"
    store.write_bytes(key, json.dumps(prepared.config.to_dict(), indent=2, sort_keys=True).encode())
    config_uri = store.uri_for(key)
    pod = k8s_specs.train_pod(name=run_name, gpus=plan.gpus, config=config_uri, settings=settings)
    log.info(
        "staged Kubernetes run %s: %d GPU(s), config %s, version %s%s",
        ident.run_key,
        plan.gpus,
        config_uri,
        ident.version_id,
        " (already published: no pod)" if prepared.published else "",
    )
    return {
        "config_uri": config_uri,
        "version_id": ident.version_id,
        "prefix": ident.model_prefix,
        "run_key": ident.run_key,
        "trainset_id": prepared.trainset.trainset_id,
        "already_published": prepared.published,
        "pod": k8s_specs.serialize(pod),
    }


def training_pod_needed(store: Store, staged: Mapping[str, Any]) -> bool:
    """Whether the staged run still needs its GPU pod: no when its model version is published.

    The store is read again rather than trusting ``staged["already_published"]``: a pod of an
    earlier try may have published the version after staging.
    """
    if store.read_manifest(staged["prefix"]) is not None:
        log.info(
            "models/%s is already published in %s: no training pod is started",
            staged["version_id"],
            store.root_uri,
        )
        return False
    return True


def kubernetes_result(store: Store, staged: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of the version a training pod published (as :func:`train_locally` returns)."""
    manifest = store.read_manifest(staged["prefix"])
    if manifest is None:
        raise KubernetesRunMissing(
            f"the training pod finished but models/{staged['version_id']} is not published in "
            f"{store.root_uri}; see the pod's log in the train_on_kubernetes task"
        )
    fields = manifest.fields
    return {
        "version_id": staged["version_id"],
        "prefix": staged["prefix"],
        "uri": store.uri_for(staged["prefix"]),
        "run_key": staged["run_key"],
        "trainset_id": staged["trainset_id"],
        "already_published": bool(staged["already_published"]),
        "metrics": dict(fields.get("metrics") or {}),
        "lineage": dict(fields.get("lineage") or {}),
    }


def candidate_event(plan: TrainingPlan, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The ``freshlm://models/candidates`` event extra: which version, trained on what, and the
    production version it must be compared with."""
    metrics = summary.get("metrics") or {}
    return {
        "version_id": summary["version_id"],
        "uri": summary["uri"],
        "baseline_version": plan.baseline_version,
        "base_version": plan.base_version,
        "dataset_ids": list(plan.config.datasets),
        "trainset_id": summary.get("trainset_id"),
        "backend": plan.backend,
        "mode": plan.config.mode,
        "already_published": bool(summary.get("already_published")),
        "train_loss": metrics.get("train_loss"),
        "train_runtime_s": metrics.get("train_runtime_s"),
    }
