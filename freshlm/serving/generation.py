"""What a generation backend is asked and what it answers, independent of the backend.

An HTTP request becomes one :class:`GenerationRequest` per prompt (the prompt already in the
model's chat template where the request was a chat); the backend answers each with a
:class:`Generation`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

#: The prompt a model without a chat template is asked a question in: the same form the
#: evaluation asks its fact questions in, so served answers match evaluated ones.
PLAIN_QUESTION = "Question: {question}\nAnswer:"
PLAIN_ANSWER = " {answer}\n"


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """One prompt to continue. ``temperature`` 0 is greedy decoding (the same answer every
    time); above 0 samples with ``top_p``."""

    prompt: str
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    @property
    def sampling_key(self) -> tuple[float, float]:
        """Requests with the same key can share one ``generate`` call."""
        return (self.temperature, self.top_p) if self.temperature > 0 else (0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Generation:
    """A prompt's continuation: its text, token counts and why it stopped (``stop``: the
    end-of-text token; ``length``: ``max_new_tokens`` reached)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


def chat_prompt(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> str:
    """The prompt of a chat: the tokenizer's chat template with the assistant's turn opened,
    or, for a model without one, every user turn as a ``Question:`` and every assistant turn as
    its ``Answer:`` (system turns as plain lines). The chat ends on a user turn (the API checks
    it), so the prompt ends on an open ``Answer:``."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )
    parts = []
    for message in messages:
        role, content = message["role"], message["content"].strip()
        if role == "system":
            parts.append(content + "\n")
        elif role == "user":
            parts.append(PLAIN_QUESTION.format(question=content))
        else:
            parts.append(PLAIN_ANSWER.format(answer=content))
    return "".join(parts)
