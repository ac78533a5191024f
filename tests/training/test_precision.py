"""A rank's number format: which CPUs compute bf16, what each ``bf16`` value means on each
device, the setting that carries the recipe's choice, and the CPU autocast that keeps fp32
weights while the products run in bf16."""

from __future__ import annotations

import pytest
import torch

from freshlm.settings import Settings, SettingsError
from training.config import ConfigError, TrainConfig
from training.precision import cpu_autocast_trainer_class, cpu_has_native_bf16, resolve_precision

ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx512f amx_tile amx_bf16 amx_int8\n"
SKYLAKE = "flags\t\t: fpu avx2 avx512f avx512bw\n"


@pytest.mark.parametrize(
    ("cpuinfo", "native"), [(ZEN4, True), (SAPPHIRE_RAPIDS, True), (SKYLAKE, False), ("", False)]
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, cpuinfo, native):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert cpu_has_native_bf16(str(path)) is native


def test_no_cpuinfo_means_no_native_bf16(tmp_path):
    assert cpu_has_native_bf16(str(tmp_path / "missing")) is False


def test_each_value_on_each_device(monkeypatch):
    import training.precision as precision

    for native_cpu in (True, False):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda n=native_cpu: n)
        # A GPU: bf16 where it has it, for auto and native alike; True forces it.
        assert resolve_precision("auto", gpu=True, gpu_bf16=True) == "bf16"
        assert resolve_precision("native", gpu=True, gpu_bf16=True) == "bf16"
        assert resolve_precision("native", gpu=True, gpu_bf16=False) == "fp32"
        assert resolve_precision(True, gpu=True, gpu_bf16=False) == "bf16"
        # A CPU: auto stays fp32; native follows the CPU; True forces autocast.
        assert resolve_precision("auto", gpu=False) == "fp32"
        expected = "bf16-autocast" if native_cpu else "fp32"
        assert resolve_precision("native", gpu=False) == expected
        assert resolve_precision(True, gpu=False) == "bf16-autocast"
        assert resolve_precision(False, gpu=True, gpu_bf16=True) == "fp32"
    with pytest.raises(ValueError, match="'half'"):
        resolve_precision("half", gpu=False)


def test_the_recipe_chooses_the_format_and_the_setting_overrides_it():
    assert Settings.from_env({}).train_bf16 == "auto"  # the tiny base
    pretrained = {"FRESHLM_BASE_MODEL": "smollm2-135m-instruct"}
    assert Settings.from_env(pretrained).train_bf16 == "native"
    assert Settings.from_env({**pretrained, "FRESHLM_TRAIN_BF16": "off"}).train_bf16 is False
    assert Settings.from_env({"FRESHLM_TRAIN_BF16": "True"}).train_bf16 is True
    with pytest.raises(SettingsError, match=r"FRESHLM_TRAIN_BF16='half'.*auto, native"):
        Settings.from_env({"FRESHLM_TRAIN_BF16": "half"})
    assert TrainConfig(datasets=["d"], base_version="v", bf16="native").bf16 == "native"
    with pytest.raises(ConfigError, match=r'TrainConfig\.bf16.*"native"'):
        TrainConfig(datasets=["d"], base_version="v", bf16="half")


def test_cpu_autocast_runs_products_in_bf16_and_keeps_fp32_weights_and_gradients():
    seen = {}

    class Trainer:
        def compute_loss(self, model, inputs):
            out = model(inputs)
            seen["dtype"] = out.dtype
            return out.float().pow(2).mean()

    model = torch.nn.Linear(64, 64)
    loss = cpu_autocast_trainer_class(Trainer)().compute_loss(model, torch.randn(8, 64))
    loss.backward()
    assert seen["dtype"] == torch.bfloat16
    assert model.weight.dtype == torch.float32 and model.weight.grad.dtype == torch.float32
    assert float(model.weight.grad.abs().sum()) > 0
