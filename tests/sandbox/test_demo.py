"""`make demo`'s program: brings up the world and a real Airflow, prints a working login."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from freshlm.airflow_client import AirflowClient
from freshlm.airflow_local import free_port

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _read_until(proc: subprocess.Popen, pattern: str, timeout_s: float) -> str:
    """Collect the demo's output until ``pattern`` shows up (or fail with what it printed)."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if re.search(pattern, line):
            # The banner is a block: read it to its closing rule.
            while not (line := proc.stdout.readline()).startswith("====="):
                seen.append(line)
            return "".join(seen)
    raise AssertionError(f"demo did not print {pattern!r}; output:\n{''.join(seen)[-5000:]}")


def test_demo_brings_up_world_and_airflow_and_prints_a_working_login(tmp_path: Path):
    world_port, airflow_port = free_port(), free_port()
    env = dict(
        os.environ,
        FRESHLM_HOME=str(tmp_path / "home"),
        FRESHLM_WORLD_PORT=str(world_port),
        FRESHLM_AIRFLOW_PORT=str(airflow_port),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.demo", "--up-only"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        out = _read_until(proc, r"FreshLM embedded demo is up", timeout_s=240)
        ui = re.search(r"Airflow UI\s+(http://\S+)", out).group(1)
        user, password = re.search(r"login\s+(\S+) / (\S+)", out).groups()
        assert ui == f"http://127.0.0.1:{airflow_port}"
        assert f"http://127.0.0.1:{world_port}" in out
        assert "pre-flight tasks not successful" not in out

        # The printed login works against the printed UI address.
        client = AirflowClient(ui, user, password)
        dag_ids = {d["dag_id"] for d in client.dags()}
        assert "freshlm_preflight" in dag_ids
        with urllib.request.urlopen(f"http://127.0.0.1:{world_port}/_world/health") as resp:
            assert resp.status == 200
        # Everything lives under FRESHLM_HOME.
        assert (tmp_path / "home" / "airflow" / "airflow.db").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, rest[-3000:]
    # It cleaned up after itself: nothing listens on the demo's ports any more.
    for port in (world_port, airflow_port):
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
