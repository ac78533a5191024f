"""The two launch backends of ``freshlm_train`` and the candidate they announce.

One code path (DESIGN invariant 6): both backends run ``training/train.py`` under the
``deepspeed`` launcher with the plan's :class:`~training.config.TrainConfig`; only where the
ranks run differs.

* ``local`` — :func:`train_locally`: the launcher as a subprocess of the Airflow task
  (:mod:`training.launch_local`); the failing rank's own error fails the task.
* ``kubernetes`` — :func:`stage_kubernetes_run` resolves the inputs on the worker (base model,
  training set, the deterministic version id), writes the config into the store where the pods
  read it, and builds what the cluster runs, for the run's shape (:func:`kubernetes_shape`:
  ``nodes`` × ``gpus_per_node``): one node is one pod (:func:`training.k8s_specs.train_pod`),
  more nodes are an indexed Job and its headless Service (:func:`training.k8s_specs.train_job`,
  :func:`training.k8s_specs.rank_service`). The DAG runs them unless
  :func:`training_pod_needed` finds the version already in the store (a retried or re-triggered
  run that already finished: GPU pods would start only to find it published);
  :func:`kubernetes_result` then reads the version. A retried pod or Job runs the same config,
  so the entrypoint resumes from the run's last checkpoint in the store.

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
from training.plan import PlanError, TrainingPlan

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


def kubernetes_shape(params: Mapping[str, Any], gpus: int) -> dict[str, int]:
    """``{nodes, gpus_per_node}`` of a ``kubernetes`` run from its Params.

    ``nodes`` defaults to 1; ``gpus_per_node`` to ``gpus`` (the run's ``gpus`` Param), so a
    one-node run is the pod with ``gpus`` GPUs. Both must be integers >= 1; a
    :class:`~training.plan.PlanError` names the Param otherwise. The run's world size (the
    config's ``num_ranks``, part of the global batch) is their product.
    """
    shape = {}
    for name, default in (("nodes", 1), ("gpus_per_node", gpus)):
        value = params.get(name)
        value = default if value is None else value
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PlanError(f"{name}: {value!r} must be an integer >= 1")
        shape[name] = value
    return shape


def rank_group_name(run_name: str, run_key: str) -> str:
    """The multi-node run's Job and Service name: ``run_name`` and a digest of the run key.

    One name per run key: a retry finds its own Service, and two runs never share one."""
    import hashlib

    return f"{run_name}-{hashlib.sha256(run_key.encode()).hexdigest()[:8]}"


def stage_kubernetes_run(
    plan: TrainingPlan,
    *,
    run_name: str,
    nodes: int | None = None,
    gpus_per_node: int | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Prepare a ``kubernetes`` run of ``nodes`` × ``gpus_per_node`` GPUs (None: one node with
    ``plan.gpus``), checked by :func:`kubernetes_shape`.

    Returns ``{config_uri, version_id, prefix, run_key, trainset_id, already_published, nodes,
    gpus_per_node, world_size, pod, job, service_yaml}``: ``pod`` (one node) or ``job`` and
    ``service_yaml`` (several nodes) are what the DAG's operators send to the cluster, the
    others ``None``. If the version is already published, the DAG starts neither and announces
    that version.
    """
    import yaml

    from training import k8s_specs
    from training.train import prepare

    settings = settings or get_settings()
    shape = kubernetes_shape({"nodes": nodes, "gpus_per_node": gpus_per_node}, plan.gpus)
    nodes, gpus_per_node = shape["nodes"], shape["gpus_per_node"]
    world_size = nodes * gpus_per_node
    # The global batch counts every rank: the config says how many there are.
    config = plan.config
    if config.num_ranks != world_size:
        config = config.replace(num_ranks=world_size)
    prepared = prepare(config)
    ident = prepared.identity
    store = open_store(config.store_uri)
    key = f"{TRAIN_CONFIGS}/{ident.run_key}.json"
    store.write_bytes(key, json.dumps(prepared.config.to_dict(), indent=2, sort_keys=True).encode())
    config_uri = store.uri_for(key)
    pod = job = service_yaml = None
    if nodes == 1:
        pod = k8s_specs.serialize(
            k8s_specs.train_pod(
                name=run_name, gpus=gpus_per_node, config=config_uri, settings=settings
            )
        )
    else:
        name = rank_group_name(run_name, ident.run_key)
        job = k8s_specs.serialize(
            k8s_specs.train_job(
                name=name,
                nodes=nodes,
                gpus_per_node=gpus_per_node,
                config=config_uri,
                settings=settings,
            )
        )
        service = k8s_specs.serialize(k8s_specs.rank_service(name=name, settings=settings))
        service_yaml = yaml.safe_dump(service, sort_keys=False)
    log.info(
        "staged Kubernetes run %s: %d node(s) x %d GPU(s), config %s, version %s%s",
        ident.run_key,
        nodes,
        gpus_per_node,
        config_uri,
        ident.version_id,
        " (already published: nothing to start)" if prepared.published else "",
    )
    return {
        "config_uri": config_uri,
        "version_id": ident.version_id,
        "prefix": ident.model_prefix,
        "run_key": ident.run_key,
        "trainset_id": prepared.trainset.trainset_id,
        "already_published": prepared.published,
        "nodes": nodes,
        "gpus_per_node": gpus_per_node,
        "world_size": world_size,
        "pod": pod,
        "job": job,
        "service_yaml": service_yaml,
    }


def training_pod_needed(store: Store, staged: Mapping[str, Any]) -> bool:
    """Whether the staged run still needs its GPU pod(s): no when its model version is published.

    The store is read again rather than trusting ``staged["already_published"]``: a pod of an
    earlier try may have published the version after staging.
    """
    if store.read_manifest(staged["prefix"]) is not None:
        log.info(
            "models/%s is already published in %s: no training pod or Job is started",
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
            f"{store.root_uri}; see the pod's log in the train_on_kubernetes (one node) or "
            "train_job_on_kubernetes (several nodes) task"
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
