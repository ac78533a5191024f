"""Airflow operators of the ``kubernetes`` training backend, built from :mod:`training.k8s_specs`.

The DAG calls these factories; each returns a configured operator from
apache-airflow-providers-cncf-kubernetes and touches no cluster until the task runs.

* :func:`train_pod_operator` — ``KubernetesPodOperator`` running one pod with N GPUs.
* :func:`train_job_operator` — ``KubernetesJobOperator`` running the indexed multi-node Job;
  wrap it between :func:`rank_service_create_operator` and :func:`rank_service_delete_operator`
  (same ``name``; the delete with ``trigger_rule="all_done"``), since the pods find rank 0
  through that headless Service.

The spec goes in whole as ``full_pod_spec`` / ``full_job_spec``; image, ``cmds`` and
``arguments`` are also passed as operator fields so the UI's rendered-template view shows the
exact command. They are lists handed to the container as its ``command``/``args``: no shell ever
parses them. ``train_args`` may hold Jinja such as ``"{{ params.dataset_id }}"`` (``arguments``
is a template field, rendered into one argument each); Kubernetes still expands ``$(VAR)`` in
rendered values, so the DAG's ``Param`` schemas must restrict those values (no ``$``).

Any other keyword (``task_id``, ``kubernetes_conn_id``, ``retries``, ``deferrable``, ...) is
passed to the operator unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from airflow.providers.cncf.kubernetes.operators.job import KubernetesJobOperator
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.operators.resource import (
    KubernetesCreateResourceOperator,
    KubernetesDeleteResourceOperator,
)

from freshlm.settings import Settings, get_settings
from training import k8s_specs

# Pulling a multi-GB CUDA image onto a node that the autoscaler is still adding takes minutes.
DEFAULT_STARTUP_TIMEOUT_S = 1800


def train_pod_operator(
    *,
    task_id: str,
    name: str,
    gpus: int,
    config: str,
    train_args: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    **operator_kwargs: Any,
) -> KubernetesPodOperator:
    """One GPU pod: ``deepspeed --num_gpus gpus training/train.py --config config ...``.

    The pod name is ``name`` plus a random suffix; a failed pod is kept for inspection.
    """
    settings = settings or get_settings()
    pod = k8s_specs.train_pod(
        name=name,
        gpus=gpus,
        config=config,
        train_args=train_args,
        labels=labels,
        settings=settings,
    )
    container = pod.spec.containers[0]
    kwargs: dict[str, Any] = {
        "startup_timeout_seconds": DEFAULT_STARTUP_TIMEOUT_S,
        "on_finish_action": "delete_succeeded_pod",
        "get_logs": True,
        **operator_kwargs,
    }
    return KubernetesPodOperator(
        task_id=task_id,
        name=pod.metadata.name,
        namespace=pod.metadata.namespace,
        image=container.image,
        cmds=list(container.command),
        arguments=list(container.args),
        base_container_name=container.name,
        full_pod_spec=pod,
        **kwargs,
    )


def train_job_operator(
    *,
    task_id: str,
    name: str,
    nodes: int,
    gpus_per_node: int,
    config: str,
    train_args: Sequence[str] = (),
    backoff_limit: int = 0,
    ttl_seconds_after_finished: int = 86400,
    labels: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    **operator_kwargs: Any,
) -> KubernetesJobOperator:
    """The indexed Job: ``nodes`` pods, ranks wired through the headless Service ``name``.

    The operator names the Job ``job-<name>-<random>`` (a retry never collides with the Job of
    the failed try); the pods learn that name through the downward API, so the master address
    follows it. It waits for the Job to finish and fails the task if the Job fails.
    """
    settings = settings or get_settings()
    job = k8s_specs.train_job(
        name=name,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        config=config,
        train_args=train_args,
        backoff_limit=backoff_limit,
        ttl_seconds_after_finished=ttl_seconds_after_finished,
        labels=labels,
        settings=settings,
    )
    container = job.spec.template.spec.containers[0]
    kwargs: dict[str, Any] = {
        "startup_timeout_seconds": DEFAULT_STARTUP_TIMEOUT_S,
        "wait_until_job_complete": True,
        "get_logs": True,
        **operator_kwargs,
    }
    return KubernetesJobOperator(
        task_id=task_id,
        name=job.metadata.name,
        namespace=job.metadata.namespace,
        image=container.image,
        cmds=list(container.command),
        arguments=list(container.args),
        base_container_name=container.name,
        full_job_spec=job,
        completion_mode=job.spec.completion_mode,
        completions=job.spec.completions,
        parallelism=job.spec.parallelism,
        backoff_limit=job.spec.backoff_limit,
        ttl_seconds_after_finished=job.spec.ttl_seconds_after_finished,
        **kwargs,
    )


def _service_yaml(name: str, settings: Settings | None) -> tuple[str, str]:
    service = k8s_specs.rank_service(name=name, settings=settings or get_settings())
    return yaml.safe_dump(k8s_specs.serialize(service), sort_keys=False), service.metadata.namespace


def rank_service_create_operator(
    *, task_id: str, name: str, settings: Settings | None = None, **operator_kwargs: Any
) -> KubernetesCreateResourceOperator:
    """Creates the headless Service of the Job ``name``; run it before the Job."""
    conf, namespace = _service_yaml(name, settings)
    return KubernetesCreateResourceOperator(
        task_id=task_id, yaml_conf=conf, namespace=namespace, **operator_kwargs
    )


def rank_service_delete_operator(
    *, task_id: str, name: str, settings: Settings | None = None, **operator_kwargs: Any
) -> KubernetesDeleteResourceOperator:
    """Deletes the headless Service; give it ``trigger_rule="all_done"`` so it always runs."""
    conf, namespace = _service_yaml(name, settings)
    return KubernetesDeleteResourceOperator(
        task_id=task_id, yaml_conf=conf, namespace=namespace, **operator_kwargs
    )
