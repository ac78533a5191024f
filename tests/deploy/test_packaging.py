"""Packaging: pyproject's dependencies and extras carry requirements.txt's pins, the control
plane's extras hold no torch, the Airflow image is the pinned official one, and the Makefile
takes torch from PyTorch's CPU index unless TORCH_INDEX says otherwise."""

from __future__ import annotations

import re
import subprocess
import tomllib

from .conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def pins_of(requirements: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (REPO / requirements).read_text(), re.M))


PINS = pins_of("requirements.txt")
SELF = re.compile(r"^freshlm\[(.+)\]$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(extra: str) -> set[str]:
    """Every requirement an extra brings, its self-references (freshlm[k8s]) followed."""
    found = set(PROJECT["dependencies"])
    for req in EXTRAS[extra]:
        m = SELF.match(req)
        found |= {r for e in m.group(1).split(",") for r in closure(e)} if m else {req}
    return found


def test_every_declared_requirement_is_pinned_as_in_requirements_txt():
    pins = {canonical(k): v for k, v in {**pins_of("requirements-bench.txt"), **PINS}.items()}
    for req in PROJECT["dependencies"] + [r for rs in EXTRAS.values() for r in rs]:
        if SELF.match(req):
            continue
        name, version = req.split("==")
        assert pins.get(canonical(name)) == version, req


def test_extras_exist_and_the_control_plane_carries_no_torch():
    assert {"dags", "train", "serve", "k8s", "bench"} <= set(EXTRAS)
    control = {canonical(r.split("==")[0]) for r in closure("dags")}
    assert not control & {"torch", "deepspeed", "transformers", "vllm"}
    assert "apache-airflow" in control
    assert "torch" in {canonical(r.split("==")[0]) for r in closure("train")}


def test_airflow_image_is_the_pinned_official_one():
    text = (REPO / "docker" / "Dockerfile.airflow").read_text()
    version = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", text, re.M).group(1)
    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", text, re.M).group(1)
    assert version == PINS["apache-airflow"] and python == "3.11"
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS control" in text
    assert "-c constraints.txt" in text


def dry_run(*args: str) -> str:
    out = subprocess.run(
        ["make", "-n", "-B", "install", *args], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_makefile_takes_cpu_torch_unless_told_otherwise():
    default = dry_run()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in default
    assert '"torch==2.13.0+cpu"' in default  # a local CPU wheel first, with no network
    cuda = dry_run("TORCH_INDEX=https://download.pytorch.org/whl/cu130")
    assert "--extra-index-url https://download.pytorch.org/whl/cu130" in cuda
    assert "+cpu" not in cuda
