"""Generation latency: greedy decoding of a fixed number of new tokens, one prompt at a time.

What a user of the model waits for: each prompt is generated alone (batch size 1), greedily,
with exactly ``new_tokens`` new tokens (EOS does not stop it early, so every run does the same
work and two models are compared on equal terms). The first prompt is run ``warmup`` times
untimed first (allocator, kernel selection, lazy initialization). On CUDA the clock waits for
the device before and after each run.

Reported: p50 and p95 of the per-prompt wall time in milliseconds (linear interpolation between
order statistics, NumPy's default) and tokens/s = all new tokens / all timed seconds. Latency
depends on the machine and its load: compare two models measured on the same machine in the
same run, never figures from different nights. :func:`measure_latency_paired` times several
models interleaved, prompt by prompt, so that a busy spell slows them alike.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping, Sequence
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
    return measure_latency_paired(
        {"model": (model, tokenizer)}, prompts, new_tokens=new_tokens, warmup=warmup
    )["model"]


def measure_latency_paired(
    models: Mapping[str, tuple[Any, Any]],
    prompts: Sequence[str],
    *,
    new_tokens: int = 32,
    warmup: int = 1,
) -> dict[str, LatencyResult]:
    """Time several models on the same prompts, interleaved: prompt by prompt, each model in
    turn, the order reversed on every other prompt. A neighbour that slows the machine for a
    while then slows every model alike, where timing one model after the other charged it all
    to whichever ran second (on a shared 2-core host the p50 of the same model swung several
    times between runs). ``models`` maps a name to ``(model, tokenizer)``; returns a result
    per name (see :func:`measure_latency`)."""
    if not models:
        raise ValueError("measure_latency_paired needs at least one model")
    if not prompts:
        raise ValueError("measure_latency needs at least one prompt")
    if new_tokens < 1:
        raise ValueError(f"new_tokens must be at least 1, not {new_tokens}")
    runners = {
        name: _Runner(model, tok, prompts, new_tokens) for name, (model, tok) in models.items()
    }
    names = list(runners)
    for name in names:
        for _ in range(warmup):
            runners[name].run(0)
    times: dict[str, list[float]] = {name: [] for name in names}
    generated = dict.fromkeys(names, 0)
    for i in range(len(prompts)):
        for name in names if i % 2 == 0 else reversed(names):
            seconds, produced = runners[name].run(i)
            times[name].append(seconds)
            generated[name] += produced
    results = {}
    for name in names:
        total = sum(times[name])
        result = LatencyResult(
            p50_ms=round(percentile(times[name], 50) * 1000, 3),
            p95_ms=round(percentile(times[name], 95) * 1000, 3),
            tokens_per_s=round(generated[name] / total, 3) if total > 0 else 0.0,
            prompts=len(prompts),
            new_tokens=new_tokens,
            seconds=round(total, 4),
            runs_ms=tuple(round(t * 1000, 3) for t in times[name]),
        )
        log.info(
            "latency of %s: %d prompts x %d new tokens, p50 %.1f ms, p95 %.1f ms, %.1f tokens/s",
            name,
            result.prompts,
            new_tokens,
            result.p50_ms,
            result.p95_ms,
            result.tokens_per_s,
        )
        results[name] = result
    return results


class _Runner:
    """One model's tokenized prompts and a timed greedy generation of one of them."""

    def __init__(self, model: Any, tokenizer: Any, prompts: Sequence[str], new_tokens: int):
        context = context_size(model)
        if new_tokens >= context:
            raise ValueError(
                f"new_tokens ({new_tokens}) must be smaller than the model's context ({context})"
            )
        model.eval()
        self.model = model
        self.new_tokens = new_tokens
        self.device = next(model.parameters()).device
        eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
        self.inputs = []
        for prompt in prompts:
            ids = tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"]
            if start is not None:
                ids = [start, *ids]
            if not ids:
                raise ValueError("an empty prompt with a tokenizer that has no BOS/EOS token")
            self.inputs.append(ids[-(context - new_tokens) :])

    def run(self, index: int) -> tuple[float, int]:
        """``(seconds, new tokens)`` of generating after prompt ``index``."""
        import torch

        ids = self.inputs[index]
        tensor = torch.tensor([ids], dtype=torch.long, device=self.device)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        began = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=tensor,
                attention_mask=torch.ones_like(tensor),
                max_new_tokens=self.new_tokens,
                min_new_tokens=self.new_tokens,
                do_sample=False,
                pad_token_id=self.pad,
            )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - began, int(out.shape[1]) - len(ids)
