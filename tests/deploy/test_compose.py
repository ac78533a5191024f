"""docker-compose.yaml, without a Docker engine: it is valid under the Compose specification's
JSON schema, and everything it names exists here — FreshLM settings, Dockerfiles and their
targets, the modules and Airflow commands its services run — and .env.example lists every
setting and every variable compose requires."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shlex

import jsonschema
import pytest
import yaml

from freshlm.settings import Settings

from .conftest import REPO, load_schema, load_script

COMPOSE_TEXT = (REPO / "docker-compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)  # merge keys (<<: *airflow-common) resolved
SERVICES = COMPOSE["services"]
SETTINGS_VARS = {f.metadata["env"] for f in dataclasses.fields(Settings)}
# The Airflow components of the official compose file, plus FreshLM's store and server.
EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "seaweedfs",
    "freshlm-store-init",
    "freshlm-serve",
}


def command_of(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_file_is_valid_under_the_compose_specification():
    validator = jsonschema.Draft7Validator(load_schema("compose-spec.json"))
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert not errors, errors


def test_the_schema_catches_a_misspelt_key():
    broken = yaml.safe_load(COMPOSE_TEXT)
    broken["services"]["freshlm-serve"]["helthcheck"] = broken["services"]["freshlm-serve"].pop(
        "healthcheck"
    )
    assert not jsonschema.Draft7Validator(load_schema("compose-spec.json")).is_valid(broken)


def test_the_stack_has_every_component():
    assert set(SERVICES) == EXPECTED_SERVICES
    assert SERVICES["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert command_of(SERVICES["seaweedfs"])[-1].count("weed server") == 1
    assert "-s3" in command_of(SERVICES["seaweedfs"])[-1].split()


def test_every_freshlm_variable_compose_sets_is_a_setting_and_parses():
    for name, service in SERVICES.items():
        env = service.get("environment", {})
        unknown = {k for k in env if k.startswith("FRESHLM_")} - SETTINGS_VARS
        assert not unknown, f"{name} sets variables freshlm.settings does not have: {unknown}"
        # Interpolated values parse as their defaults would; literal ones must parse as set.
        literal = {k: str(v) for k, v in env.items() if k.startswith("FRESHLM_") and "${" not in v}
        Settings.from_env({**literal, "FRESHLM_SERVE_TOKEN": "t" * 32})


def test_every_built_image_has_its_dockerfile_and_target():
    built = {name: s["build"] for name, s in SERVICES.items() if "build" in s}
    assert {"airflow-apiserver", "airflow-worker", "freshlm-serve"} <= set(built)
    for name, build in built.items():
        dockerfile = REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        if "target" in build:
            stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile.read_text(), re.M | re.I)
            assert build["target"] in stages, f"{name}: no stage {build['target']} in {dockerfile}"
    # The control plane's image carries no torch; the worker's and the server's do.
    assert SERVICES["airflow-scheduler"]["build"]["target"] == "control"
    assert SERVICES["freshlm-serve"]["build"]["target"] == "worker"


def test_every_python_command_names_an_importable_module_or_compiles():
    checked = 0
    for name, service in SERVICES.items():
        argv = command_of(service)
        if argv[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(argv[2]), f"{name}: no module {argv[2]}"
            checked += 1
        elif argv[:2] == ["python", "-c"]:
            compile(argv[2], f"<{name}>", "exec")
            checked += 1
    assert checked >= 2  # freshlm-serve and freshlm-store-init


def test_every_airflow_command_exists():
    from airflow.cli import cli_config

    core = {c.name for c in cli_config.core_commands}
    for name, service in SERVICES.items():
        argv = command_of(service)
        if service.get("entrypoint") or not argv or argv[0] == "python":
            continue
        if argv[0] == "celery":
            # `airflow celery worker` comes with the Celery provider of the official image.
            assert argv[1] == "worker"
            continue
        assert argv[0] in core, f"{name}: `airflow {argv[0]}` is not an Airflow command"


def test_env_example_is_generated_from_the_settings():
    generated = load_script("deploy/compose/env_example.py").render()
    assert (REPO / ".env.example").read_text() == generated, (
        "stale .env.example: run `.venv/bin/python deploy/compose/env_example.py > .env.example`"
    )
    listed = set(re.findall(r"^#?(FRESHLM_[A-Z0-9_]+)=", generated, re.M))
    assert listed == SETTINGS_VARS


def test_env_example_holds_every_variable_compose_requires_and_no_secret():
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", COMPOSE_TEXT))
    example = (REPO / ".env.example").read_text()
    set_there = dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", example, re.M))
    assert required <= set(set_there), required - set(set_there)
    for var in required:
        assert set_there[var] == "change-me", f"{var} in .env.example must be a placeholder"


@pytest.mark.parametrize("template", ["deploy/compose/slack.env.example"])
def test_slack_connection_template_is_a_placeholder(template):
    import json

    lines = [ln for ln in (REPO / template).read_text().splitlines() if ln.startswith("AIRFLOW")]
    var, _, value = lines[0].partition("=")
    assert var == "AIRFLOW_CONN_FRESHLM_SLACK"
    assert "change-me" in json.loads(value)["password"]


def test_dependencies_and_named_volumes_exist():
    declared = set(COMPOSE.get("volumes", {}))
    for name, service in SERVICES.items():
        assert set(service.get("depends_on", {})) <= set(SERVICES) - {name}, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, f"{name}: volume {source} is not declared"
