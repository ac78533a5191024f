"""Which number format a training rank computes in: fp32, bf16 on a GPU, or bf16 matmuls on a CPU.

``TrainConfig.bf16`` takes four values:

- ``"auto"``: bf16 on a GPU that has it, fp32 on CPU ranks (the tiny base's calibrated
  figures were measured in fp32);
- ``"native"``: bf16 wherever the hardware computes it natively: a GPU that has it, or a CPU
  with AVX512-BF16 or AMX (on this project's 2-core EPYC a bf16 matrix product runs 2.4x faster
  than fp32; bench/RESULTS.md, "train (CPU)"); elsewhere fp32;
- ``True``: bf16 on any device; ``False``: fp32.

On a GPU, bf16 is DeepSpeed's bf16 engine (bf16 weights, fp32 master copies in the optimizer).
On a CPU it is autocast instead: weights, gradients and optimizer stay fp32 and only the
matrix products run in bf16. The engine would round every weight to bf16, the frozen blocks of
a top-block fine-tune included, and publish a bf16 model that differs from its base where it
never trained; autocast publishes fp32 weights that are the base's exactly outside the trained
blocks.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

#: ``TrainConfig.bf16`` values besides ``True`` and ``False``.
BF16_CHOICES = ("auto", "native")

#: /proc/cpuinfo flags of x86 CPUs with bf16 arithmetic (AVX512-BF16: Zen 4, Cooper Lake,
#: Sapphire Rapids; AMX: Sapphire Rapids and later).
_CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 natively (read from ``cpuinfo``'s flags; ``False`` where
    there is no such file, e.g. macOS, where bf16 would be emulated slower than fp32)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(_CPU_BF16_FLAGS & set(line.partition(":")[2].split()))
    return False


def resolve_precision(setting: bool | str, gpu: bool, gpu_bf16: bool = False) -> str:
    """``"bf16"`` (DeepSpeed's bf16 engine, GPU), ``"bf16-autocast"`` (CPU) or ``"fp32"`` for a
    ``TrainConfig.bf16`` value on this rank's device; ``gpu_bf16``: the GPU supports bf16."""
    if setting is True:
        wanted = True
    elif setting is False:
        wanted = False
    elif setting == "auto":
        wanted = gpu and gpu_bf16
    elif setting == "native":
        wanted = gpu_bf16 if gpu else cpu_has_native_bf16()
    else:
        raise ValueError(f"bf16 must be true, false or one of {BF16_CHOICES}, got {setting!r}")
    if not wanted:
        return "fp32"
    return "bf16" if gpu else "bf16-autocast"


def cpu_autocast_trainer_class(trainer_class: Any) -> Any:
    """``trainer_class`` with its loss (forward passes included) computed under CPU autocast
    to bf16; the backward pass runs each product in the dtype its forward used."""
    import torch

    class CpuAutocastTrainer(trainer_class):
        def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return super().compute_loss(*args, **kwargs)

    return CpuAutocastTrainer
