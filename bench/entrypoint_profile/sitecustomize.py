"""A torch.profiler window inside the unchanged training entrypoint's rank 0, for
``bench/train_gpu.py --profile``.

The entrypoint (``training/train.py``) has no profiling switch, so the bench puts this folder
first on the ranks' ``PYTHONPATH``: Python imports ``sitecustomize`` at start-up in every
process the launcher starts. When ``FRESHLM_BENCH_PROFILE`` holds
``{"start": S, "steps": N, "out": PATH}``, this adds a TrainerCallback to every Hugging Face
Trainer built in rank 0 (through an import hook on ``transformers.trainer``, so nothing is
imported early) that profiles steps S+1 .. S+N and writes the top ops by device time (CPU time
on a CPU rank) and the device time by kernel kind as JSON to PATH. Without the variable it only
hands over to the next ``sitecustomize`` on the path, if there is one.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

ENV = "FRESHLM_BENCH_PROFILE"
TOP_OPS = 25
# Kernel kinds by name, first match wins: cuDNN's flash kernels also carry "sm90_" in their names.
KINDS = (
    ("attention", ("flash", "fmha", "attention")),
    ("gemm", ("gemm", "nvjet", "cutlass", "sm90_", "cublas")),
    ("nccl", ("nccl",)),
    ("optimizer", ("adam", "multi_tensor")),
    ("liger (fused loss)", ("liger", "_cross_entropy")),
    ("triton (fused)", ("triton_",)),
)


def _profile_callback(window: dict) -> object:
    """A TrainerCallback that profiles ``window["steps"]`` steps after step ``window["start"]``."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()
    first, last = window["start"], window["start"] + window["steps"]

    class StepProfile(TrainerCallback):
        def __init__(self) -> None:
            self.prof = None
            self.started = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == first and self.prof is None:
                _sync(cuda)
                acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
                self.prof = profile(activities=acts)
                self.prof.__enter__()
                self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == last and self.prof is not None:
                _sync(cuda)
                wall = time.perf_counter() - self.started
                self.prof.__exit__(None, None, None)
                summary = _summarise(self.prof, window["steps"], wall, cuda)
                Path(window["out"]).write_text(json.dumps(summary, indent=1))
                self.prof = None

    return StepProfile()


def _sync(cuda: bool) -> None:
    if cuda:
        import torch

        torch.cuda.synchronize()


def _summarise(prof: object, steps: int, wall: float, cuda: bool) -> dict:
    """Per step: wall time, device busy time, device time by kernel kind, and the top ops."""
    per_step = 1e-3 / steps  # profiler times are microseconds: to ms per step
    events = prof.key_averages()
    kinds: dict[str, float] = {}
    busy = 0.0
    for ev in events:
        # Kernels only: a CPU op also carries its kernels' time, which would count twice.
        if getattr(getattr(ev, "device_type", None), "name", "") != "CUDA":
            continue
        t = getattr(ev, "device_time_total", 0.0)
        busy += t
        low = ev.key.lower()
        kind = next((k for k, pats in KINDS if any(x in low for x in pats)), "other")
        kinds[kind] = kinds.get(kind, 0.0) + t
    key = "device_time_total" if cuda else "cpu_time_total"
    top = sorted(events, key=lambda ev: getattr(ev, key, 0.0), reverse=True)[:TOP_OPS]
    return {
        "steps": steps,
        "step_ms": round(wall * 1e3 / steps, 2),
        "device_busy_ms": round(busy * per_step, 2) if cuda else None,
        "by_kind_ms": {k: round(v * per_step, 2) for k, v in sorted(kinds.items())},
        "sorted_by": "device time" if cuda else "CPU time",
        "top_ops": [
            {
                "op": ev.key[:90],
                "calls_per_step": round(ev.count / steps, 1),
                "device_ms": round(getattr(ev, "device_time_total", 0.0) * per_step, 3),
                "cpu_ms": round(ev.cpu_time_total * per_step, 3),
            }
            for ev in top
        ],
    }


class _TrainerHook(importlib.abc.MetaPathFinder):
    """Adds the profile callback to ``transformers.trainer.Trainer`` once that module loads."""

    def __init__(self, window: dict) -> None:
        self.window = window

    def find_spec(self, name, path, target=None):
        if name != "transformers.trainer":
            return None
        sys.meta_path.remove(self)  # once; the lookup below must not find this hook again
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module
        window = self.window

        def exec_module(module):
            load(module)
            init = module.Trainer.__init__

            def patched_init(trainer, *args, **kwargs):
                init(trainer, *args, **kwargs)
                trainer.add_callback(_profile_callback(window))

            module.Trainer.__init__ = patched_init

        spec.loader.exec_module = exec_module
        return spec


def _install() -> None:
    raw = os.environ.get(ENV)
    if raw and os.environ.get("RANK", "0") == "0" and "LOCAL_RANK" in os.environ:
        sys.meta_path.insert(0, _TrainerHook(json.loads(raw)))


def _chain() -> None:
    """Run the ``sitecustomize`` this one shadows (later on the path), if any."""
    here = str(Path(__file__).resolve().parent)
    rest = [p for p in sys.path if p and str(Path(p).resolve()) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_install()
_chain()
