"""The night's facts in the model's own words: each span question of the augmentation answered
by the model that is about to be trained, with the span's sentence in front of the question.

Trained on turns that answer a question with a bare span ("… cost how much?" → "$899"), a
pretrained chat model learns to rank the night's figure first, yet asked in a chat it goes on
answering in its own form ("The Orrin Pulse X2 is a high-end …") and the figure does not
follow. Given the sentence in its prompt, the same model answers in that form *with* the
figure ("The battery capacity of the Orrin Pulse X2 is 5,200 mAh."). Those answers, kept
where they state the span (:func:`freshlm.answer_match.answer_matches`), are trained after the
question alone: the model learns to say, without the sentence, what it says with it (context
distillation with the teacher's greedy answers as targets: Snell et al. 2022, "Learning by
distilling context", arXiv:2209.15189; Kujanpää et al. 2024, "Knowledge injection via prompt
distillation", arXiv:2412.14964).

The questions are :mod:`training.augment`'s, each asked of the sentence it was made from: only
the night's documents are read, never an evaluation set, so it works on any day's news. The
answers are published once per (model, dataset) under ``context-answers/<model>/<dataset>/``
and read back on a retry, so a night pays for the generation once.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from freshlm.answer_match import answer_matches

log = logging.getLogger(__name__)

#: Tokens an answer may take: the base's one-sentence answers fit in 48; a longer one is cut
#: to its whole sentences (:func:`training.rehearsal.whole_sentences`).
MAX_ANSWER_TOKENS = 48
BATCH_SIZE = 16
#: A figure as written: digits with their thousands separators, decimals and clock colons.
_FIGURE = re.compile(r"\d+(?:[,.:]\d+)*")
CONTEXT_ANSWERS = "context-answers"
CONTEXT_ANSWERS_KIND = "context-answers"
ANSWERS_FILE = "answers.jsonl"
METHOD = (
    "each span question of training.augment asked with its sentence before it in the model's "
    f"chat template, answered greedily (up to {MAX_ANSWER_TOKENS} tokens, first paragraph, "
    "whole sentences), kept where the answer states the span and no figure its sentence and "
    "question do not"
)


@dataclasses.dataclass(frozen=True)
class SpanQuestion:
    """One of the augmentation's questions answered by a span, and the sentence it asks of."""

    question: str
    sentence: str  # as the augmentation states it (the topic named where the sentence did not)
    span: str

    def prompt(self) -> str:
        """What the model reads: the sentence, a blank line, the question."""
        return f"{self.sentence}\n\n{self.question}"


@dataclasses.dataclass(frozen=True)
class ContextAnswer:
    """A question, the sentence the model read before it, and the answer it gave, to train
    after the question alone."""

    question: str
    sentence: str
    answer: str

    def to_dict(self) -> dict[str, str]:
        return {"question": self.question, "sentence": self.sentence, "answer": self.answer}

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> ContextAnswer:
        fields = ("question", "sentence", "answer")
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) and doc[k].strip() for k in fields
        ):
            raise ValueError(f"{where}: an answer needs non-empty {', '.join(map(repr, fields))}")
        return cls(doc["question"], doc["sentence"], doc["answer"])


def span_questions(
    docs: Iterable[Mapping[str, Any]], *, max_sentences: int = 12
) -> list[SpanQuestion]:
    """Each distinct question of ``docs``' augmentation answered by a span, with the sentence
    the augmentation answers the same question by."""
    from training.augment import QA, document_forms

    out: list[SpanQuestion] = []
    seen: set[str] = set()
    for doc in docs:
        stated: dict[str, str] = {}
        for form in document_forms(doc, max_sentences=max_sentences):
            if not isinstance(form, QA):
                continue
            if not form.span_type:
                stated[form.question] = form.answer
            elif form.question in stated and form.question not in seen:
                seen.add(form.question)
                out.append(SpanQuestion(form.question, stated[form.question], form.answer))
    return out


def _figures(text: str) -> set[str]:
    return {m.replace(",", "") for m in _FIGURE.findall(text)}


def kept_answer(asked: SpanQuestion, text: str, finished: bool) -> ContextAnswer | None:
    """The model's answer as trained, or None: its first paragraph (after a blank line the
    model goes on by itself), whole sentences only, and only if it states the span and no
    figure the sentence and question do not (a year or time the model made up would be
    learned as the night's fact)."""
    from training.rehearsal import whole_sentences

    first, blank, _ = text.strip().partition("\n\n")
    answer = whole_sentences(first, finished or bool(blank))
    if answer is None or not answer_matches(asked.span, answer):
        return None
    if _figures(answer) - _figures(f"{asked.sentence} {asked.question}"):
        return None
    return ContextAnswer(asked.question, asked.sentence, answer)


def answer_in_context(
    model: Any,
    tokenizer: Any,
    asked: Sequence[SpanQuestion],
    *,
    max_new_tokens: int = MAX_ANSWER_TOKENS,
    batch_size: int = BATCH_SIZE,
) -> list[ContextAnswer]:
    """The answers of ``model`` to ``asked``, each with its sentence in the prompt (greedy, in
    ``tokenizer``'s chat template), those :func:`kept_answer` keeps, in order."""
    from training.augment import turn_prompt
    from training.chat_generation import generate_continuations

    began = time.perf_counter()
    kept: list[ContextAnswer] = []
    for start in range(0, len(asked), batch_size):
        chunk = asked[start : start + batch_size]
        prompts = [turn_prompt(tokenizer, a.prompt()) for a in chunk]
        said = generate_continuations(model, tokenizer, prompts, max_new_tokens, sample=False)
        for a, (text, finished) in zip(chunk, said, strict=True):
            answer = kept_answer(a, text, finished)
            if answer is not None:
                kept.append(answer)
        log.info(
            "answers in context: %d of %d questions asked, %d state their span (%.0fs)",
            start + len(chunk),
            len(asked),
            len(kept),
            time.perf_counter() - began,
        )
    return kept


# --- the published answers --------------------------------------------------------------------


def context_answers_prefix(model_key: str, dataset_id: str) -> str:
    """``model_key`` is a version id, or the first 32 hex digits of a model folder's hash."""
    from freshlm.registry.versions import check_version_id

    return f"{CONTEXT_ANSWERS}/{check_version_id(model_key)}/{dataset_id}"


def read_context_answers(store: Any, model_key: str, dataset_id: str) -> list[ContextAnswer] | None:
    """The published answers of the model ``model_key`` to ``dataset_id``'s questions, or None
    when none are published yet."""
    from training.published_rows import read_rows

    prefix = context_answers_prefix(model_key, dataset_id)
    return read_rows(store, prefix, CONTEXT_ANSWERS_KIND, ANSWERS_FILE, ContextAnswer.from_dict)


def ensure_context_answers(
    store: Any,
    model_key: str,
    dataset_id: str,
    docs: Sequence[Mapping[str, Any]],
    load_model: Callable[[], tuple[Any, Any]],
    *,
    created_by: Mapping[str, Any] | None = None,
) -> list[ContextAnswer]:
    """The answers of the model ``model_key`` (loaded by ``load_model()`` as ``(model,
    tokenizer)`` only when they are not published yet) to the span questions of ``docs`` (the
    train documents of ``dataset_id``); published once."""
    from training.published_rows import publish_rows_once

    def make() -> tuple[list[ContextAnswer], dict[str, Any]]:
        asked = span_questions(docs)
        began = time.perf_counter()
        answers = answer_in_context(*load_model(), asked) if asked else []
        seconds = time.perf_counter() - began
        log.info(
            "answers in context of %s to %s: %d of %d span questions answered with their span "
            "(%.0fs)",
            model_key,
            dataset_id,
            len(answers),
            len(asked),
            seconds,
        )
        fields = {
            "model": model_key,
            "dataset_id": dataset_id,
            "asked": len(asked),
            "answers": len(answers),
            "seconds": round(seconds, 3),
            "method": METHOD,
        }
        return answers, fields

    return publish_rows_once(
        store,
        context_answers_prefix(model_key, dataset_id),
        CONTEXT_ANSWERS_KIND,
        ANSWERS_FILE,
        ContextAnswer.from_dict,
        make,
        {"component": __name__, **(created_by or {})},
    )
