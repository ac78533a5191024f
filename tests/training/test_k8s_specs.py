"""The kubernetes training backend, offline: its pod, Job and Service validate against the
Kubernetes OpenAPI schema (kubernetes-validate's JSON schemas, strict: unknown fields fail), and
carry the GPUs, /dev/shm, secret references, command and rank wiring that training needs.

No cluster is reachable here, so rank wiring is proven two ways: by expanding ``$(VAR)`` in the
Job's args the way the kubelet does for each completion index, and by running the real
``deepspeed`` launcher on CPU with those expanded args and the hostfile the pod would mount.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
import yaml

from freshlm.settings import Settings, SettingsError
from training import k8s_operators, k8s_specs
from training.k8s_specs import K8sSpecError, serialize

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile.train-gpu"
# The oldest and newest Kubernetes minors we claim; kubernetes-validate 1.37.0 ships 1.25-1.37.
K8S_VERSIONS = ("1.30", "1.37")
STORE = "s3://freshlm-data/nightly"
CONFIG = "/work/config.json"
SECRET_SENTINEL = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSENTINELKEY"


def make_settings(**env: str) -> Settings:
    return Settings.from_env({"FRESHLM_STORE_URI": STORE, **env})


@pytest.fixture
def settings() -> Settings:
    return make_settings(
        FRESHLM_S3_ENDPOINT_URL="http://seaweed.storage.svc:8333",
        FRESHLM_K8S_NAMESPACE="ml-train",
        FRESHLM_K8S_SERVICE_ACCOUNT="freshlm-trainer",
        FRESHLM_K8S_GPU_NODE_SELECTOR="nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3,pool=train",
        FRESHLM_K8S_GPU_TOLERATIONS="nvidia.com/gpu:NoSchedule,dedicated=training:NoExecute,spot",
        FRESHLM_K8S_STORE_SECRET="store-creds",
        FRESHLM_K8S_SHM_SIZE="32Gi",
        FRESHLM_K8S_MEMORY_REQUEST="256Gi",
        FRESHLM_K8S_CPU_REQUEST="48",
        FRESHLM_K8S_TRAIN_IMAGE="registry.example.com:5000/ml/freshlm-train-gpu:1.2.3",
    )


def pod_json(settings: Settings, gpus: int = 8, **kw: Any) -> dict:
    pod = k8s_specs.train_pod(
        name="freshlm-train", gpus=gpus, config=CONFIG, settings=settings, **kw
    )
    return serialize(pod)


def job_json(settings: Settings, nodes: int = 3, gpus: int = 8, **kw: Any) -> dict:
    job = k8s_specs.train_job(
        name="freshlm-ft",
        nodes=nodes,
        gpus_per_node=gpus,
        config=CONFIG,
        settings=settings,
        **kw,
    )
    return serialize(job)


def container(obj: dict) -> dict:
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Job" else obj["spec"]
    (only,) = spec["containers"]
    return only


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"] if obj["kind"] == "Job" else obj["spec"]


def env_by_name(obj: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(obj)["env"]}


def validate(obj: dict, version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


# --- schema ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("kind", ["pod", "job", "service"])
def test_specs_validate_against_the_kubernetes_schema(settings, kind, version):
    obj = {
        "pod": lambda: pod_json(settings),
        "job": lambda: job_json(settings),
        "service": lambda: serialize(k8s_specs.rank_service(name="freshlm-ft", settings=settings)),
    }[kind]()
    validate(obj, version)


def test_default_settings_specs_validate_too():
    s = make_settings()
    for obj in (pod_json(s, gpus=1), job_json(s, nodes=2, gpus=1)):
        validate(obj, K8S_VERSIONS[-1])


def test_the_schema_check_has_teeth(settings):
    bad = pod_json(settings)
    pod_spec(bad)["volumes"][0]["emptyDir"]["medium"] = {"not": "a string"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad, K8S_VERSIONS[-1])
    unknown = job_json(settings)
    container(unknown)["gpus"] = 8  # strict: a field Kubernetes does not know is an error
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(unknown, K8S_VERSIONS[-1])


# --- the single pod -----------------------------------------------------------------------------


def test_pod_command_is_the_deepspeed_entrypoint_exactly(settings):
    c = container(pod_json(settings, gpus=4, train_args=["--dataset-id", "ds-9f2c"]))
    assert c["command"] == ["deepspeed"]
    assert c["args"] == [
        "--num_gpus",
        "4",
        "training/train.py",
        "--config",
        CONFIG,
        "--dataset-id",
        "ds-9f2c",
    ]
    assert c["workingDir"] == k8s_specs.IMAGE_WORKDIR
    assert c["image"] == "registry.example.com:5000/ml/freshlm-train-gpu:1.2.3"


@pytest.mark.parametrize("make", [pod_json, job_json])
def test_gpus_are_requested_and_limited(settings, make):
    c = container(make(settings, gpus=8))
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "8"
    assert c["resources"]["requests"]["cpu"] == "48"
    assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"] == "256Gi"


def test_gpu_resource_name_comes_from_settings():
    c = container(pod_json(make_settings(FRESHLM_K8S_GPU_RESOURCE="amd.com/gpu"), gpus=2))
    assert c["resources"]["limits"]["amd.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in c["resources"]["limits"]


@pytest.mark.parametrize("make", [pod_json, job_json])
def test_dev_shm_is_a_memory_backed_empty_dir(settings, make):
    obj = make(settings)
    volumes = {v["name"]: v for v in pod_spec(obj)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(obj)["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}


@pytest.mark.parametrize("make", [pod_json, job_json])
def test_scheduling_identity_and_restart_policy_come_from_settings(settings, make):
    obj = make(settings)
    spec = pod_spec(obj)
    assert obj["metadata"]["namespace"] == "ml-train"
    assert spec["serviceAccountName"] == "freshlm-trainer"
    assert spec["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "pool": "train",
    }
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "training", "effect": "NoExecute"},
        {"key": "spot", "operator": "Exists"},
    ]
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container(obj)["securityContext"]["allowPrivilegeEscalation"] is False


def test_no_node_selector_and_no_tolerations_when_switched_off():
    spec = pod_json(make_settings(FRESHLM_K8S_GPU_TOLERATIONS="none"))["spec"]
    assert "nodeSelector" not in spec and "tolerations" not in spec


# --- Pod Security "restricted" ---------------------------------------------------------------

# The volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def pod_security_violations(spec: dict) -> list[str]:
    """What keeps a pod spec from the "restricted" Pod Security Standard (Kubernetes docs,
    Pod Security Standards), plus the hardening FreshLM adds on top; empty when it complies."""
    problems = []
    pod_sc = spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"{key} is set")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} is of type {sorted(kinds)}")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("the service-account token is mounted")
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        name = c["name"]
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{name}: runs as uid 0")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {caps['add']}")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is {seccomp.get('type')!r}")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: the root filesystem is writable")
    return problems


def test_the_restricted_check_has_teeth(settings):
    spec = pod_spec(pod_json(settings))
    spec["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False}
    spec["securityContext"].pop("seccompProfile")
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    problems = pod_security_violations(spec)
    assert "train: capabilities do not drop ALL" in problems
    assert "train: seccompProfile is None" in problems
    assert "volume host is of type ['hostPath']" in problems


@pytest.mark.parametrize("make", [pod_json, job_json])
def test_pods_meet_pod_security_restricted_with_a_read_only_root(settings, make):
    obj = make(settings)
    spec = pod_spec(obj)
    assert pod_security_violations(spec) == []
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(obj)
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # With the root read-only, every place training writes is on the bounded scratch volume.
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["scratch"]["emptyDir"] == {"sizeLimit": "100Gi"}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/tmp"] == {"name": "scratch", "mountPath": "/tmp", "subPath": "tmp"}
    assert mounts["/scratch"]["name"] == "scratch"
    env = {e["name"]: e.get("value") for e in c["env"]}
    for var in ("HOME", "XDG_CACHE_HOME", "TORCH_EXTENSIONS_DIR", "TRITON_CACHE_DIR", "HF_HOME"):
        assert env[var].startswith("/scratch/"), var
    assert env["TMPDIR"] == "/tmp"
    assert c["resources"]["requests"]["ephemeral-storage"] == "100Gi"
    # A pod or Job whose Airflow task is gone is still stopped by Kubernetes.
    assert spec["activeDeadlineSeconds"] == k8s_specs.DEFAULT_ACTIVE_DEADLINE_S
    if obj["kind"] == "Job":
        assert obj["spec"]["activeDeadlineSeconds"] == k8s_specs.DEFAULT_ACTIVE_DEADLINE_S
    validate(obj, K8S_VERSIONS[0])


def test_scratch_size_and_deadline_are_configurable(settings):
    s = make_settings(FRESHLM_K8S_SCRATCH_SIZE="500Gi")
    pod = pod_json(s, active_deadline_seconds=3600)
    assert pod_spec(pod)["activeDeadlineSeconds"] == 3600
    assert container(pod)["resources"]["requests"]["ephemeral-storage"] == "500Gi"
    job = job_json(s, active_deadline_seconds=7200)
    assert job["spec"]["activeDeadlineSeconds"] == pod_spec(job)["activeDeadlineSeconds"] == 7200
    with pytest.raises(K8sSpecError, match="active_deadline_seconds=0 is invalid"):
        pod_json(s, active_deadline_seconds=0)


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [pod_json, job_json])
def test_store_credentials_only_by_secret_reference(settings, make, monkeypatch):
    # Even with real credentials in the environment building the spec, none reach it.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASENTINEL00000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_SENTINEL)
    obj = make(settings)
    text = json.dumps(obj)
    assert SECRET_SENTINEL not in text and "AKIASENTINEL" not in text

    env = env_by_name(obj)
    for key, required in [
        ("AWS_ACCESS_KEY_ID", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("AWS_SESSION_TOKEN", False),
    ]:
        assert "value" not in env[key]
        assert env[key]["valueFrom"] == {
            "secretKeyRef": {"name": "store-creds", "key": key, "optional": not required}
        }
    # No plain value anywhere looks like a credential, and envFrom does not pull a whole Secret.
    plain = {e["name"] for e in container(obj)["env"] if "value" in e}
    assert not {n for n in plain if re.search(r"SECRET|TOKEN|PASSWORD|KEY", n)}
    assert "envFrom" not in container(obj)
    assert env["FRESHLM_STORE_URI"] == {"name": "FRESHLM_STORE_URI", "value": STORE}
    assert env["FRESHLM_S3_ENDPOINT_URL"]["value"] == "http://seaweed.storage.svc:8333"


def test_endpoint_is_left_out_for_aws():
    assert "FRESHLM_S3_ENDPOINT_URL" not in env_by_name(pod_json(make_settings()))


# --- the indexed Job and its Service --------------------------------------------------------------


def test_job_is_indexed_with_one_pod_per_node(settings):
    job = job_json(settings, nodes=3, backoff_limit=1, ttl_seconds_after_finished=600)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3
    assert spec["backoffLimit"] == 1
    assert spec["ttlSecondsAfterFinished"] == 600
    assert "selector" not in spec  # generated by Kubernetes
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert job_json(settings)["spec"]["backoffLimit"] == 0


def test_job_command_is_deepspeed_no_ssh_with_ranks_from_kubernetes(settings):
    c = container(job_json(settings, nodes=3, gpus=8))
    assert c["command"] == ["deepspeed"]
    assert c["args"] == [
        "--hostfile",
        "/etc/freshlm/deepspeed/hostfile",
        "--no_ssh",
        "--num_nodes",
        "3",
        "--num_gpus",
        "8",
        "--node_rank=$(JOB_COMPLETION_INDEX)",
        "--master_addr=$(TRAIN_JOB_NAME)-0.freshlm-ft",
        "--master_port=29500",
        "training/train.py",
        "--config",
        CONFIG,
    ]
    env = env_by_name(job_json(settings))
    assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert env["TRAIN_JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/job-name']"
    )


def test_headless_service_gives_rank_zero_a_dns_name(settings):
    job = job_json(settings)
    service = serialize(k8s_specs.rank_service(name="freshlm-ft", settings=settings))
    validate(service, K8S_VERSIONS[-1])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["metadata"]["namespace"] == job["metadata"]["namespace"]
    # The pods are the Service's endpoints, and their subdomain is the Service: pod i of Job J
    # has hostname J-i, so it resolves as J-i.<service>.
    template_labels = job["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()
    assert pod_spec(job)["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["ports"][0]["port"] == k8s_specs.MASTER_PORT


def kubelet_expand(arg: str, env: dict[str, str]) -> str:
    """``$(VAR)`` expansion as the kubelet does it for args (``$$`` is a literal ``$``)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        arg,
    )


def downward_env(job: dict, index: int, job_name: str) -> dict[str, str]:
    """The env a pod of the Job sees: fieldRefs resolved as the Job controller labels pods."""
    annotations = {**job["spec"]["template"]["metadata"]["annotations"]}
    annotations["batch.kubernetes.io/job-completion-index"] = str(index)
    labels = {**job["spec"]["template"]["metadata"]["labels"]}
    labels["batch.kubernetes.io/job-name"] = job_name
    env = {}
    for e in container(job)["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "fieldRef" in e["valueFrom"]:
            m = re.fullmatch(
                r"metadata\.(labels|annotations)\['(.+)'\]", e["valueFrom"]["fieldRef"]["fieldPath"]
            )
            env[e["name"]] = (labels if m.group(1) == "labels" else annotations)[m.group(2)]
    return env


def test_every_rank_points_at_the_first_pod_through_the_service(settings):
    job = job_json(settings, nodes=4)
    job_name = "job-freshlm-ft-x7k2p9qa"  # what the Airflow operator names it
    # The Job controller names pod 0's host <job>-0; under the subdomain it is <job>-0.<service>.
    rank_zero_dns = f"{job_name}-0.{pod_spec(job)['subdomain']}"
    for index in range(4):
        env = downward_env(job, index, job_name)
        args = [kubelet_expand(a, env) for a in container(job)["args"]]
        assert f"--node_rank={index}" in args
        assert f"--master_addr={rank_zero_dns}" in args
        assert args[args.index("--num_nodes") + 1] == "4"


def test_hostfile_reaches_the_launcher_through_the_downward_api(settings):
    job = job_json(settings, nodes=3, gpus=8)
    annotation = job["spec"]["template"]["metadata"]["annotations"][k8s_specs.HOSTFILE_ANNOTATION]
    assert annotation == "rank-0 slots=8\nrank-1 slots=8\nrank-2 slots=8\n"
    (volume,) = [v for v in pod_spec(job)["volumes"] if "downwardAPI" in v]
    (item,) = volume["downwardAPI"]["items"]
    assert (
        item["fieldRef"]["fieldPath"] == f"metadata.annotations['{k8s_specs.HOSTFILE_ANNOTATION}']"
    )
    (mount,) = [m for m in container(job)["volumeMounts"] if m["name"] == volume["name"]]
    args = container(job)["args"]
    assert args[args.index("--hostfile") + 1] == f"{mount['mountPath']}/{item['path']}"


@pytest.mark.slow
def test_real_deepspeed_launcher_gives_each_pod_its_global_ranks(settings, tmp_path):
    """Pod 1 of 2 with 2 GPUs each, through the real launcher (CPU): ranks 2 and 3 of 4."""
    job = job_json(settings, nodes=2, gpus=2)
    job_name = "job-freshlm-ft-x7k2p9qa"
    env = downward_env(job, 1, job_name)
    hostfile = tmp_path / "hostfile"
    hostfile.write_text(
        job["spec"]["template"]["metadata"]["annotations"][k8s_specs.HOSTFILE_ANNOTATION]
    )
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os, sys\n"
        "keys = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')\n"
        "record = {**{k: os.environ[k] for k in keys}, 'argv': sys.argv[1:]}\n"
        f"path = os.path.join({str(tmp_path)!r}, 'rank-' + os.environ['RANK'] + '.json')\n"
        "open(path, 'w').write(json.dumps(record))\n"
    )
    args = [kubelet_expand(a, env) for a in container(job)["args"]]
    args[args.index("--hostfile") + 1] = str(hostfile)
    args[args.index(k8s_specs.ENTRYPOINT)] = str(probe)
    launcher = Path(sys.executable).with_name("deepspeed")
    clean_env = {k: v for k, v in os.environ.items() if not k.endswith("VISIBLE_DEVICES")}
    done = subprocess.run(
        [str(launcher), *args], capture_output=True, text=True, timeout=120, env=clean_env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Each rank writes its own file: the two ranks share the launcher's stdout.
    ranks = [json.loads(f.read_text()) for f in sorted(tmp_path.glob("rank-*.json"))]
    assert [r["RANK"] for r in ranks] == ["2", "3"]
    assert {r["WORLD_SIZE"] for r in ranks} == {"4"}
    assert {r["MASTER_ADDR"] for r in ranks} == {f"{job_name}-0.freshlm-ft"}
    assert {r["MASTER_PORT"] for r in ranks} == {"29500"}
    assert all(r["argv"][-2:] == ["--config", CONFIG] for r in ranks)


# --- values that would be expanded or mangled --------------------------------------------------


def test_literal_dollars_are_escaped_so_kubernetes_expands_nothing(settings):
    c = container(pod_json(settings, train_args=["--note", "$(AWS_SECRET_ACCESS_KEY) costs $5"]))
    assert c["args"][-1] == "$$(AWS_SECRET_ACCESS_KEY) costs $$5"
    assert kubelet_expand(c["args"][-1], {"AWS_SECRET_ACCESS_KEY": "x"}) == (
        "$(AWS_SECRET_ACCESS_KEY) costs $5"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Train_Job"}, "name='Train_Job' is invalid"),
        ({"name": "x" * 41}, "at most 40 characters"),
        ({"gpus": 0}, "gpus=0 is invalid: expected a positive integer"),
        ({"gpus": True}, "gpus=True is invalid"),
        ({"config": ""}, "config='' is invalid"),
        ({"config": "a\nb"}, "is invalid: expected a path or URI on one line"),
        ({"train_args": "--epochs 3"}, "expected a list of strings, one per argument"),
        ({"train_args": ["--epochs", 3]}, "expected a list of strings"),
    ],
)
def test_invalid_pod_inputs_are_refused_clearly(settings, kwargs, message):
    args = {"name": "freshlm-train", "gpus": 1, "config": CONFIG, **kwargs}
    with pytest.raises(K8sSpecError, match=re.escape(message)):
        k8s_specs.train_pod(settings=settings, **args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": 0}, "nodes=0 is invalid"),
        ({"gpus_per_node": -1}, "gpus_per_node=-1 is invalid"),
        ({"backoff_limit": -1}, "backoff_limit=-1 is invalid"),
        ({"master_port": 70000}, "master_port=70000 is invalid"),
    ],
)
def test_invalid_job_inputs_are_refused_clearly(settings, kwargs, message):
    args = {"name": "freshlm-ft", "nodes": 2, "gpus_per_node": 8, "config": CONFIG, **kwargs}
    with pytest.raises(K8sSpecError, match=re.escape(message)):
        k8s_specs.train_job(settings=settings, **args)


def test_a_local_store_is_refused_for_pods():
    with pytest.raises(K8sSpecError, match=r"FRESHLM_STORE_URI='file:///.*needs an s3://"):
        pod_json(Settings.from_env({"FRESHLM_STORE_URI": "file:///srv/store"}))


def test_shm_must_fit_in_the_memory_limit():
    s = make_settings(FRESHLM_K8S_SHM_SIZE="64Gi", FRESHLM_K8S_MEMORY_REQUEST="64000Mi")
    with pytest.raises(K8sSpecError, match="FRESHLM_K8S_SHM_SIZE='64Gi' must be smaller than"):
        pod_json(s)


def test_quantities():
    assert k8s_specs.quantity("16Gi") == 16 * 2**30
    assert k8s_specs.quantity("500m") * 1000 == 500
    assert k8s_specs.quantity("1.5G") == 1_500_000_000
    assert k8s_specs.quantity("1e3") == 1000


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "value", "accepts"),
    [
        ("FRESHLM_K8S_GPU_NODE_SELECTOR", "gpu", "key=value,key2=value2"),
        ("FRESHLM_K8S_GPU_NODE_SELECTOR", "a=b,a=c", "'a' is given twice"),
        ("FRESHLM_K8S_GPU_NODE_SELECTOR", "pool=has space", "'pool=has space' is not a valid"),
        ("FRESHLM_K8S_GPU_TOLERATIONS", "nvidia.com/gpu:Never", "effect one of NoSchedule"),
        ("FRESHLM_K8S_GPU_TOLERATIONS", "bad key:NoSchedule", "'bad key:NoSchedule' is not"),
        ("FRESHLM_K8S_SHM_SIZE", "lots", "a Kubernetes quantity such as"),
        ("FRESHLM_K8S_MEMORY_REQUEST", "64GB", "a Kubernetes quantity such as"),
        ("FRESHLM_K8S_CPU_REQUEST", "-1", "a Kubernetes quantity such as"),
        ("FRESHLM_K8S_NAMESPACE", "ML_Train", "a Kubernetes name"),
        ("FRESHLM_K8S_SERVICE_ACCOUNT", "trainer!", "a Kubernetes object name"),
        ("FRESHLM_K8S_STORE_SECRET", "Store Creds", "a Kubernetes object name"),
        ("FRESHLM_K8S_TRAIN_IMAGE", "my image:tag", "a container image reference"),
        ("FRESHLM_K8S_GPU_RESOURCE", "gpu", "an extended resource name with a vendor domain"),
        ("FRESHLM_K8S_GPU_RESOURCE", "kubernetes.io/gpu", "with a vendor domain"),
    ],
)
def test_invalid_k8s_settings_name_the_variable(var, value, accepts):
    with pytest.raises(SettingsError) as err:
        make_settings(**{var: value})
    assert str(err.value).startswith(f"{var}={value!r} is invalid: expected ")
    assert accepts in str(err.value)


def test_k8s_settings_round_trip_through_the_environment(settings):
    assert Settings.from_env(settings.as_env()) == settings
    off = make_settings(FRESHLM_K8S_GPU_TOLERATIONS="none")
    assert off.k8s_gpu_tolerations is None
    assert Settings.from_env(off.as_env()) == off


def test_k8s_setting_defaults():
    s = make_settings()
    assert s.k8s_gpu_resource == "nvidia.com/gpu"
    assert s.k8s_gpu_node_selector is None
    assert [tuple(t) for t in s.k8s_gpu_tolerations] == [
        ("nvidia.com/gpu", "Exists", None, "NoSchedule")
    ]


# --- operators ---------------------------------------------------------------------------------


def test_pod_operator_carries_the_spec_without_a_cluster(settings):
    op = k8s_operators.train_pod_operator(
        task_id="train", name="freshlm-train", gpus=8, config=CONFIG, settings=settings
    )
    assert op.cmds == ["deepspeed"]
    assert op.arguments == ["--num_gpus", "8", "training/train.py", "--config", CONFIG]
    assert op.namespace == "ml-train" and op.base_container_name == "train"
    pod = serialize(op.build_pod_request_obj(dry_run=True))
    validate(pod, K8S_VERSIONS[-1])
    assert pod["metadata"]["name"].startswith("freshlm-train-")
    assert container(pod)["args"] == op.arguments
    assert container(pod)["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert env_by_name(pod)["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == (
        "store-creds"
    )
    assert pod["spec"]["serviceAccountName"] == "freshlm-trainer"
    assert pod["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in pod["spec"]["volumes"])
    assert pod_security_violations(pod["spec"]) == []


def test_job_operator_builds_the_indexed_job_without_a_cluster(settings):
    op = k8s_operators.train_job_operator(
        task_id="train_multinode",
        name="freshlm-ft",
        nodes=2,
        gpus_per_node=8,
        config=CONFIG,
        train_args=["--dataset-id", "{{ params.dataset_id }}"],
        settings=settings,
    )
    assert (op.completion_mode, op.completions, op.parallelism) == ("Indexed", 2, 2)
    assert op.wait_until_job_complete is True
    # Building the request asks the hook whether Airflow runs in-cluster: answer offline.
    op.__dict__["hook"] = SimpleNamespace(is_in_cluster=False, get_namespace=lambda: None)
    job = serialize(op.build_job_request_obj())
    validate(job, K8S_VERSIONS[-1])
    assert job["metadata"]["name"].startswith("job-freshlm-ft-")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    spec = pod_spec(job)
    assert spec["subdomain"] == "freshlm-ft" and spec["restartPolicy"] == "Never"
    assert len(spec["containers"]) == 1
    c = container(job)
    assert c["args"][-2:] == ["--dataset-id", "{{ params.dataset_id }}"]  # rendered by Airflow
    assert "--node_rank=$(JOB_COMPLETION_INDEX)" in c["args"]
    assert {"JOB_COMPLETION_INDEX", "TRAIN_JOB_NAME", "AWS_SECRET_ACCESS_KEY"} <= {
        e["name"] for e in c["env"]
    }
    names = [v["name"] for v in spec["volumes"]]
    assert sorted(names) == ["dshm", "hostfile", "scratch"]  # merged once, not twice
    assert pod_security_violations(spec) == []
    assert job["spec"]["activeDeadlineSeconds"] == k8s_specs.DEFAULT_ACTIVE_DEADLINE_S
    assert job["spec"]["template"]["metadata"]["annotations"][k8s_specs.HOSTFILE_ANNOTATION]


def test_service_operators_carry_the_headless_service(settings):
    create = k8s_operators.rank_service_create_operator(
        task_id="rank_service", name="freshlm-ft", settings=settings
    )
    delete = k8s_operators.rank_service_delete_operator(
        task_id="rank_service_down", name="freshlm-ft", settings=settings, trigger_rule="all_done"
    )
    for op in (create, delete):
        service = yaml.safe_load(op.yaml_conf)
        validate(service, K8S_VERSIONS[-1])
        assert service == serialize(k8s_specs.rank_service(name="freshlm-ft", settings=settings))
    assert delete.trigger_rule == "all_done"


def test_staged_pod_operator_runs_the_rendered_pod_deferred(settings):
    pod_dict = pod_json(settings, gpus=4)
    op = k8s_operators.staged_train_pod_operator(
        task_id="train", pod_manifest=pod_dict, namespace="ml-train"
    )
    assert op.deferrable is True and op.log_events_on_failure is True
    assert op.base_container_name == "train"
    assert op.on_finish_action.value == "delete_succeeded_pod"
    pod = serialize(op.build_pod_request_obj(dry_run=True))
    validate(pod, K8S_VERSIONS[-1])
    assert container(pod)["args"] == container(pod_dict)["args"]
    assert container(pod)["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert pod_security_violations(pod["spec"]) == []


def test_staged_job_operator_sends_the_rendered_job_whole(settings):
    job_dict = job_json(settings)
    op = k8s_operators.staged_train_job_operator(task_id="train_job", job_manifest=job_dict)
    assert op.deferrable is True and op.wait_until_job_complete is True
    # What execute() does before it creates the Job: take the rendered dict's fields.
    job = k8s_operators.ApiClient()._ApiClient__deserialize(job_dict, "V1Job")
    for field, value in k8s_operators.job_operator_fields(job).items():
        setattr(op, field, value)
    op.__dict__["hook"] = SimpleNamespace(is_in_cluster=False, get_namespace=lambda: None)
    sent = serialize(op.build_job_request_obj())
    validate(sent, K8S_VERSIONS[-1])
    assert sent["metadata"]["name"].startswith(f"job-{job_dict['metadata']['name']}-")
    for key in ("completionMode", "completions", "parallelism", "backoffLimit"):
        assert sent["spec"][key] == job_dict["spec"][key], key
    assert pod_spec(sent)["volumes"] == pod_spec(job_dict)["volumes"]
    assert container(sent)["args"] == container(job_dict)["args"]
    assert pod_security_violations(pod_spec(sent)) == []


def test_staged_job_operator_refuses_a_manifest_that_is_not_a_dict():
    op = k8s_operators.staged_train_job_operator(task_id="train_job", job_manifest="{{ x }}")
    with pytest.raises(TypeError, match="render templates as native objects"):
        op.execute({})


def test_operator_factories_refuse_bad_input_at_dag_parse_time(settings):
    with pytest.raises(K8sSpecError, match="gpus=0"):
        k8s_operators.train_pod_operator(
            task_id="t", name="freshlm-train", gpus=0, config=CONFIG, settings=settings
        )


# --- the training image ------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_pins_the_same_torch_as_requirements():
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    requirements = (REPO / "requirements.txt").read_text()
    (torch_pin,) = re.findall(r"^torch==(\S+)$", requirements, re.M)
    assert args["TORCH_VERSION"] == torch_pin
    runs = [a for k, a in instructions if k == "RUN"]
    torch_run = next(r for r in runs if '"torch==${TORCH_VERSION}"' in r)
    assert 'grep -qx "torch==${TORCH_VERSION}" requirements.txt' in torch_run
    assert "-c constraints.txt" in torch_run
    # A CUDA base image whose major version matches PyPI's CUDA 13 build of torch.
    (base,) = [a for k, a in instructions if k == "FROM"]
    assert base == "${CUDA_IMAGE}"
    assert re.fullmatch(r"nvidia/cuda:13\.\d+\.\d+-cudnn-devel-ubuntu22\.04", args["CUDA_IMAGE"])


def test_dockerfile_installs_the_repo_requirements_and_deepspeed_like_the_makefile():
    instructions = dockerfile_instructions()
    runs = [a for k, a in instructions if k == "RUN"]
    copies = [a for k, a in instructions if k == "COPY"]
    assert "requirements.txt constraints.txt ./" in copies
    rest = next(r for r in runs if "requirements-rest.txt" in r)
    assert "grep -v -E '^(torch|deepspeed)==' requirements.txt" in rest
    assert "pip install -r /tmp/requirements-rest.txt -c constraints.txt" in rest
    ds = next(r for r in runs if "deepspeed==" in r)
    assert "--no-build-isolation" in ds and "-c constraints.txt" in ds
    assert "$(grep '^deepspeed==' requirements.txt)" in ds
    assert any("python3.11 -m venv" in r for r in runs)
    assert "training/ training/" in copies and "freshlm/ freshlm/" in copies


def test_dockerfile_runs_deepspeed_as_the_pods_non_root_user_in_the_repo_root():
    instructions = dockerfile_instructions()
    assert ("WORKDIR", k8s_specs.IMAGE_WORKDIR) in instructions
    (user,) = [a for k, a in instructions if k == "USER"]
    assert user.split(":")[0] == str(k8s_specs.RUN_AS_UID)
    (entrypoint,) = [a for k, a in instructions if k == "ENTRYPOINT"]
    assert json.loads(entrypoint) == [k8s_specs.LAUNCHER]
    assert (REPO / k8s_specs.ENTRYPOINT).parent.is_dir()
