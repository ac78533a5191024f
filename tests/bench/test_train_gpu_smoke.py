"""``bench/train_gpu.py`` runs end to end on CPU: the smoke shape through the product
entrypoint (the real ``deepspeed`` launcher, one CPU rank), its table and JSON; and a GPU shape
on a host without CUDA stops at once, saying to use the smoke shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "train_gpu.py"


def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_smoke_shape_trains_through_the_entrypoint_and_reports(tmp_path):
    out = tmp_path / "rows.json"
    done = run("--shape", "smoke", "--warmup", "1", "--steps", "3", "--json", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [row] = json.loads(out.read_text())
    assert row["shape"] == "smoke" and row["device"] == "cpu"
    assert row["tokens_per_s"] > 0 and row["published_tokens_per_s"] > 0
    assert row["step_ms"] > 0 and row["mfu"] is None  # no peak figure for a CPU
    assert row["fused_loss"] == "off (no GPU)"
    assert "| smoke | 0.1M | 64 x 2 | 2 | off |" in done.stdout


def test_gpu_shape_on_a_cpu_host_says_to_use_smoke():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this host has a GPU")
    done = run("--shape", "gpt2-124m", timeout=120)
    assert done.returncode != 0
    assert "needs a CUDA GPU" in done.stderr and "--shape smoke" in done.stderr
