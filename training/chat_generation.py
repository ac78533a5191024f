"""Continuations of chat prompts by the model being fine-tuned, for the training texts it
writes itself (:mod:`training.rehearsal`, :mod:`training.context_answers`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def generate_continuations(
    model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, sample: bool
) -> list[tuple[str, bool]]:
    """``(text, finished)`` per prompt: the continuation up to the end-of-turn token, and
    whether the model reached it. Left padding so every continuation starts after its prompt;
    a tokenizer without a pad token pads with its end-of-text token."""
    import torch

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token

    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if end is None or end == tokenizer.unk_token_id:
        end = tokenizer.eos_token_id
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batch = tokenizer(
            list(prompts), return_tensors="pt", padding=True, add_special_tokens=False
        )
    finally:
        tokenizer.padding_side = side
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.inference_mode():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            temperature=0.8 if sample else None,
            top_p=0.95 if sample else None,
            top_k=None,
            eos_token_id=end,
            pad_token_id=tokenizer.pad_token_id,
        )
    results = []
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        finished = end in row
        row = row[: row.index(end)] if finished else row
        results.append((tokenizer.decode(row, skip_special_tokens=True), finished))
    return results
