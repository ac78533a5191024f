"""Kubernetes objects of the ``kubernetes`` training backend: GPU pods, an indexed Job, its Service.

Pure functions: settings and arguments in, ``kubernetes.client`` model objects out; nothing here
talks to a cluster, so the specs are built and checked offline (the tests validate them against
the Kubernetes OpenAPI schema). :mod:`training.k8s_operators` wraps them in Airflow operators.

Two shapes, one entrypoint (``training/train.py`` under the ``deepspeed`` launcher):

* :func:`train_pod` — one pod with ``gpus`` GPUs::

      deepspeed --num_gpus N training/train.py --config CONFIG [TRAIN_ARGS...]

* :func:`train_job` + :func:`rank_service` — ``nodes`` pods of an indexed Job
  (``completionMode: Indexed``, completions = parallelism = nodes), found by each other through a
  headless Service that is also the pods' ``subdomain``; pod *i* has the hostname
  ``<job>-<i>``, so rank 0 is ``<job>-0.<service>``. Each pod runs::

      deepspeed --hostfile H --no_ssh --num_nodes M --num_gpus N
                --node_rank=$(JOB_COMPLETION_INDEX) --master_addr=$(TRAIN_JOB_NAME)-0.<service>
                --master_port=29500 training/train.py --config CONFIG [TRAIN_ARGS...]

  Kubernetes itself expands ``$(VAR)`` from the container's env (no shell anywhere):
  ``JOB_COMPLETION_INDEX`` is the pod's completion index and ``TRAIN_JOB_NAME`` the Job's final
  name, both read through the downward API. The Job's name is read at run time rather than
  written into the args because the Airflow operator prefixes and suffixes it. The launcher
  needs a hostfile listing the ``nodes`` hosts even with ``--no_ssh`` (it only counts the slots;
  addresses come from ``--master_addr``), so the pod template carries it as an annotation that a
  downward-API volume turns into the file.

Every pod: ``nvidia.com/gpu`` (``FRESHLM_K8S_GPU_RESOURCE``) limits, node selector and
tolerations from settings, a memory-backed ``/dev/shm`` (NCCL and the data loaders need more than
the runtime's 64 MiB), a scratch ``emptyDir`` for ``FRESHLM_HOME``, the service account, store
credentials only as ``secretKeyRef`` to ``FRESHLM_K8S_STORE_SECRET``, ``restartPolicy: Never``,
and an ``activeDeadlineSeconds`` (pods and the Job) so a run Airflow lost track of still ends.

Every pod also meets the Pod Security Standard "restricted" (the namespace may enforce it):
non-root, no privilege escalation, ``capabilities.drop: [ALL]``, ``seccompProfile:
RuntimeDefault``, plus a read-only root filesystem and no service-account token (training never
calls the Kubernetes API). Everything the run writes goes to the scratch ``emptyDir`` (bounded
by ``FRESHLM_K8S_SCRATCH_SIZE``, also the pod's ephemeral-storage request): ``/scratch`` holds
the store cache, DeepSpeed's op builds, the Triton and CUDA caches and ``HOME``, and ``/tmp`` is a
sub-folder of it.
Literal strings that land in ``args`` or ``env`` have ``$`` doubled so Kubernetes never expands
a ``$(VAR)`` that a value happens to contain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from kubernetes.client import (
    ApiClient,
    V1Capabilities,
    V1Container,
    V1DownwardAPIVolumeFile,
    V1DownwardAPIVolumeSource,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1Job,
    V1JobSpec,
    V1ObjectFieldSelector,
    V1ObjectMeta,
    V1Pod,
    V1PodSecurityContext,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretKeySelector,
    V1SecurityContext,
    V1Service,
    V1ServicePort,
    V1ServiceSpec,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)

from freshlm.settings import Settings, get_settings

CONTAINER_NAME = "train"
# The training image's WORKDIR: the repository root, so the entrypoint path is the repo's.
IMAGE_WORKDIR = "/opt/freshlm"
ENTRYPOINT = "training/train.py"
LAUNCHER = "deepspeed"
MASTER_PORT = 29500
SHM_PATH = "/dev/shm"
SCRATCH_PATH = "/scratch"
TMP_PATH = "/tmp"
HOSTFILE_DIR = "/etc/freshlm/deepspeed"
HOSTFILE_PATH = f"{HOSTFILE_DIR}/hostfile"
RUN_AS_UID = 1000  # the image's non-root user
# A failed container's last log lines become its termination message, which Airflow puts in the
# task's error: the rank's own exception, not only "returned a failure".
TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"
# The pod's own deadline: freshlm_train's execution_timeout, so a pod whose Airflow task is gone
# (worker lost) is still stopped by Kubernetes.
DEFAULT_ACTIVE_DEADLINE_S = 24 * 3600
# Where the tools training runs write when the root filesystem is read-only: all on scratch.
WRITABLE_ENV = {
    "HOME": f"{SCRATCH_PATH}/home",
    "TMPDIR": TMP_PATH,
    "XDG_CACHE_HOME": f"{SCRATCH_PATH}/cache",
    "TORCH_EXTENSIONS_DIR": f"{SCRATCH_PATH}/torch_extensions",  # DeepSpeed's JIT op builds
    "TRITON_CACHE_DIR": f"{SCRATCH_PATH}/triton",
    "CUDA_CACHE_PATH": f"{SCRATCH_PATH}/cuda-cache",
    "MPLCONFIGDIR": f"{SCRATCH_PATH}/matplotlib",
}

HOSTFILE_ANNOTATION = "freshlm.io/deepspeed-hostfile"
RANK_GROUP_LABEL = "freshlm.io/rank-group"
APP_LABELS = {"app.kubernetes.io/name": "freshlm", "app.kubernetes.io/component": "train"}
# Set by the Job controller on every pod of a Job (Kubernetes 1.27+) and of an indexed Job.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
JOB_NAME_ENV = "TRAIN_JOB_NAME"

# The Airflow job operator turns NAME into job-NAME-<8 random>; the pods' hostnames
# (<job>-<index>) must stay DNS labels of at most 63 characters.
MAX_NAME_LENGTH = 40
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_STORE_SECRET_KEYS = (  # (env name, required): the key in the Secret is the env name
    ("AWS_ACCESS_KEY_ID", True),
    ("AWS_SECRET_ACCESS_KEY", True),
    ("AWS_SESSION_TOKEN", False),
)


class K8sSpecError(ValueError):
    """The requested training spec cannot work; the message says which input and why."""


# --- small helpers ------------------------------------------------------------------------------


def literal(value: str) -> str:
    """``value`` escaped for ``args`` and ``env``, where Kubernetes expands ``$(VAR)``."""
    return value.replace("$", "$$")


_QUANTITY_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)([eE][-+]?\d+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{s + "i": Decimal(1024) ** (i + 1) for i, s in enumerate("KMGTPE")},
}


def quantity(value: str) -> Decimal:
    """The number a Kubernetes quantity stands for (``16Gi`` → 17179869184)."""
    match = _QUANTITY_RE.match(value.strip())
    if not match:
        raise K8sSpecError(f"{value!r} is not a Kubernetes quantity such as 8, 500m or 64Gi")
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix[:1] in {"e", "E"}:
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIX[suffix]


def serialize(obj: Any) -> Any:
    """The object as the JSON the API server receives (camelCase keys, no ``None`` fields)."""
    return ApiClient().sanitize_for_serialization(obj)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not _NAME_RE.match(name):
        raise K8sSpecError(
            f"name={name!r} is invalid: expected lower-case letters, digits and '-', starting with"
            f" a letter, at most {MAX_NAME_LENGTH} characters"
        )
    return name


def _check_count(what: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise K8sSpecError(f"{what}={value!r} is invalid: expected a positive integer")
    return value


def _check_args(config: str, train_args: Sequence[str]) -> list[str]:
    if not isinstance(config, str) or not config.strip() or any(c in config for c in "\0\n\r"):
        raise K8sSpecError(f"config={config!r} is invalid: expected a path or URI on one line")
    if isinstance(train_args, str | bytes) or not all(isinstance(a, str) for a in train_args):
        raise K8sSpecError(
            f"train_args={train_args!r} is invalid: expected a list of strings, one per argument"
        )
    if any("\0" in a for a in train_args):
        raise K8sSpecError("train_args is invalid: an argument contains a NUL character")
    return [ENTRYPOINT, "--config", literal(config), *(literal(a) for a in train_args)]


def _check_store(settings: Settings) -> None:
    if not settings.store_uri.startswith("s3://"):
        raise K8sSpecError(
            f"FRESHLM_STORE_URI={settings.store_uri!r} is a local folder that training pods"
            " cannot see: the kubernetes backend needs an s3://bucket[/prefix] store"
        )


def _check_deadline(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise K8sSpecError(
            f"active_deadline_seconds={value!r} is invalid: expected a positive integer of seconds"
        )
    return value


def _check_shm(settings: Settings) -> None:
    shm, memory = quantity(settings.k8s_shm_size), quantity(settings.k8s_memory_request)
    if shm >= memory:
        raise K8sSpecError(
            f"FRESHLM_K8S_SHM_SIZE={settings.k8s_shm_size!r} must be smaller than"
            f" FRESHLM_K8S_MEMORY_REQUEST={settings.k8s_memory_request!r}: /dev/shm is memory"
            " and counts against the pod's memory limit"
        )


# --- pieces -------------------------------------------------------------------------------------


def single_node_args(*, gpus: int, config: str, train_args: Sequence[str] = ()) -> list[str]:
    """The ``deepspeed`` arguments of a one-pod run (the ``command`` is ``deepspeed``)."""
    gpus = _check_count("gpus", gpus)
    return ["--num_gpus", str(gpus), *_check_args(config, train_args)]


def multi_node_args(
    *,
    nodes: int,
    gpus_per_node: int,
    service: str,
    config: str,
    train_args: Sequence[str] = (),
    master_port: int = MASTER_PORT,
) -> list[str]:
    """The ``deepspeed`` arguments of every pod of the indexed Job; Kubernetes fills the ranks."""
    nodes = _check_count("nodes", nodes)
    gpus_per_node = _check_count("gpus_per_node", gpus_per_node)
    if isinstance(master_port, bool) or not isinstance(master_port, int):
        raise K8sSpecError(f"master_port={master_port!r} is invalid: expected a TCP port")
    if not 1 <= master_port <= 65535:
        raise K8sSpecError(f"master_port={master_port!r} is invalid: expected a TCP port")
    return [
        "--hostfile",
        HOSTFILE_PATH,
        "--no_ssh",
        "--num_nodes",
        str(nodes),
        "--num_gpus",
        str(gpus_per_node),
        f"--node_rank=$({COMPLETION_INDEX_ENV})",
        f"--master_addr=$({JOB_NAME_ENV})-0.{_check_name(service)}",
        f"--master_port={master_port}",
        *_check_args(config, train_args),
    ]


def hostfile(nodes: int, gpus_per_node: int) -> str:
    """The DeepSpeed hostfile: one line per node, in rank order; only the slot counts matter."""
    return "".join(f"rank-{i} slots={gpus_per_node}\n" for i in range(nodes))


def store_env(settings: Settings) -> list[V1EnvVar]:
    """Where the store is (plain env) and its credentials (``secretKeyRef`` only, never values)."""
    _check_store(settings)
    plain = {
        "FRESHLM_STORE_URI": settings.store_uri,
        "FRESHLM_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "FRESHLM_S3_REGION": settings.s3_region,
        "FRESHLM_S3_MAX_ATTEMPTS": str(settings.s3_max_attempts),
        "FRESHLM_LOG_LEVEL": settings.log_level,
        "FRESHLM_HOME": f"{SCRATCH_PATH}/freshlm",
        "HF_HOME": f"{SCRATCH_PATH}/huggingface",
        "PYTHONUNBUFFERED": "1",
        **WRITABLE_ENV,
    }
    env = [V1EnvVar(name=k, value=literal(v)) for k, v in plain.items() if v is not None]
    env += [
        V1EnvVar(
            name=key,
            value_from=V1EnvVarSource(
                secret_key_ref=V1SecretKeySelector(
                    name=settings.k8s_store_secret, key=key, optional=not required
                )
            ),
        )
        for key, required in _STORE_SECRET_KEYS
    ]
    return env


def _field_env(name: str, field_path: str) -> V1EnvVar:
    return V1EnvVar(
        name=name,
        value_from=V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path=field_path)),
    )


def rank_env() -> list[V1EnvVar]:
    """The env the indexed Job's args refer to: this pod's index and the Job's final name.

    The Job controller adds ``JOB_COMPLETION_INDEX`` itself unless the container already has
    it; declaring it here keeps the wiring visible in the spec.
    """
    return [
        _field_env(COMPLETION_INDEX_ENV, f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"),
        _field_env(JOB_NAME_ENV, f"metadata.labels['{JOB_NAME_LABEL}']"),
    ]


def resources(settings: Settings, gpus: int) -> V1ResourceRequirements:
    """GPUs as requests = limits; memory limited to its request (``/dev/shm`` included); the
    scratch disk requested as ephemeral storage, so the pod lands on a node that has it."""
    gpu = {settings.k8s_gpu_resource: str(_check_count("gpus", gpus))}
    return V1ResourceRequirements(
        requests={
            "cpu": settings.k8s_cpu_request,
            "memory": settings.k8s_memory_request,
            "ephemeral-storage": settings.k8s_scratch_size,
            **gpu,
        },
        limits={"memory": settings.k8s_memory_request, **gpu},
    )


def tolerations(settings: Settings) -> list[V1Toleration] | None:
    if not settings.k8s_gpu_tolerations:
        return None
    return [
        V1Toleration(key=t.key, operator=t.operator, value=t.value, effect=t.effect)
        for t in settings.k8s_gpu_tolerations
    ]


def train_container(
    settings: Settings,
    *,
    gpus: int,
    args: Sequence[str],
    extra_env: Sequence[V1EnvVar] = (),
    extra_mounts: Sequence[V1VolumeMount] = (),
) -> V1Container:
    """The training container: ``deepspeed ARGS`` in the image's repo root."""
    _check_shm(settings)
    return V1Container(
        name=CONTAINER_NAME,
        image=settings.k8s_train_image,
        command=[LAUNCHER],
        args=list(args),
        working_dir=IMAGE_WORKDIR,
        env=[*store_env(settings), *extra_env],
        resources=resources(settings, gpus),
        termination_message_policy=TERMINATION_MESSAGE_POLICY,
        volume_mounts=[
            V1VolumeMount(name="dshm", mount_path=SHM_PATH),
            V1VolumeMount(name="scratch", mount_path=SCRATCH_PATH),
            V1VolumeMount(name="scratch", mount_path=TMP_PATH, sub_path="tmp"),
            *extra_mounts,
        ],
        security_context=restricted_container_security(),
    )


def restricted_container_security() -> V1SecurityContext:
    """The container's part of Pod Security "restricted", and a read-only root filesystem."""
    return V1SecurityContext(
        allow_privilege_escalation=False,
        capabilities=V1Capabilities(drop=["ALL"]),
        read_only_root_filesystem=True,
        run_as_non_root=True,
        seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
    )


def pod_spec(
    settings: Settings,
    container: V1Container,
    *,
    extra_volumes: Sequence[V1Volume] = (),
    subdomain: str | None = None,
    active_deadline_seconds: int = DEFAULT_ACTIVE_DEADLINE_S,
) -> V1PodSpec:
    """Scheduling, identity and volumes shared by the single pod and the Job's pods."""
    selector = settings.k8s_gpu_node_selector
    return V1PodSpec(
        containers=[container],
        restart_policy="Never",
        active_deadline_seconds=_check_deadline(active_deadline_seconds),
        service_account_name=settings.k8s_service_account,
        automount_service_account_token=False,
        node_selector=selector.as_dict() if selector else None,
        tolerations=tolerations(settings),
        subdomain=subdomain,
        enable_service_links=False,
        security_context=V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=RUN_AS_UID,
            fs_group=RUN_AS_UID,
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
        volumes=[
            V1Volume(
                name="dshm",
                empty_dir=V1EmptyDirVolumeSource(medium="Memory", size_limit=settings.k8s_shm_size),
            ),
            V1Volume(
                name="scratch",
                empty_dir=V1EmptyDirVolumeSource(size_limit=settings.k8s_scratch_size),
            ),
            *extra_volumes,
        ],
    )


def _labels(name: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    return {**APP_LABELS, RANK_GROUP_LABEL: name, **(extra or {})}


# --- the objects --------------------------------------------------------------------------------


def train_pod(
    *,
    name: str,
    gpus: int,
    config: str,
    train_args: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    active_deadline_seconds: int = DEFAULT_ACTIVE_DEADLINE_S,
    settings: Settings | None = None,
) -> V1Pod:
    """One pod running ``deepspeed --num_gpus gpus training/train.py --config config ...``;
    Kubernetes stops it after ``active_deadline_seconds``."""
    settings = settings or get_settings()
    _check_name(name)
    container = train_container(
        settings, gpus=gpus, args=single_node_args(gpus=gpus, config=config, train_args=train_args)
    )
    return V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=V1ObjectMeta(
            name=name, namespace=settings.k8s_namespace, labels=_labels(name, labels)
        ),
        spec=pod_spec(settings, container, active_deadline_seconds=active_deadline_seconds),
    )


def rank_service(
    *, name: str, master_port: int = MASTER_PORT, settings: Settings | None = None
) -> V1Service:
    """The headless Service that gives the Job's pods ``<job>-<i>.<name>`` DNS names.

    It selects the pods by :data:`RANK_GROUP_LABEL` and publishes them before they are ready,
    so rank 0 resolves while the other ranks start up.
    """
    settings = settings or get_settings()
    _check_name(name)
    return V1Service(
        api_version="v1",
        kind="Service",
        metadata=V1ObjectMeta(
            name=name, namespace=settings.k8s_namespace, labels=_labels(name, {})
        ),
        spec=V1ServiceSpec(
            cluster_ip="None",
            selector={RANK_GROUP_LABEL: name},
            publish_not_ready_addresses=True,
            ports=[V1ServicePort(name="rendezvous", port=master_port, protocol="TCP")],
        ),
    )


def train_job(
    *,
    name: str,
    nodes: int,
    gpus_per_node: int,
    config: str,
    train_args: Sequence[str] = (),
    backoff_limit: int = 0,
    ttl_seconds_after_finished: int = 86400,
    active_deadline_seconds: int = DEFAULT_ACTIVE_DEADLINE_S,
    master_port: int = MASTER_PORT,
    labels: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> V1Job:
    """An indexed Job of ``nodes`` pods, ``gpus_per_node`` GPUs each, one DeepSpeed node per pod.

    Its pods' ``subdomain`` is ``name``: create :func:`rank_service` with the same ``name``
    first. ``backoff_limit`` defaults to 0 because a lost rank fails the whole collective: the
    retry belongs to Airflow, which restarts every rank together. The Job and each of its pods
    are stopped after ``active_deadline_seconds``.
    """
    settings = settings or get_settings()
    _check_name(name)
    for what, value in (("backoff_limit", backoff_limit), ("ttl", ttl_seconds_after_finished)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise K8sSpecError(f"{what}={value!r} is invalid: expected an integer >= 0")
    args = multi_node_args(
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        service=name,
        config=config,
        train_args=train_args,
        master_port=master_port,
    )
    container = train_container(
        settings,
        gpus=gpus_per_node,
        args=args,
        extra_env=rank_env(),
        extra_mounts=[V1VolumeMount(name="hostfile", mount_path=HOSTFILE_DIR, read_only=True)],
    )
    hostfile_volume = V1Volume(
        name="hostfile",
        downward_api=V1DownwardAPIVolumeSource(
            items=[
                V1DownwardAPIVolumeFile(
                    path="hostfile",
                    field_ref=V1ObjectFieldSelector(
                        field_path=f"metadata.annotations['{HOSTFILE_ANNOTATION}']"
                    ),
                )
            ]
        ),
    )
    return V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=V1ObjectMeta(
            name=name, namespace=settings.k8s_namespace, labels=_labels(name, labels)
        ),
        spec=V1JobSpec(
            completion_mode="Indexed",
            completions=nodes,
            parallelism=nodes,
            backoff_limit=backoff_limit,
            ttl_seconds_after_finished=ttl_seconds_after_finished,
            active_deadline_seconds=active_deadline_seconds,
            template=V1PodTemplateSpec(
                metadata=V1ObjectMeta(
                    labels=_labels(name, labels),
                    annotations={HOSTFILE_ANNOTATION: hostfile(nodes, gpus_per_node)},
                ),
                spec=pod_spec(
                    settings,
                    container,
                    extra_volumes=[hostfile_volume],
                    subdomain=name,
                    active_deadline_seconds=active_deadline_seconds,
                ),
            ),
        ),
    )
