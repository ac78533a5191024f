"""deploy/helm/values.yaml against the official Apache Airflow chart's values.schema.json
(vendored, see schemas/PROVENANCE.md), and against FreshLM: its settings parse, its Secrets are
the templated ones, its image is built by docker/Dockerfile.airflow."""

from __future__ import annotations

import dataclasses
import re

import jsonschema
import yaml

from freshlm.settings import Settings

from .conftest import REPO, load_schema

VALUES_TEXT = (REPO / "deploy" / "helm" / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)
SECRETS = REPO / "deploy" / "k8s" / "templates" / "secrets.yaml"


def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(load_schema("airflow-chart-values.schema.json"))


def test_values_are_valid_under_the_chart_schema():
    errors = [f"{e.json_path}: {e.message}" for e in validator().iter_errors(VALUES)]
    assert not errors, errors


def test_the_schema_catches_a_misspelt_key():
    broken = yaml.safe_load(VALUES_TEXT)
    broken["workers"]["replica"] = broken["workers"].pop("replicas")
    assert not validator().is_valid(broken)


def test_executor_and_airflow_version_match_the_project():
    assert VALUES["executor"] == "CeleryExecutor"
    pin = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert VALUES["airflowVersion"] == pin.group(1)
    assert VALUES["dags"]["gitSync"]["enabled"] is False  # DAGs are baked into the image
    dockerfile = (REPO / "docker" / "Dockerfile.airflow").read_text()
    assert re.search(r"^FROM \S+ AS worker$", dockerfile, re.M)
    assert VALUES["images"]["airflow"]["repository"].endswith("freshlm-airflow-worker")


def test_freshlm_settings_are_known_and_parse():
    names = {f.metadata["env"] for f in dataclasses.fields(Settings)}
    env = {e["name"]: e["value"] for e in VALUES["env"]}
    freshlm = {k: v for k, v in env.items() if k.startswith("FRESHLM_")}
    assert set(freshlm) <= names, set(freshlm) - names
    settings = Settings.from_env(freshlm)
    assert settings.train_backend == "kubernetes"
    assert settings.store_uri.startswith("s3://")


def test_connections_and_credentials_come_from_the_templated_secrets():
    templated = {
        doc["metadata"]["name"]: set(doc["stringData"])
        for doc in yaml.safe_load_all(SECRETS.read_text())
    }
    for ref in VALUES["secret"]:
        assert ref["secretKey"] in templated[ref["secretName"]], ref
    assert {r["envName"] for r in VALUES["secret"]} >= {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "FRESHLM_SERVE_TOKEN",
        "AIRFLOW_CONN_FRESHLM_SLACK",
    }
    assert "change-me" not in VALUES_TEXT and "password:" not in VALUES_TEXT
