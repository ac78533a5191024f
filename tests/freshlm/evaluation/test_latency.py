"""Generation latency: percentiles, fixed-length greedy runs, prompts cut to the context."""

from __future__ import annotations

import copy

import pytest

from freshlm.evaluation.latency import measure_latency, measure_latency_paired, percentile
from freshlm.evaluation.scoring import torch_threads
from tests.freshlm.evaluation import tiny_models


def test_percentiles_interpolate_linearly():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0
    assert percentile([1.0, 2.0], 0) == 1.0 and percentile([1.0, 2.0], 100) == 2.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_every_prompt_generates_exactly_the_new_tokens():
    model, tok = tiny_models.baseline_model(), tiny_models.tokenizer()
    long_prompt = " ".join(tiny_models.ALL_TEXTS)  # far beyond the 64-token context
    with torch_threads(1):
        result = measure_latency(
            model, tok, ["The Tessford", "해온 항구", long_prompt], new_tokens=6, warmup=1
        )
    assert result.prompts == 3 and result.new_tokens == 6 and len(result.runs_ms) == 3
    assert 0 < result.p50_ms <= result.p95_ms <= max(result.runs_ms)
    # tokens/s counts what was generated: 3 prompts x 6 tokens, over the timed seconds.
    assert result.tokens_per_s == pytest.approx(18 / result.seconds, rel=0.01)
    assert result.to_dict()["runs_ms"] == list(result.runs_ms)


def test_impossible_requests_are_refused():
    model, tok = tiny_models.baseline_model(), tiny_models.tokenizer()
    with pytest.raises(ValueError, match="at least one prompt"):
        measure_latency(model, tok, [], new_tokens=4)
    with pytest.raises(ValueError, match="smaller than the model's context"):
        measure_latency(model, tok, ["x"], new_tokens=tiny_models.CONTEXT)


def test_two_models_are_timed_interleaved_prompt_by_prompt():
    tok = tiny_models.tokenizer()
    calls: list[str] = []

    def recorded(name: str):
        model = copy.deepcopy(tiny_models.baseline_model())  # the fixture model is shared
        generate = model.generate

        def generate_and_record(*args, **kwargs):
            calls.append(name)
            return generate(*args, **kwargs)

        model.generate = generate_and_record
        return model

    models = {"baseline": (recorded("baseline"), tok), "candidate": (recorded("candidate"), tok)}
    prompts = ["The Tessford", "해온 항구", "Question: Where", "Orrin"]
    with torch_threads(1):
        results = measure_latency_paired(models, prompts, new_tokens=3, warmup=1)
    # Warm-up of each, then the order flips on every other prompt, so a slow spell of the
    # machine falls on both models.
    assert (
        calls == ["baseline", "candidate"] + ["baseline", "candidate", "candidate", "baseline"] * 2
    )
    for result in results.values():
        assert result.prompts == 4 and len(result.runs_ms) == 4 and result.new_tokens == 3
    with pytest.raises(ValueError, match="at least one model"):
        measure_latency_paired({}, prompts)
