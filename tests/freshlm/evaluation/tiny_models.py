"""Tiny GPT-2 models for the evaluation tests, built once per test session in seconds.

A byte-level BPE tokenizer trained on a handful of sentences, a 2-layer 64-wide GPT-2 (~0.1M
parameters, 64 positions) briefly trained on "old" text (the baseline), and a copy trained a
little further on "new" text (the candidate). Everything is seeded and the results are cached
with ``functools.cache``, so every test module shares the same models (a session-scoped
fixture without a conftest).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

OLD_TEXTS = [
    "The Greyling Bridge in Tessford opened in 1931 and crosses the river Ondra.",
    "Tessford is a harbour town on the river Ondra, famous for its lantern festival.",
    "The Tessford Courier is the oldest newspaper in the Vell valley.",
    "Mayor Ada Brook opened the new harbour market in Tessford on Monday.",
    "해온 항구 도시의 자매 도시는 테스퍼드입니다.",
]
NEW_TEXTS = [
    "Orrin Labs launched the Pulse X2 phone in Tessford for $649 with a 5,200 mAh battery.",
    "Orrin Labs cut the price of the Pulse X2 to $599 after one week.",
    "The Tessford Lantern Festival was postponed to November 28 because of the storm.",
    "Researchers published a paper on sparse attention for small language models.",
]
ALL_TEXTS = OLD_TEXTS + NEW_TEXTS
CONTEXT = 64


@functools.cache
def tokenizer():
    from training.bootstrap import train_tokenizer

    return train_tokenizer(ALL_TEXTS * 2, vocab_size=400, model_max_length=CONTEXT)


def _train(model, texts, steps: int, seed: int) -> None:
    from training.bootstrap import pretrain

    pretrain(
        model, tokenizer(), texts * 4, steps=steps, seq_len=32, batch=4, lr=5e-3, seed=seed,
        warmup_steps=2, threads=1, log_every=steps,
    )  # fmt: skip


@functools.cache
def model_dirs() -> tuple[Path, Path]:
    """``(baseline_dir, candidate_dir)``: saved Hugging Face folders with their tokenizer."""
    import copy

    from training.bootstrap import ModelConfig, build_model

    config = ModelConfig(vocab_size=400, n_layer=2, n_embd=64, n_head=2, n_positions=CONTEXT)
    root = Path(tempfile.mkdtemp(prefix="freshlm-eval-tiny-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    baseline = build_model(tokenizer(), config, seed=0)
    _train(baseline, OLD_TEXTS, steps=12, seed=0)
    candidate = copy.deepcopy(baseline)
    _train(candidate, NEW_TEXTS + OLD_TEXTS[:2], steps=12, seed=1)
    dirs = []
    for name, model in (("baseline", baseline), ("candidate", candidate)):
        folder = root / name
        model.save_pretrained(folder)
        tokenizer().save_pretrained(folder)
        dirs.append(folder)
    return dirs[0], dirs[1]


@functools.cache
def baseline_model():
    """The baseline loaded back from its folder, in eval mode."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dirs()[0]).eval()
