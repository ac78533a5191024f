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

``freshlm_train`` builds its objects at run time instead (the GPU count and config are only
known once the run is planned): :func:`training.backends.stage_kubernetes_run` returns them as
dicts in XCom, and the DAG hands them over as templates that render to those dicts. The pod goes
to ``KubernetesPodOperator``'s ``pod_template_dict``; the Job, which the provider's operator only
takes as a model object or a file, goes to :class:`StagedJobOperator`.
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
from kubernetes.client import ApiClient, V1Job

from freshlm.settings import Settings, get_settings
from training import k8s_specs

# Pulling a multi-GB CUDA image onto a node that the autoscaler is still adding takes minutes.
DEFAULT_STARTUP_TIMEOUT_S = 1800
# How often the triggerer asks the API server about a training Job; runs last hours.
JOB_POLL_INTERVAL_S = 10.0


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
        # The operator sets its own policy on the container it merges over the spec's.
        "termination_message_policy": k8s_specs.TERMINATION_MESSAGE_POLICY,
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
    kwargs: dict[str, Any] = {
        "startup_timeout_seconds": DEFAULT_STARTUP_TIMEOUT_S,
        # The operator sets its own policy on the container it merges over the spec's.
        "termination_message_policy": k8s_specs.TERMINATION_MESSAGE_POLICY,
        "wait_until_job_complete": True,
        "get_logs": True,
        **operator_kwargs,
    }
    return KubernetesJobOperator(task_id=task_id, **job_operator_fields(job), **kwargs)


def job_operator_fields(job: V1Job) -> dict[str, Any]:
    """The ``KubernetesJobOperator`` arguments that carry ``job`` whole.

    The operator builds its Job from its own fields and merges ``full_job_spec`` under them, and
    its ``parallelism`` defaults to 1: every field that the Job sets is passed explicitly.
    """
    container = job.spec.template.spec.containers[0]
    return {
        "name": job.metadata.name,
        "namespace": job.metadata.namespace,
        "image": container.image,
        "cmds": list(container.command),
        "arguments": list(container.args),
        "base_container_name": container.name,
        "full_job_spec": job,
        "completion_mode": job.spec.completion_mode,
        "completions": job.spec.completions,
        "parallelism": job.spec.parallelism,
        "backoff_limit": job.spec.backoff_limit,
        "ttl_seconds_after_finished": job.spec.ttl_seconds_after_finished,
    }


class StagedJobOperator(KubernetesJobOperator):
    """``KubernetesJobOperator`` whose Job comes whole as a dict rendered at run time.

    ``job_manifest`` is a template field (with the DAG's ``render_template_as_native_obj``, an
    XCom pull renders to the dict :func:`training.k8s_specs.serialize` made); the Job it holds
    replaces the operator's own fields when the task runs. By default the task waits for the Job
    to finish, deferred to the triggerer, and fails if the Job fails.
    """

    template_fields = (*KubernetesJobOperator.template_fields, "job_manifest")

    def __init__(self, *, job_manifest: Any, **kwargs: Any) -> None:
        kwargs = {
            "startup_timeout_seconds": DEFAULT_STARTUP_TIMEOUT_S,
            # The operator sets its own policy on the container it merges over the spec's.
            "termination_message_policy": k8s_specs.TERMINATION_MESSAGE_POLICY,
            "wait_until_job_complete": True,
            "get_logs": True,
            **kwargs,
        }
        super().__init__(**kwargs)
        self.job_manifest = job_manifest

    def execute(self, context: Any) -> Any:
        if not isinstance(self.job_manifest, Mapping):
            raise TypeError(
                f"job_manifest rendered to {type(self.job_manifest).__name__}, not the Job as a"
                " dict; render templates as native objects"
            )
        job = ApiClient()._ApiClient__deserialize(dict(self.job_manifest), "V1Job")
        for field, value in job_operator_fields(job).items():
            setattr(self, field, value)
        return super().execute(context)


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


# --- the operators of freshlm_train: objects rendered at run time --------------------------------


def staged_train_pod_operator(
    *, task_id: str, pod_manifest: str, **operator_kwargs: Any
) -> KubernetesPodOperator:
    """The one-node run: the pod that ``pod_manifest`` renders to (a dict), deferred while it
    runs; the pod is deleted when it succeeds and kept for inspection when it fails (a retry
    starts a new pod: the provider labels the failed one as checked)."""
    kwargs: dict[str, Any] = {
        "base_container_name": k8s_specs.CONTAINER_NAME,
        "startup_timeout_seconds": DEFAULT_STARTUP_TIMEOUT_S,
        # The operator sets its own policy on the container it merges over the spec's.
        "termination_message_policy": k8s_specs.TERMINATION_MESSAGE_POLICY,
        "get_logs": True,
        "on_finish_action": "delete_succeeded_pod",
        # A failed pod's phase, reason (Evicted, DeadlineExceeded), container states and events
        # go into the task log.
        "log_events_on_failure": True,
        "deferrable": True,
        **operator_kwargs,
    }
    return KubernetesPodOperator(task_id=task_id, pod_template_dict=pod_manifest, **kwargs)


def staged_train_job_operator(
    *, task_id: str, job_manifest: str, **operator_kwargs: Any
) -> StagedJobOperator:
    """The multi-node run: the indexed Job that ``job_manifest`` renders to, waited for
    deferred; the task fails when the Job does."""
    kwargs: dict[str, Any] = {
        "base_container_name": k8s_specs.CONTAINER_NAME,
        "deferrable": True,
        "job_poll_interval": JOB_POLL_INTERVAL_S,
        **operator_kwargs,
    }
    return StagedJobOperator(task_id=task_id, job_manifest=job_manifest, **kwargs)


def staged_rank_service_operators(
    *,
    create_task_id: str,
    delete_task_id: str,
    service_yaml: str,
    namespace: str,
    **operator_kwargs: Any,
) -> tuple[KubernetesCreateResourceOperator, KubernetesDeleteResourceOperator]:
    """Create and delete the headless Service that ``service_yaml`` renders to.

    The delete is the create's teardown: it runs once the tasks between them are done, whatever
    their outcome, and is skipped when the create was."""
    create = KubernetesCreateResourceOperator(
        task_id=create_task_id, yaml_conf=service_yaml, namespace=namespace, **operator_kwargs
    )
    delete = KubernetesDeleteResourceOperator(
        task_id=delete_task_id, yaml_conf=service_yaml, namespace=namespace, **operator_kwargs
    )
    return create, delete.as_teardown(setups=create)
