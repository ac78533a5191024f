"""A stand-in Kubernetes API server on loopback, for the DAG tests of the ``kubernetes`` backend.

It speaks the REST wire format the Kubernetes Python clients use (``kubernetes`` in the task,
``kubernetes_asyncio`` in the triggerer): JSON bodies in camelCase, shaped as the API server
returns them, ``Status`` objects for errors. It serves what the Airflow provider's pod, Job and
resource operators call:

* core/v1 Pods: create, read (also ``/status``), list by label selector, merge-patch, delete,
  and the pod log; Events listed by ``involvedObject.name``;
* batch/v1 Jobs: create, read (also ``/status``), delete; creating a Job creates its pods as the
  Job controller does (an indexed Job: pod *i* has the completion index annotation and label and
  the hostname ``<job>-<i>``), and a Job's status follows its pods (``Complete`` when all
  succeeded, ``Failed``/``BackoffLimitExceeded`` when more failed than its ``backoffLimit``);
* core/v1 Services: create, read, delete.

Nothing runs: each pod *plays* a script of phases. Every read of the pod (or of its Job) moves it
one step along, so a test is bounded by the number of polls, not by the length of a training run;
only the first phase is held for ``hold_first_phase_s`` of wall time. A real pod spends seconds
being scheduled, and Airflow 3.3 relies on that: a trigger that fires before the scheduler has
processed the deferring worker's exit makes it fail the resumed task as "state changed
externally" (apache/airflow#66374, #72716). Scripts are queued with
:meth:`KubeApi.play` and taken by pods in the order they are created (a Job's pods in index
order); a pod with no script queued plays :data:`SUCCEEDS`. ``on_succeeded`` is called with the
pod when it reaches ``Succeeded``, as the training entrypoint would publish its model then.

Every object received is recorded (:attr:`KubeApi.created`, :attr:`KubeApi.deleted`) with the
body exactly as sent, so tests check what a cluster would be given.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

# Phase scripts, step by step. "Evicted" is a failed pod whose status.reason says it was evicted.
PENDING, RUNNING, SUCCEEDED, FAILED, EVICTED = (
    "Pending",
    "Running",
    "Succeeded",
    "Failed",
    "Evicted",
)
SUCCEEDS = (PENDING, RUNNING, SUCCEEDED)
FAILS = (PENDING, RUNNING, FAILED)
IS_EVICTED = (PENDING, RUNNING, EVICTED)

#: The training container's last lines when it fails: what the task log should show.
FAILURE_LOG = "RuntimeError: CUDA error: an illegal memory access was encountered"
EVICTION_MESSAGE = "The node was low on resource: memory. Threshold quantity: 100Mi."

_TERMINAL = {SUCCEEDED, FAILED, EVICTED}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def matches(selector: str, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy a label selector (``k=v``, ``k!=v``, ``k``, ``!k``)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what a dict body of ``patch_namespaced_pod`` applies)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


@dataclass
class Received:
    """One object the API received: its kind, namespace, name and the body as sent."""

    kind: str
    namespace: str
    name: str
    body: dict[str, Any]


@dataclass
class _Pod:
    obj: dict[str, Any]
    script: tuple[str, ...]
    step: int = 0
    created: float = field(default_factory=time.monotonic)
    served: list[str] = field(default_factory=list)  # each phase a reader saw, in order
    log: list[str] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return self.script[min(self.step, len(self.script) - 1)]


class KubeApi:
    """The stand-in API server; use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(self, *, host: str = "127.0.0.1", hold_first_phase_s: float = 0.0) -> None:
        self.hold_first_phase_s = hold_first_phase_s
        self._lock = threading.RLock()
        self._scripts: list[tuple[str, ...]] = []
        self.pods: dict[tuple[str, str], _Pod] = {}
        self.every_pod: dict[str, _Pod] = {}  # by name, deleted ones too
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.services: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[Received] = []
        self.deleted: list[tuple[str, str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.on_succeeded: Callable[[dict[str, Any]], None] | None = None
        self.callback_errors: list[BaseException] = []
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- control ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> KubeApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> KubeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def play(self, *scripts: Sequence[str]) -> None:
        """Queue phase scripts for the next pods created, one script per pod."""
        with self._lock:
            for script in scripts:
                if (
                    not script
                    or any(p not in {PENDING, RUNNING, *_TERMINAL} for p in script)
                    or script[-1] not in _TERMINAL
                ):
                    raise ValueError(f"a script is phases ending in a terminal one: {script!r}")
                self._scripts.append(tuple(script))

    def received(self, kind: str) -> list[Received]:
        """The objects of ``kind`` (``Pod``, ``Job``, ``Service``) received, oldest first."""
        with self._lock:
            return [r for r in self.created if r.kind == kind]

    def pod_phases(self) -> dict[str, str]:
        """Each pod's last phase (``Evicted`` for an evicted one), by name, deleted pods too."""
        with self._lock:
            return {name: pod.phase for name, pod in self.every_pod.items()}

    def phases_seen(self, name: str) -> list[str]:
        """The phases the pod ``name`` was read in (by a client or through its Job), in order."""
        with self._lock:
            return list(self.every_pod[name].served)

    def job_pods(self, job_name: str) -> list[dict[str, Any]]:
        """The pods the Job ``job_name`` made, deleted ones too, in index order."""
        with self._lock:
            pods = [
                p.obj
                for p in self.every_pod.values()
                if p.obj["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name")
                == job_name
            ]
        return sorted(pods, key=lambda p: p["spec"].get("hostname", p["metadata"]["name"]))

    def kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """Write a kubeconfig file that points at this server; returns ``path``."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "stand-in", "user": {"token": "stand-in-token"}}],
            "contexts": [
                {
                    "name": "stand-in",
                    "context": {"cluster": "stand-in", "user": "stand-in", "namespace": namespace},
                }
            ],
            "current-context": "stand-in",
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def connection_env(self, conn_id: str, kubeconfig: Path) -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>``: a kubernetes connection that reaches this server."""
        conn = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}

    # --- objects ----------------------------------------------------------------------------

    def _next_script(self) -> tuple[str, ...]:
        return self._scripts.pop(0) if self._scripts else SUCCEEDS

    def _new_pod(self, body: dict[str, Any], namespace: str) -> _Pod:
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        meta.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            resourceVersion="1",
            creationTimestamp=_now(),
        )
        body.setdefault("apiVersion", "v1")
        body.setdefault("kind", "Pod")
        pod = _Pod(obj=body, script=self._next_script())
        self._render_status(pod)
        self.pods[(namespace, meta["name"])] = pod
        self.every_pod[meta["name"]] = pod
        return pod

    def _container_status(self, container: dict[str, Any], phase: str) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": phase == RUNNING,
            "restartCount": 0,
            "started": phase == RUNNING,
        }
        if phase == PENDING:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif phase == RUNNING:
            status["state"] = {"running": {"startedAt": _now()}}
            status["containerID"] = "containerd://" + uuid.uuid4().hex
        else:
            exit_code = {SUCCEEDED: 0, FAILED: 1, EVICTED: 137}[phase]
            reason = {SUCCEEDED: "Completed", FAILED: "Error", EVICTED: "ContainerStatusUnknown"}
            terminated = {
                "exitCode": exit_code,
                "reason": reason[phase],
                "startedAt": _now(),
                "finishedAt": _now(),
            }
            if phase == FAILED and container.get("terminationMessagePolicy") == (
                "FallbackToLogsOnError"
            ):
                terminated["message"] = FAILURE_LOG  # the kubelet's tail of the container log
            status["state"] = {"terminated": terminated}
        return status

    def _render_status(self, pod: _Pod) -> None:
        phase = pod.phase
        containers = pod.obj.get("spec", {}).get("containers", [])
        status: dict[str, Any] = {
            "phase": FAILED if phase == EVICTED else phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()},
                {
                    "type": "Ready",
                    "status": "True" if phase == RUNNING else "False",
                    "lastTransitionTime": _now(),
                },
            ],
            "qosClass": "Burstable",
            "containerStatuses": [self._container_status(c, phase) for c in containers],
        }
        if phase != PENDING:
            status.update(hostIP="10.0.0.7", podIP="10.1.0.7", startTime=_now())
        if phase == EVICTED:
            status.update(reason="Evicted", message=EVICTION_MESSAGE)
            status["conditions"].append(
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "TerminationByKubelet",
                    "message": EVICTION_MESSAGE,
                    "lastTransitionTime": _now(),
                }
            )
        pod.obj["status"] = status
        if phase in (RUNNING, *_TERMINAL) and not pod.log:
            pod.log.append(
                f"{_now()} [freshlm] training started in pod {pod.obj['metadata']['name']}"
            )
        if phase == SUCCEEDED and len(pod.log) < 2:
            pod.log.append(f"{_now()} [freshlm] published the model version")
        if phase == FAILED and len(pod.log) < 2:
            pod.log.append(f"{_now()} {FAILURE_LOG}")

    def _advance(self, pod: _Pod) -> None:
        if pod.phase in _TERMINAL:
            return
        if pod.step == 0 and time.monotonic() - pod.created < self.hold_first_phase_s:
            return
        pod.step += 1
        self._render_status(pod)
        if pod.phase == SUCCEEDED and self.on_succeeded is not None:
            try:
                self.on_succeeded(pod.obj)
            except BaseException as exc:  # surfaced by the test, not lost in a server thread
                self.callback_errors.append(exc)

    @staticmethod
    def _seen(pod: _Pod) -> None:
        if not pod.served or pod.served[-1] != pod.phase:
            pod.served.append(pod.phase)

    def _create_job(self, body: dict[str, Any], namespace: str) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        meta.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            resourceVersion="1",
            creationTimestamp=_now(),
        )
        spec = body.setdefault("spec", {})
        name, uid = meta["name"], meta["uid"]
        indexed = spec.get("completionMode") == "Indexed"
        controller = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid}
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", spec["parallelism"])
        body["status"] = {"startTime": _now(), "active": 0, "ready": 0, "terminating": 0}
        self.jobs[(namespace, name)] = body
        template = spec.get("template", {})
        for index in range(spec["parallelism"]):
            pod_body = json.loads(json.dumps(template))
            pod_meta = pod_body.setdefault("metadata", {})
            labels = pod_meta.setdefault("labels", {})
            labels.update({"batch.kubernetes.io/job-name": name, "job-name": name, **controller})
            annotations = pod_meta.setdefault("annotations", {})
            if indexed:
                labels["batch.kubernetes.io/job-completion-index"] = str(index)
                annotations["batch.kubernetes.io/job-completion-index"] = str(index)
                pod_body.setdefault("spec", {})["hostname"] = f"{name}-{index}"
            pod_meta["name"] = f"{name}-{index}-{uuid.uuid4().hex[:5]}"
            pod_meta["ownerReferences"] = [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
            self._new_pod(pod_body, namespace)
        return body

    def _job_pods(self, namespace: str, name: str) -> list[_Pod]:
        return [
            pod
            for (ns, _), pod in self.pods.items()
            if ns == namespace
            and pod.obj["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name") == name
        ]

    def _refresh_job(self, job: dict[str, Any]) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        pods = self._job_pods(namespace, name)
        for pod in pods:
            self._advance(pod)
            self._seen(pod)
        status = job["status"]
        if any(c.get("status") == "True" for c in status.get("conditions", [])):
            return
        succeeded = [p for p in pods if p.phase == SUCCEEDED]
        failed = [p for p in pods if p.phase in (FAILED, EVICTED)]
        status.update(
            active=len(pods) - len(succeeded) - len(failed),
            ready=sum(p.phase == RUNNING for p in pods),
            succeeded=len(succeeded),
            failed=len(failed),
        )
        if job["spec"]["completionMode"] == "Indexed":
            status["completedIndexes"] = ",".join(
                p.obj["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                for p in succeeded
            )
        if failed and len(failed) > job["spec"]["backoffLimit"]:
            message = "Job has reached the specified backoff limit"
            status["conditions"] = [
                self._condition("FailureTarget", "BackoffLimitExceeded", message),
                self._condition("Failed", "BackoffLimitExceeded", message),
            ]
            status["active"] = 0
        elif len(succeeded) == job["spec"]["completions"]:
            message = "Reached expected number of succeeded pods"
            status["conditions"] = [
                self._condition("SuccessCriteriaMet", "CompletionsReached", message),
                self._condition("Complete", "CompletionsReached", message),
            ]
            status["completionTime"] = _now()

    @staticmethod
    def _condition(kind: str, reason: str, message: str) -> dict[str, Any]:
        now = _now()
        return {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }

    # --- HTTP -------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _send(self, code: int, payload: Any, content_type: str = "application/json"):
                data = (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                )
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                body = self._body()
                with api._lock:
                    api.requests.append((self.command, self.path))
                    code, payload, content_type = api._route(self.command, parts.path, query, body)
                self._send(code, payload, content_type)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        return Handler

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, str]:
        json_type = "application/json"
        segs = [s for s in path.split("/") if s]
        # /api/v1/namespaces/NS/KIND[/NAME[/SUB]] and /apis/batch/v1/namespaces/NS/jobs[...]
        if segs[:2] == ["api", "v1"] and len(segs) >= 4 and segs[2] == "namespaces":
            rest = segs[3:]
        elif segs[:3] == ["apis", "batch", "v1"] and len(segs) >= 5 and segs[3] == "namespaces":
            rest = segs[4:]
        else:
            return self._unhandled(method, path)
        namespace, kind = rest[0], rest[1] if len(rest) > 1 else ""
        name = rest[2] if len(rest) > 2 else None
        sub = rest[3] if len(rest) > 3 else None

        if kind == "pods":
            if name is None and method == "POST":
                self.created.append(Received("Pod", namespace, body["metadata"]["name"], body))
                pod = self._new_pod(json.loads(json.dumps(body)), namespace)
                return 201, pod.obj, json_type
            if name is None and method == "GET":
                selector = query.get("labelSelector", "")
                items = [
                    p.obj
                    for (ns, _), p in self.pods.items()
                    if ns == namespace and matches(selector, p.obj["metadata"].get("labels", {}))
                ]
                return 200, self._list("PodList", items), json_type
            pod = self.pods.get((namespace, name or ""))
            if pod is None:
                return self._not_found("pods", name)
            if method == "GET" and sub == "log":
                return 200, "\n".join(pod.log) + ("\n" if pod.log else ""), "text/plain"
            if method == "GET" and sub in (None, "status"):
                self._advance(pod)
                self._seen(pod)
                return 200, pod.obj, json_type
            if method == "PATCH" and sub is None:
                pod.obj["metadata"] = merge_patch(pod.obj["metadata"], body.get("metadata", {}))
                return 200, pod.obj, json_type
            if method == "DELETE" and sub is None:
                del self.pods[(namespace, name)]
                self.deleted.append(("Pod", namespace, name))
                return 200, pod.obj, json_type
        elif kind == "events" and name is None and method == "GET":
            involved = query.get("fieldSelector", "").removeprefix("involvedObject.name=")
            items = [self._event(namespace, involved)] if (namespace, involved) in self.pods else []
            return 200, self._list("EventList", items), json_type
        elif kind == "jobs":
            if name is None and method == "POST":
                self.created.append(Received("Job", namespace, body["metadata"]["name"], body))
                job = self._create_job(json.loads(json.dumps(body)), namespace)
                return 201, job, json_type
            job = self.jobs.get((namespace, name or ""))
            if job is None:
                return self._not_found("jobs.batch", name)
            if method == "GET" and sub in (None, "status"):
                self._refresh_job(job)
                return 200, job, json_type
            if method == "DELETE" and sub is None:
                del self.jobs[(namespace, name)]
                self.deleted.append(("Job", namespace, name))
                return 200, self._status_ok("jobs", name), json_type
        elif kind == "services":
            if name is None and method == "POST":
                svc_name = body["metadata"]["name"]
                if (namespace, svc_name) in self.services:
                    return self._conflict("services", svc_name)
                self.created.append(Received("Service", namespace, svc_name, body))
                svc = json.loads(json.dumps(body))
                svc["metadata"].update(
                    namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=_now()
                )
                self.services[(namespace, svc_name)] = svc
                return 201, svc, json_type
            svc = self.services.get((namespace, name or ""))
            if svc is None:
                return self._not_found("services", name)
            if method == "GET" and sub is None:
                return 200, svc, json_type
            if method == "DELETE" and sub is None:
                del self.services[(namespace, name)]
                self.deleted.append(("Service", namespace, name))
                return 200, self._status_ok("services", name), json_type
        return self._unhandled(method, path)

    @staticmethod
    def _list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "kind": kind,
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"},
            "items": items,
        }

    def _event(self, namespace: str, pod_name: str) -> dict[str, Any]:
        return {
            "metadata": {"name": f"{pod_name}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": namespace},
            "reason": "Scheduled",
            "message": f"Successfully assigned {namespace}/{pod_name} to gpu-node-1",
            "type": "Normal",
            "count": 1,
            "firstTimestamp": _now(),
            "lastTimestamp": _now(),
            "source": {"component": "default-scheduler"},
        }

    @staticmethod
    def _status(code: int, reason: str, message: str, kind: str, name: str | None) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure" if code >= 400 else "Success",
            "message": message,
            "reason": reason,
            "details": {"name": name, "kind": kind},
            "code": code,
        }

    def _status_ok(self, kind: str, name: str | None) -> dict[str, Any]:
        return self._status(200, "", "", kind, name)

    def _not_found(self, kind: str, name: str | None) -> tuple[int, Any, str]:
        msg = f'{kind} "{name}" not found'
        return 404, self._status(404, "NotFound", msg, kind, name), "application/json"

    def _conflict(self, kind: str, name: str) -> tuple[int, Any, str]:
        msg = f'{kind} "{name}" already exists'
        return 409, self._status(409, "AlreadyExists", msg, kind, name), "application/json"

    def _unhandled(self, method: str, path: str) -> tuple[int, Any, str]:
        self.unhandled.append((method, path))
        msg = f"the stand-in API does not serve {method} {path}"
        return 404, self._status(404, "NotFound", msg, "", None), "application/json"
