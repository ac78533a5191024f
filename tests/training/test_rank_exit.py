"""A rank ends by destroying its process group, after printing its result, and its process
ends without the interpreter's finalization: there Gloo's threads can abort a rank whose run
already succeeded (SIGABRT, "terminate called without an active exception"), and the launcher
fails the run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import torch.distributed as dist

from training import train


def test_a_rank_prints_its_result_then_destroys_its_process_group(tmp_path, monkeypatch, capsys):
    dist.init_process_group(
        "gloo", init_method=(tmp_path / "rendezvous").as_uri(), rank=0, world_size=1
    )
    try:
        monkeypatch.setattr(train, "load_config", lambda location: location)
        monkeypatch.setattr(train, "train", lambda config: {"version_id": "v" * 32})
        monkeypatch.setattr(train, "_setup_logging", lambda rank: None)

        assert train.main(["--config", "train_config.json"]) == 0

        assert not dist.is_initialized()
        result = [
            line
            for line in capsys.readouterr().out.splitlines()
            if line.startswith(train.RESULT_MARKER)
        ]
        assert json.loads(result[0].split(" ", 1)[1]) == {"version_id": "v" * 32}
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_a_rank_without_a_process_group_ends_as_before(monkeypatch, capsys):
    monkeypatch.setattr(train, "load_config", lambda location: location)
    monkeypatch.setattr(train, "train", lambda config: {"version_id": "w" * 32})
    monkeypatch.setattr(train, "_setup_logging", lambda rank: None)
    assert not dist.is_initialized()
    assert train.main(["--config", "train_config.json"]) == 0
    assert train.RESULT_MARKER in capsys.readouterr().out


RANK = textwrap.dedent(
    """
    import atexit, sys
    from training import train

    atexit.register(lambda: print("FINALIZED", flush=True))
    train.load_config = lambda location: location
    train.train = lambda config: {"version_id": "x" * 32}
    train._setup_logging = lambda rank: None
    if sys.argv[1] == "fail":
        train.train = lambda config: 1 / 0
    print("partial line without a newline", end="")
    train.exit_rank(["--config", "train_config.json"])
    """
)


def test_a_rank_process_ends_after_its_result_without_finalizing_and_an_error_as_python_does():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", RANK, "ok"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # Its result and an unfinished line both flushed; the interpreter's exit handlers never ran.
    assert f"{train.RESULT_MARKER} " in done.stdout and "partial line" in done.stdout
    assert "FINALIZED" not in done.stdout
    failed = subprocess.run(
        [sys.executable, "-c", RANK, "fail"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 1 and "ZeroDivisionError" in failed.stderr
    assert "FINALIZED" in failed.stdout  # an error ends the process as Python does
