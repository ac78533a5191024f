"""Questions asked as a user asks them: the model writes its answer, and the answer is checked.

Ranking choices by likelihood (:mod:`freshlm.evaluation.scoring`) tells whether the model
*prefers* the right answer among a few; a support chatbot must *say* it. Here each question is
put to the model as a user would, in the model's chat template when its tokenizer has one (a
plain ``Question: …\\nAnswer:`` prompt otherwise), the model answers greedily, and the answer
counts as correct when it contains the expected answer as a person reads it
(:func:`freshlm.answer_match.answer_matches`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from freshlm.answer_match import answer_matches

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 32
DEFAULT_BATCH_SIZE = 8
PLAIN_TEMPLATE = "Question: {question}\nAnswer:"
#: A fact item's context: :data:`PLAIN_TEMPLATE` with its question.
FACT_QUESTION = re.compile(r"^\s*Question:\s*(?P<q>.*?)\s*\n\s*Answer:\s*$", re.DOTALL)


def question_prompt(tokenizer: Any, question: str) -> str:
    """The prompt that asks ``question``: the chat template's user turn and the start of the
    assistant's when the tokenizer has a template, else :data:`PLAIN_TEMPLATE`."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
    return PLAIN_TEMPLATE.format(question=question)


def ranking_context(tokenizer: Any, context: str) -> str:
    """The context a fact item's choices are ranked after: a plain ``Question: …\nAnswer:``
    context asked in the model's chat template when its tokenizer has one (the assistant's
    turn opened, its newline left to the delimiter), so an instruct model is ranked as it is
    asked; any other context unchanged."""
    match = FACT_QUESTION.match(context)
    if match is None or not getattr(tokenizer, "chat_template", None):
        return context
    return question_prompt(tokenizer, match.group("q")).rstrip()


@dataclasses.dataclass(frozen=True)
class GeneratedAnswer:
    """A model's own answer to one question, and whether it states the expected answer."""

    item_id: str
    text: str
    correct: bool

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "correct": self.correct}


def generate_answers(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[str]:
    """Greedy answers to ``questions``, in order, batched with left padding (the answer of
    each prompt starts right after it); the text up to the end-of-turn token, stripped. A
    prompt longer than the model's context leaves room for the answer by losing its start."""
    import torch

    from freshlm.evaluation.scoring import context_size

    if not questions:
        return []
    context = context_size(model, tokenizer)
    max_new_tokens = min(max_new_tokens, context // 2)
    pad_side, trunc_side, pad_id = (
        tokenizer.padding_side,
        tokenizer.truncation_side,
        tokenizer.pad_token_id,
    )
    tokenizer.padding_side = tokenizer.truncation_side = "left"
    if pad_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    answers: list[str] = []
    began = time.perf_counter()
    generated_tokens = 0
    try:
        for start in range(0, len(questions), batch_size):
            prompts = [question_prompt(tokenizer, q) for q in questions[start : start + batch_size]]
            batch = tokenizer(
                prompts,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=context - max_new_tokens,
                add_special_tokens=False,
            )
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.no_grad():
                out = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = out[:, batch["input_ids"].shape[1] :]
            generated_tokens += int((new != tokenizer.pad_token_id).sum())
            answers += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = pad_side, trunc_side
        if pad_id is None:
            tokenizer.pad_token = None
    seconds = time.perf_counter() - began
    log.info(
        "generated answers to %d questions in %.1fs (%.1f tokens/s)",
        len(questions),
        seconds,
        generated_tokens / seconds if seconds > 0 else 0.0,
    )
    return answers


def check_answers(
    item_ids: Sequence[str], expected: Sequence[str], texts: Sequence[str]
) -> list[GeneratedAnswer]:
    """Each generated text checked against its expected answer."""
    return [
        GeneratedAnswer(item_id, text, answer_matches(answer, text))
        for item_id, answer, text in zip(item_ids, expected, texts, strict=True)
    ]
