"""A rank ends by destroying its process group, after printing its result: left to the
interpreter's exit, Gloo's threads can abort a rank whose run already succeeded (SIGABRT,
"terminate called without an active exception"), and the launcher fails the run."""

from __future__ import annotations

import json

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
