"""deploy/k8s/ without a cluster: every manifest validates against the Kubernetes OpenAPI schema
(kubernetes-validate, strict, as tests/training/test_k8s_specs.py does), and the names they share
with FreshLM's settings and the training and serving specs agree."""

from __future__ import annotations

import dataclasses

import kubernetes_validate
import pytest
import yaml

from freshlm.serving import k8s_specs as serve_specs
from freshlm.settings import Settings

from .conftest import REPO, load_script

K8S = REPO / "deploy" / "k8s"
MANIFESTS = sorted([*K8S.glob("*.yaml"), *K8S.glob("templates/*.yaml")])
# The oldest and newest Kubernetes minors we claim (as the training specs' tests).
K8S_VERSIONS = ("1.30", "1.37")
DEFAULTS = Settings.from_env({})


def docs(path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def by_kind(kind: str) -> list[dict]:
    return [d for p in MANIFESTS for d in docs(p) if d["kind"] == kind]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_validates_against_the_kubernetes_schema(path, version):
    for doc in docs(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_everything_lives_in_the_settings_namespace():
    (namespace,) = by_kind("Namespace")
    assert namespace["metadata"]["name"] == DEFAULTS.k8s_namespace
    for path in MANIFESTS:
        for doc in docs(path):
            ns = doc["metadata"].get("namespace")
            # Secret templates carry none: they are applied to both namespaces with -n.
            assert ns in {DEFAULTS.k8s_namespace, None} or doc["kind"] == "Namespace"


def test_training_role_lets_the_workers_launch_pods_jobs_and_services():
    (account,) = by_kind("ServiceAccount")
    assert account["metadata"]["name"] == DEFAULTS.k8s_service_account
    (role,) = by_kind("Role")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for group, resource, verbs in [
        ("", "pods", ("create", "get", "list", "watch", "delete")),
        ("", "pods/log", ("get",)),
        ("batch", "jobs", ("create", "get", "list", "watch", "delete")),
        ("", "services", ("create", "get", "list", "watch", "delete")),
    ]:
        missing = [v for v in verbs if (group, resource, v) not in granted]
        assert not missing, f"{resource}: {missing}"
    (binding,) = by_kind("RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    helm = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    bound = {(s["namespace"], s["name"]) for s in binding["subjects"]}
    assert ("airflow", helm["workers"]["serviceAccount"]["name"]) in bound


def test_secret_templates_are_the_secrets_the_specs_reference_and_hold_no_secret():
    secrets = {s["metadata"]["name"]: s["stringData"] for s in by_kind("Secret")}
    assert set(secrets) == {
        DEFAULTS.k8s_store_secret,
        serve_specs.TOKEN_SECRET,
        serve_specs.SLACK_SECRET,
    }
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(secrets[DEFAULTS.k8s_store_secret])
    assert set(secrets[serve_specs.TOKEN_SECRET]) == {"token"}
    assert set(secrets[serve_specs.SLACK_SECRET]) == {"conn"}
    for name, data in secrets.items():
        for key, value in data.items():
            assert value in {"", "change-me"} or "change-me" in value, f"{name}.{key}"


def test_serve_manifest_is_the_serving_specs_output():
    assert (K8S / "serve.yaml").read_text() == load_script("deploy/k8s/render_serve.py").render(), (
        "stale deploy/k8s/serve.yaml: run "
        "`.venv/bin/python deploy/k8s/render_serve.py > deploy/k8s/serve.yaml`"
    )
    (deployment,) = by_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "freshlm.serving"]
    env = {e["name"] for e in container["env"]}
    assert {f.metadata["env"] for f in dataclasses.fields(Settings)} >= {
        n for n in env if n.startswith("FRESHLM_")
    }
