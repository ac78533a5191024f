"""freshlm_train's ``kubernetes`` backend under a real Airflow, against a stand-in Kubernetes API.

The deployment is the tests' usual local Airflow (scheduler, triggerer, API server, LocalExecutor)
with an S3 store (the session's SeaweedFS: training pods cannot see a local folder) and its
``kubernetes_default`` connection pointing at :class:`tests.support.kube_api.KubeApi` on loopback.
The provider's operators talk to it over the real REST wire format, the deferred waits from the
triggerer. Its pods run nothing: each plays a scripted sequence of phases, and one that succeeds
publishes its model version, as the training entrypoint does, so the rest of the DAG runs for
real. Each test checks what the cluster was sent (the pod or the indexed Job and its headless
Service, Pod Security "restricted" included) and what the DAG did with each phase.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from freshlm.airflow_client import AirflowAPIError, AirflowClient
from freshlm.airflow_local import LocalAirflow
from freshlm.registry import PRODUCTION, Lineage, move_alias, publish_version
from freshlm.settings import Settings
from freshlm.store import Store, open_store
from tests.support.airflow_server import airflow_deployment, dump_failure
from tests.support.kube_api import (
    FAILED,
    FAILS,
    FAILURE_LOG,
    IS_EVICTED,
    RUNNING,
    SUCCEEDED,
    SUCCEEDS,
    KubeApi,
    Received,
)
from tests.training.test_k8s_specs import pod_security_violations
from tests.training.test_trainset import make_tiny_model, publish_dataset
from training import k8s_specs

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

TRAIN = "freshlm_train"
NAMESPACE = "freshlm-test"
RUN_TIMEOUT_S = 240.0
#: How long a pod stays in its first phase: longer than the scheduler takes to see a task defer
#: on this machine (see tests.support.kube_api).
HOLD_FIRST_PHASE_S = 8.0


@dataclasses.dataclass
class Cluster:
    api: KubeApi
    airflow: LocalAirflow
    client: AirflowClient
    settings: Settings  # the deployment's store settings, for this process
    dataset_id: str
    base_version: str

    def store(self) -> Store:
        return open_store(settings=self.settings)

    def conf(self, **params: Any) -> dict[str, Any]:
        return {"backend": "kubernetes", "datasets": [self.dataset_id], "max_steps": 3, **params}

    def run(self, run_id: str, conf: dict[str, Any]) -> dict:
        """Trigger ``freshlm_train`` and wait for the run to end; the pods that succeed publish
        their version, as ``training/train.py`` would."""
        self.api.on_succeeded = _Publisher(self, run_id)
        self.client.trigger(TRAIN, conf=conf, run_id=run_id)
        try:
            return self.client.wait_for_run(TRAIN, run_id, timeout_s=RUN_TIMEOUT_S)
        finally:
            assert not self.api.callback_errors, self.api.callback_errors
            assert not self.api.unhandled, self.api.unhandled


class _Publisher:
    """Publishes the staged model version when a pod succeeds (once, from rank 0 of a Job)."""

    def __init__(self, cluster: Cluster, run_id: str) -> None:
        self.cluster, self.run_id = cluster, run_id
        self._lock = threading.Lock()

    def __call__(self, pod: dict[str, Any]) -> None:
        index = pod["metadata"].get("annotations", {}).get(k8s_specs.COMPLETION_INDEX_ANNOTATION)
        if index not in (None, "0"):
            return
        staged = self.cluster.client.xcom(TRAIN, self.run_id, "stage_kubernetes")
        args = pod["spec"]["containers"][0]["args"]
        assert args[args.index("--config") + 1] == staged["config_uri"]
        store = self.cluster.store()
        with self._lock, store.publisher(staged["prefix"], kind="model") as pub:
            pub.write_bytes("config.json", b"{}")
            pub.set_manifest_fields(
                version_id=staged["version_id"],
                metrics={"train_loss": 2.5, "world_size": staged["world_size"]},
                lineage={"kind": "finetune", "parent_version": self.cluster.base_version},
            )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_server, world) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("train-k8s")
    store_env = {
        "FRESHLM_STORE_URI": f"s3://{s3_server.create_bucket()}/freshlm",
        "FRESHLM_S3_ENDPOINT_URL": s3_server.endpoint_url,
    }
    with KubeApi(hold_first_phase_s=HOLD_FIRST_PHASE_S) as api, pytest.MonkeyPatch.context() as mp:
        kubeconfig = api.kubeconfig(tmp / "kubeconfig", namespace=NAMESPACE)
        airflow = airflow_deployment(
            tmp / "airflow-home",
            tmp / "freshlm-home",
            world.url,
            env={
                **store_env,
                **s3_server.env,
                **api.connection_env("kubernetes_default", kubeconfig),
                "FRESHLM_K8S_NAMESPACE": NAMESPACE,
                # One retry, at once: enough to see an evicted pod's run resume.
                "FRESHLM_K8S_TRAIN_RETRIES": "1",
                "FRESHLM_K8S_TRAIN_RETRY_DELAY_S": "0",
            },
        )
        airflow.start()
        try:
            # The store is filled while Airflow starts: the base model and a dataset.
            for name, value in s3_server.env.items():
                mp.setenv(name, value)
            settings = Settings.from_env(store_env)
            store = open_store(settings=settings)
            model_dir = make_tiny_model(tmp / "base-model")
            base, _ = publish_version(
                store, model_dir, lineage=Lineage(kind="bootstrap", source="tests")
            )
            move_alias(store, PRODUCTION, base.version_id, actor="test", reason="the base")
            dataset_id = publish_dataset(store, 1)
            airflow.wait_ready()
            client = AirflowClient(airflow.base_url, airflow.username, airflow.password)
            client.wait_for_dags([TRAIN])
            client.unpause(TRAIN)
            yield Cluster(api, airflow, client, settings, dataset_id, base.version_id)
        finally:
            airflow.stop()


# --- what the cluster was sent ------------------------------------------------------------------


def _container(spec: dict) -> dict:
    (container,) = spec["containers"]
    assert container["name"] == k8s_specs.CONTAINER_NAME
    return container


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def _check_pod_spec(spec: dict, settings: Settings, *, gpus: int, config_uri: str) -> dict:
    """The checks every training pod passes, the single pod's and the Job's alike."""
    assert pod_security_violations(spec) == []
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    container = _container(spec)
    assert container["image"] == settings.k8s_train_image
    assert container["command"] == [k8s_specs.LAUNCHER]
    assert container["args"][-3:] == [k8s_specs.ENTRYPOINT, "--config", config_uri]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    gpu = {"nvidia.com/gpu": str(gpus)}
    assert gpu.items() <= container["resources"]["limits"].items()
    assert gpu.items() <= container["resources"]["requests"].items()
    env = _env(container)
    assert env["FRESHLM_STORE_URI"]["value"] == settings.store_uri
    assert env["FRESHLM_S3_ENDPOINT_URL"]["value"] == settings.s3_endpoint_url
    # Store credentials reach the pod only as references to the Secret, never as values.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[key]
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == settings.k8s_store_secret
    return container


def _run_labels(received: Received, run_id: str, task_id: str) -> dict[str, str]:
    labels = received.body["metadata"]["labels"]
    assert labels["dag_id"] == TRAIN and labels["task_id"] == task_id
    return labels


# --- the tests -------------------------------------------------------------------------------


def test_an_evicted_pod_is_retried_and_a_published_version_starts_no_pod(cluster: Cluster):
    api, client = cluster.api, cluster.client
    api.play(IS_EVICTED, SUCCEEDS)
    run_id = "k8s__one_node"
    done = cluster.run(run_id, cluster.conf(gpus_per_node=2))
    assert done["state"] == "success", dump_failure(client, TRAIN, run_id)

    states = client.task_states(TRAIN, run_id)
    assert states["train_local"] == "skipped"
    assert states["train_on_kubernetes"] == states["collect_kubernetes"] == "success"
    for task_id in ("create_rank_service", "train_job_on_kubernetes", "delete_rank_service"):
        assert states[task_id] == "skipped", (task_id, states)
    tries = {t["task_id"]: t["try_number"] for t in client.task_instances(TRAIN, run_id)}
    assert tries["train_on_kubernetes"] == 2

    # Two pods: the evicted first try and its retry, with the same config (so the same run key:
    # the entrypoint resumes from that run's last checkpoint).
    staged = client.xcom(TRAIN, run_id, "stage_kubernetes")
    assert (staged["nodes"], staged["gpus_per_node"], staged["world_size"]) == (1, 2, 2)
    pods = [p for p in api.received("Pod") if p.body["metadata"]["labels"]["run_id"] == run_id]
    assert len(pods) == 2 and not api.received("Job")
    first, retry = pods
    assert first.namespace == retry.namespace == NAMESPACE
    assert [_run_labels(p, run_id, "train_on_kubernetes")["try_number"] for p in pods] == [
        "1",
        "2",
    ]
    for pod in pods:
        container = _check_pod_spec(
            pod.body["spec"], cluster.settings, gpus=2, config_uri=staged["config_uri"]
        )
        assert container["args"][:2] == ["--num_gpus", "2"]
    assert first.body["spec"] == retry.body["spec"]
    # The evicted pod is kept for inspection; the one that succeeded is deleted.
    # The deferred waits saw every phase: pending, running, then the end.
    assert api.phases_seen(first.name) == list(IS_EVICTED)
    assert api.phases_seen(retry.name) == list(SUCCEEDS)
    assert ("Pod", NAMESPACE, retry.name) in api.deleted
    assert ("Pod", NAMESPACE, first.name) not in api.deleted
    evicted_log = client.task_log(TRAIN, run_id, "train_on_kubernetes", 1)
    assert "Evicted" in evicted_log, evicted_log[-3000:]

    # The candidate is the version the pod published.
    candidate = client.xcom(TRAIN, run_id, "announce_candidate")
    assert candidate["version_id"] == staged["version_id"] and candidate["backend"] == "kubernetes"
    assert candidate["already_published"] is False

    # The same Params again: the version is in the store, so no pod starts.
    rerun = "k8s__one_node_again"
    done = cluster.run(rerun, cluster.conf(gpus_per_node=2))
    assert done["state"] == "success", dump_failure(client, TRAIN, rerun)
    states = client.task_states(TRAIN, rerun)
    assert states["train_on_kubernetes"] == "skipped" and states["collect_kubernetes"] == "success"
    assert not [p for p in api.received("Pod") if p.body["metadata"]["labels"]["run_id"] == rerun]
    again = client.xcom(TRAIN, rerun, "announce_candidate")
    assert again["version_id"] == staged["version_id"] and again["already_published"] is True


def test_several_nodes_run_an_indexed_job_behind_a_headless_service(cluster: Cluster):
    api, client = cluster.api, cluster.client
    # The first Job loses rank 1 (Failed: the Job fails as a whole); the retry's Job succeeds.
    ok, lost = (RUNNING, SUCCEEDED), (RUNNING, FAILED)
    api.play(ok, lost, ok, ok)
    run_id = "k8s__two_nodes"
    done = cluster.run(run_id, cluster.conf(nodes=2, gpus_per_node=4))
    assert done["state"] == "success", dump_failure(client, TRAIN, run_id)
    states = client.task_states(TRAIN, run_id)
    for task_id in (
        "create_rank_service",
        "train_job_on_kubernetes",
        "delete_rank_service",
        "collect_kubernetes",
        "announce_candidate",
    ):
        assert states[task_id] == "success", (task_id, states)
    assert states["train_on_kubernetes"] == "skipped"
    tries = {t["task_id"]: t["try_number"] for t in client.task_instances(TRAIN, run_id)}
    assert tries["train_job_on_kubernetes"] == 2
    failed_try = client.task_log(TRAIN, run_id, "train_job_on_kubernetes", 1)
    assert "BackoffLimitExceeded" in failed_try, failed_try[-3000:]

    staged = client.xcom(TRAIN, run_id, "stage_kubernetes")
    assert (staged["nodes"], staged["gpus_per_node"], staged["world_size"]) == (2, 4, 8)
    jobs = api.received("Job")
    assert len(jobs) == 2 and jobs[0].name != jobs[1].name  # each try its own Job
    # The retry's Job runs the same pods (same config: training resumes from its checkpoint).
    assert _without_try(jobs[0].body) == _without_try(jobs[1].body)
    received = jobs[1]
    job = received.body
    assert job["apiVersion"] == "batch/v1" and received.namespace == NAMESPACE
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 2
    assert spec["backoffLimit"] == 0  # a lost rank fails the collective: Airflow retries all
    pod_spec = spec["template"]["spec"]
    container = _check_pod_spec(pod_spec, cluster.settings, gpus=4, config_uri=staged["config_uri"])
    (service,) = api.received("Service")  # one Service, kept across the Job's tries
    name = service.name
    assert pod_spec["subdomain"] == name and received.name.startswith(f"job-{name}-")
    args = container["args"]
    assert args[args.index("--num_nodes") + 1] == "2" and args[args.index("--num_gpus") + 1] == "4"
    assert "--node_rank=$(JOB_COMPLETION_INDEX)" in args
    assert f"--master_addr=$(TRAIN_JOB_NAME)-0.{name}" in args
    hostfile = spec["template"]["metadata"]["annotations"][k8s_specs.HOSTFILE_ANNOTATION]
    assert hostfile.splitlines() == ["rank-0 slots=4", "rank-1 slots=4"]

    # The headless Service selects the Job's pods and was deleted after the Job.
    svc = service.body
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"]
    selector = svc["spec"]["selector"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()
    assert ("Service", NAMESPACE, name) in api.deleted

    # The Jobs' pods (made by the stand-in's Job controller) had their completion indexes.
    for job_received, phases in ((jobs[0], [SUCCEEDED, FAILED]), (jobs[1], [SUCCEEDED] * 2)):
        job_pods = api.job_pods(job_received.name)
        assert [p["spec"]["hostname"] for p in job_pods] == [
            f"{job_received.name}-{i}" for i in (0, 1)
        ]
        assert [api.pod_phases()[p["metadata"]["name"]] for p in job_pods] == phases
        for pod, last in zip(job_pods, phases, strict=True):
            assert api.phases_seen(pod["metadata"]["name"]) == [RUNNING, last]

    candidate = client.xcom(TRAIN, run_id, "announce_candidate")
    assert candidate["version_id"] == staged["version_id"]
    assert cluster.store().read_manifest(staged["prefix"]).fields["metrics"]["world_size"] == 8


def _without_try(job: dict) -> dict:
    """A Job's spec without what differs between tries (the try number label, names)."""
    template = job["spec"]["template"]
    labels = {k: v for k, v in template["metadata"]["labels"].items() if k != "try_number"}
    return {**template["spec"], "labels": labels}


def test_a_failing_pod_fails_the_run_with_its_error_and_publishes_nothing(cluster: Cluster):
    api, client = cluster.api, cluster.client
    api.play(FAILS, FAILS)
    run_id = "k8s__fails"
    done = cluster.run(run_id, cluster.conf(gpus_per_node=1))
    assert done["state"] == "failed"
    states = client.task_states(TRAIN, run_id)
    assert states["train_on_kubernetes"] == "failed"
    assert states["collect_kubernetes"] == states["announce_candidate"] == "upstream_failed"
    pods = [p for p in api.received("Pod") if p.body["metadata"]["labels"]["run_id"] == run_id]
    assert len(pods) == 2  # the first try and its retry; both kept for inspection
    assert all(api.phases_seen(p.name) == list(FAILS) for p in pods)
    log = client.task_log(TRAIN, run_id, "train_on_kubernetes", 2)
    # The error names the pod and carries its own last words (its termination message).
    assert f"returned a failure.\n{FAILURE_LOG}" in log, log[-3000:]
    staged = client.xcom(TRAIN, run_id, "stage_kubernetes")
    assert cluster.store().read_manifest(staged["prefix"]) is None


@pytest.mark.parametrize(
    ("params", "param"),
    [({"nodes": 0}, "nodes"), ({"gpus_per_node": 1.5}, "gpus_per_node"), ({"nodes": "2"}, "nodes")],
)
def test_a_bad_shape_is_refused_when_the_run_is_triggered(cluster: Cluster, params, param):
    with pytest.raises(AirflowAPIError) as exc:
        cluster.client.trigger(TRAIN, conf=cluster.conf(**params))
    assert param in str(exc.value)


def test_the_stand_in_api_serves_what_the_kubernetes_client_models_read():
    """The stand-in's bodies are shaped as the Kubernetes API's: the client's models read them
    back without losing a field."""
    from kubernetes.client import ApiClient

    client = ApiClient()
    with KubeApi() as api:
        api.play(SUCCEEDS)
        job = k8s_specs.serialize(
            k8s_specs.train_job(
                name="shape-check",
                nodes=2,
                gpus_per_node=1,
                config="s3://bucket/c.json",
                settings=Settings.from_env({"FRESHLM_STORE_URI": "s3://bucket/p"}),
            )
        )
        job["metadata"]["name"] = "job-shape-check-1"
        api._route("POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", {}, job)
        for _ in range(3):
            _, body, _ = api._route(
                "GET",
                f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/job-shape-check-1/status",
                {},
                None,
            )
        assert [c["type"] for c in body["status"]["conditions"]] == [
            "SuccessCriteriaMet",
            "Complete",
        ]
        assert _read_back(client, body, "V1Job") == _paths(body)
        _, pods, _ = api._route(
            "GET",
            f"/api/v1/namespaces/{NAMESPACE}/pods",
            {"labelSelector": f"{k8s_specs.JOB_NAME_LABEL}=job-shape-check-1"},
            None,
        )
        assert len(pods["items"]) == 2
        assert _read_back(client, pods, "V1PodList") == _paths(pods)
        code, missing, _ = api._route("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/nope", {}, None)
        assert code == 404
        assert _read_back(client, missing, "V1Status") == _paths(missing)


def _paths(doc: Any, prefix: str = "") -> set[str]:
    """Every key path in a JSON document (list items merged)."""
    if isinstance(doc, dict):
        return {p for k, v in doc.items() for p in {prefix + k} | _paths(v, prefix + k + ".")}
    if isinstance(doc, list):
        return {p for item in doc for p in _paths(item, prefix)}
    return set()


def _read_back(client: Any, doc: dict, model: str) -> set[str]:
    """The key paths left after the client's model reads ``doc`` and writes it again."""
    return _paths(client.sanitize_for_serialization(client._ApiClient__deserialize(doc, model)))
