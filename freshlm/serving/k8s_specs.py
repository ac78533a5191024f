"""The model server on Kubernetes: a Deployment and its Service, built from settings.

``python -m freshlm.serving.k8s_specs [--replicas N] [--gpus N]`` prints them as YAML for
``kubectl apply -f -``. What makes a rollout interrupt no one:

* the readiness probe is ``GET /healthz``, which answers 200 only once a model version is
  loaded and warm, so a new pod gets traffic only when it can answer;
* the rolling update has ``maxUnavailable: 0`` (a ready pod is removed only after its
  replacement is ready) and ``maxSurge: 1``;
* on termination a ``preStop`` pause lets the Service stop routing to the pod before the
  server's own graceful shutdown finishes the requests in progress.

Within a pod, promotions and rollbacks swap the version in place (``freshlm_deploy`` or
polling); a rollout is needed only for a new image or settings.

The store's credentials and the reload token come from Secrets by reference only
(``FRESHLM_K8S_STORE_SECRET`` and :data:`TOKEN_SECRET`); a Slack connection for the server's
alerts may come from :data:`SLACK_SECRET`. Plain dicts, validated in the tests against the
Kubernetes OpenAPI schema (strict) like the training specs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from freshlm.settings import Settings, get_settings

NAME = "freshlm-serve"
PORT_NAME = "http"
CONTAINER_PORT = 8767
SERVICE_PORT = 80
TOKEN_SECRET = "freshlm-serve-token"  # key "token": the reload endpoint's bearer token
SLACK_SECRET = "freshlm-slack-connection"  # key "conn": AIRFLOW_CONN_FRESHLM_SLACK (optional)
CACHE_PATH = "/var/lib/freshlm"
RUN_AS_UID = 1000  # the image's non-root user
LABELS = {"app.kubernetes.io/name": "freshlm", "app.kubernetes.io/component": "serve"}
_STORE_SECRET_KEYS = (
    ("AWS_ACCESS_KEY_ID", True),
    ("AWS_SECRET_ACCESS_KEY", True),
    ("AWS_SESSION_TOKEN", False),
)


class ServeSpecError(ValueError):
    """A value that would make an invalid or useless Deployment."""


def _secret_env(name: str, secret: str, key: str, *, optional: bool) -> dict[str, Any]:
    ref = {"name": secret, "key": key, "optional": optional}
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def server_env(settings: Settings) -> list[dict[str, Any]]:
    """The server's settings: the store (plain), its credentials, the token and Slack (by
    reference). It binds to all interfaces, which requires a token of its own."""
    plain = {
        "FRESHLM_STORE_URI": settings.store_uri,
        "FRESHLM_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "FRESHLM_S3_REGION": settings.s3_region,
        "FRESHLM_LOG_LEVEL": settings.log_level,
        "FRESHLM_HOME": CACHE_PATH,
        "FRESHLM_SERVE_HOST": "0.0.0.0",
        "FRESHLM_SERVE_PORT": str(CONTAINER_PORT),
        "FRESHLM_SERVE_BACKEND": settings.serve_backend,
        "FRESHLM_SERVE_MAX_BATCH": str(settings.serve_max_batch),
        "FRESHLM_SERVE_POLL_S": str(settings.serve_poll_s),
        "PYTHONUNBUFFERED": "1",
    }
    env = [{"name": k, "value": v} for k, v in plain.items() if v is not None]
    env += [
        _secret_env(key, settings.k8s_store_secret, key, optional=not required)
        for key, required in _STORE_SECRET_KEYS
    ]
    env.append(_secret_env("FRESHLM_SERVE_TOKEN", TOKEN_SECRET, "token", optional=False))
    slack = f"AIRFLOW_CONN_{settings.slack_conn_id.upper()}"
    env.append(_secret_env(slack, SLACK_SECRET, "conn", optional=True))
    return env


def _resources(settings: Settings, *, cpu: str, memory: str, gpus: int) -> dict[str, Any]:
    requests_ = {"cpu": cpu, "memory": memory}
    limits: dict[str, Any] = {"memory": memory}
    if gpus:
        limits[settings.k8s_gpu_resource] = str(gpus)
    return {"requests": requests_, "limits": limits}


def server_container(
    settings: Settings, *, image: str, cpu: str, memory: str, gpus: int
) -> dict[str, Any]:
    probe_http = {"path": "/healthz", "port": PORT_NAME}
    return {
        "name": "serve",
        "image": image,
        "command": ["python", "-m", "freshlm.serving"],
        "ports": [{"name": PORT_NAME, "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": server_env(settings),
        "resources": _resources(settings, cpu=cpu, memory=memory, gpus=gpus),
        # Ready only with a model loaded: no traffic before the first answer is possible.
        "readinessProbe": {
            "httpGet": probe_http,
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        # Up to 30 minutes for the first download and load of a large model.
        "startupProbe": {
            "tcpSocket": {"port": PORT_NAME},
            "periodSeconds": 10,
            "failureThreshold": 180,
        },
        "livenessProbe": {"tcpSocket": {"port": PORT_NAME}, "periodSeconds": 20},
        "lifecycle": {"preStop": {"sleep": {"seconds": 10}}},
        "volumeMounts": [{"name": "model-cache", "mountPath": CACHE_PATH}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_UID,
            "allowPrivilegeEscalation": False,
        },
    }


def deployment(
    settings: Settings | None = None,
    *,
    replicas: int = 2,
    gpus: int = 0,
    cpu: str = "4",
    memory: str = "16Gi",
    image: str | None = None,
) -> dict[str, Any]:
    """The server's Deployment (see the module doc)."""
    settings = settings or get_settings()
    if replicas < 1:
        raise ServeSpecError(f"replicas {replicas}: at least 1 (2 or more to survive a node)")
    if gpus < 0:
        raise ServeSpecError(f"gpus {gpus}: 0 (CPU) or more")
    pod_spec: dict[str, Any] = {
        "containers": [
            server_container(
                settings, image=image or settings.k8s_train_image, cpu=cpu, memory=memory, gpus=gpus
            )
        ],
        "volumes": [{"name": "model-cache", "emptyDir": {}}],
        "terminationGracePeriodSeconds": 60,
        "securityContext": {"fsGroup": RUN_AS_UID},
    }
    if gpus:
        if settings.k8s_gpu_node_selector is not None:
            pod_spec["nodeSelector"] = settings.k8s_gpu_node_selector.as_dict()
        if settings.k8s_gpu_tolerations is not None:
            pod_spec["tolerations"] = [
                {
                    k: v
                    for k, v in {
                        "key": t.key,
                        "operator": t.operator,
                        "value": t.value,
                        "effect": t.effect,
                    }.items()
                    if v is not None
                }
                for t in settings.k8s_gpu_tolerations
            ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": settings.k8s_namespace, "labels": dict(LABELS)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(LABELS)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "minReadySeconds": 5,
            "template": {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec},
        },
    }


def service(settings: Settings | None = None) -> dict[str, Any]:
    """The Service in front of the ready pods: ``http://freshlm-serve.<namespace>`` is what
    ``FRESHLM_SERVE_URL`` names for ``freshlm_deploy`` and ``freshlm_monitor``."""
    settings = settings or get_settings()
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": settings.k8s_namespace, "labels": dict(LABELS)},
        "spec": {
            "selector": dict(LABELS),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description="Print the model server's Deployment and Service")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per pod (0: CPU)")
    parser.add_argument("--image", help="default: FRESHLM_K8S_TRAIN_IMAGE (it holds FreshLM)")
    args = parser.parse_args(argv)
    try:
        docs = [deployment(replicas=args.replicas, gpus=args.gpus, image=args.image), service()]
    except ServeSpecError as exc:
        print(f"freshlm serve specs: {exc}", file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(docs, sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
