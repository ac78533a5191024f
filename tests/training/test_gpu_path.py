"""The entrypoint's GPU path: compile, loader workers with pinned memory and the fused loss are
runtime choices (validated; the run key and version do not depend on them), off on CPU ranks."""

from __future__ import annotations

import pytest

from training.config import ConfigError, TrainConfig
from training.train import resolve_fused_loss


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("loader_workers", -1, "loader_workers"),
        ("loader_workers", 1.5, "loader_workers"),
        ("fused_loss", "yes", "fused_loss"),
        ("torch_compile", "true", "torch_compile"),
    ],
)
def test_a_bad_gpu_path_option_is_refused_naming_it(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(datasets=("d",), base_version="v", **{field: value})


def test_gpu_path_options_leave_the_run_key_alone():
    plain = TrainConfig(datasets=("d",), base_version="v")
    fast = TrainConfig(
        datasets=("d",), base_version="v", torch_compile=True, loader_workers=8, fused_loss=False
    )
    assert fast.fingerprint() == plain.fingerprint()
    assert "torch_compile" not in fast.recipe()


def test_the_fused_loss_is_on_only_on_a_gpu_with_liger_kernel(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "liger_kernel" else real(name)
    )
    assert resolve_fused_loss("auto", gpu=True) is False
    assert resolve_fused_loss(False, gpu=True) is False
    with pytest.raises(ConfigError, match="liger_kernel"):
        resolve_fused_loss(True, gpu=True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert resolve_fused_loss("auto", gpu=True) is True
    assert resolve_fused_loss("auto", gpu=False) is False
    with pytest.raises(ConfigError, match="a GPU"):
        resolve_fused_loss(True, gpu=False)


def test_a_cpu_rank_gets_no_loader_workers_and_no_pinned_memory(tmp_path):
    from training.train import _training_arguments

    config = TrainConfig(datasets=("d",), base_version="v", loader_workers=4, torch_compile=False)
    args = _training_arguments(config, tmp_path / "out")
    assert args.use_cpu and args.dataloader_num_workers == 0
    assert not args.dataloader_pin_memory and not args.use_liger_kernel
