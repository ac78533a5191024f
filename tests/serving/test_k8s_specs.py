"""The server's Deployment and Service validate against the Kubernetes OpenAPI schema (strict:
unknown fields fail) and carry what a zero-downtime rollout needs."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from freshlm.serving import k8s_specs
from freshlm.settings import Settings

K8S_VERSIONS = ("1.30", "1.37")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env(
        {
            "FRESHLM_HOME": str(tmp_path),
            "FRESHLM_STORE_URI": "s3://freshlm-data/nightly",
            "FRESHLM_K8S_GPU_NODE_SELECTOR": "pool=gpu",
        }
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("gpus", [0, 1])
def test_deployment_and_service_validate_against_the_schema(settings, version, gpus):
    kubernetes_validate.validate(k8s_specs.deployment(settings, gpus=gpus), version, strict=True)
    kubernetes_validate.validate(k8s_specs.service(settings), version, strict=True)


def test_the_rollout_never_removes_a_ready_pod_before_its_replacement_answers(settings):
    spec = k8s_specs.deployment(settings)["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["command"] == ["python", "-m", "freshlm.serving"]
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}
    assert spec["selector"]["matchLabels"] == pod_labels(spec)
    service = k8s_specs.service(settings)["spec"]
    assert service["selector"] == pod_labels(spec)
    assert service["ports"][0]["targetPort"] == container["ports"][0]["name"]


def pod_labels(spec: dict) -> dict:
    return spec["template"]["metadata"]["labels"]


def test_secrets_travel_by_reference_only(settings):
    env = k8s_specs.deployment(settings)["spec"]["template"]["spec"]["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    assert "value" not in by_name["FRESHLM_SERVE_TOKEN"]
    assert (
        by_name["FRESHLM_SERVE_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "freshlm-serve-token"
    )
    assert "value" not in by_name["AWS_SECRET_ACCESS_KEY"]
    # The server binds beyond loopback, so the embedded token would be refused: it needs its own.
    assert by_name["FRESHLM_SERVE_HOST"]["value"] == "0.0.0.0"


def test_gpu_pods_ask_for_gpus_and_tolerate_their_taints(settings):
    pod = k8s_specs.deployment(settings, gpus=1)["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_the_cli_prints_both_documents_and_refuses_nonsense(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FRESHLM_HOME", str(tmp_path))
    assert k8s_specs.main(["--replicas", "3"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in docs] == ["Deployment", "Service"]
    assert docs[0]["spec"]["replicas"] == 3
    assert k8s_specs.main(["--replicas", "0"]) == 2
    assert "replicas 0" in capsys.readouterr().err
