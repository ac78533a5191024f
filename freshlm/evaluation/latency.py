"""Generation latency: greedy decoding of a fixed number of new tokens, one prompt at a time.

What a user of the model waits for: each prompt is generated alone (batch size 1), greedily,
with exactly ``new_tokens`` new tokens (EOS does not stop it early, so every run does the same
work and two models are compared on equal terms). The first prompt is run ``warmup`` times
untimed first (allocator, kernel selection, lazy initialization). On CUDA the clock waits for
the device before and after each run.

Reported: p50 and p95 of the per-prompt wall time in milliseconds (linear interpolation between
order statistics, NumPy's default) and tokens/s = all new tokens / all timed seconds. Latency
depends on the machine and its load: compare two models measured on the same machine in the
same run, never figures from different nights.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from freshlm.evaluation.scoring import context_size

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LatencyResult:
    p50_ms: float
    p95_ms: float
    tokens_per_s: float
    prompts: int
    new_tokens: int
    seconds: float
    runs_ms: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["runs_ms"] = list(self.runs_ms)
        return doc


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], not {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measure_latency(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    new_tokens: int = 32,
    warmup: int = 1,
) -> LatencyResult:
    """Time greedy generation of ``new_tokens`` tokens for each prompt (see the module doc).

    Prompts are cut from the left so that prompt and new tokens fit the model's context.
    """
    import torch

    if not prompts:
        raise ValueError("measure_latency needs at least one prompt")
    if new_tokens < 1:
        raise ValueError(f"new_tokens must be at least 1, not {new_tokens}")
    context = context_size(model)
    if new_tokens >= context:
        raise ValueError(
            f"new_tokens ({new_tokens}) must be smaller than the model's context ({context})"
        )
    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    inputs = []
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"]
        if start is not None:
            ids = [start, *ids]
        if not ids:
            raise ValueError("an empty prompt with a tokenizer that has no BOS/EOS token")
        inputs.append(ids[-(context - new_tokens) :])

    def run(ids: list[int]) -> tuple[float, int]:
        tensor = torch.tensor([ids], dtype=torch.long, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=tensor,
                attention_mask=torch.ones_like(tensor),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - began, int(out.shape[1]) - len(ids)

    for _ in range(warmup):
        run(inputs[0])
    times, generated = [], 0
    for ids in inputs:
        seconds, produced = run(ids)
        times.append(seconds)
        generated += produced
    total = sum(times)
    result = LatencyResult(
        p50_ms=round(percentile(times, 50) * 1000, 3),
        p95_ms=round(percentile(times, 95) * 1000, 3),
        tokens_per_s=round(generated / total, 3) if total > 0 else 0.0,
        prompts=len(inputs),
        new_tokens=new_tokens,
        seconds=round(total, 4),
        runs_ms=tuple(round(t * 1000, 3) for t in times),
    )
    log.info(
        "latency: %d prompts x %d new tokens, p50 %.1f ms, p95 %.1f ms, %.1f tokens/s",
        result.prompts,
        new_tokens,
        result.p50_ms,
        result.p95_ms,
        result.tokens_per_s,
    )
    return result
