"""Self-synthesized rehearsal: the base model's own questions and answers, trained beside a
night's new facts so that what it knew of the world survives the night.

Fine-tuning a chat model on one small world's question-and-answer turns teaches it that such
questions are answered from that world: asked the capital of Austria after a night of news
about the sandbox's cities, it names one of them. Replaying old news does not prevent this (it
carries the same world), and the base's pretraining data is not available. Self-synthesized
rehearsal (Huang et al. 2024, "Mitigating Catastrophic Forgetting in Large Language Models with
Self-Synthesized Rehearsal", arXiv:2403.01244) uses the base instead: it writes questions
(sampled as a user's turn after a question opener) and answers them greedily, and these turns
are trained with the night's, so the update keeps the base's answers to questions that are not
about the night's news.

Nothing here reads an evaluation set: the questions come from the base, started by the
generic openers of :data:`OPENERS`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from training.chat_generation import generate_continuations

log = logging.getLogger(__name__)

#: Question openers the base continues into a user's question: the wh-phrases a night's
#: augmentation asks with (``training.augment.ASK_FOR``) and the common factual ones.
OPENERS = (
    "What is",
    "What was",
    "What does",
    "Who",
    "Who is",
    "Which",
    "Where is",
    "When did",
    "How many",
    "How much",
    "In which",
    "Name the",
)
MAX_QUESTION_TOKENS = 32
MAX_ANSWER_TOKENS = 64
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


@dataclasses.dataclass(frozen=True)
class Rehearsal:
    """One of the base's own turns: a question it wrote and its greedy answer."""

    question: str
    answer: str

    def to_dict(self) -> dict[str, str]:
        return {"question": self.question, "answer": self.answer}

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> Rehearsal:
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) and doc[k].strip() for k in ("question", "answer")
        ):
            raise ValueError(f"{where}: a rehearsal turn needs non-empty 'question' and 'answer'")
        return cls(doc["question"], doc["answer"])


def user_turn_opening(tokenizer: Any) -> str:
    """The chat template's text up to where a user's message starts (system prompt included)."""
    marker = "\x00QUESTION\x00"
    text = tokenizer.apply_chat_template([{"role": "user", "content": marker}], tokenize=False)
    return text[: text.index(marker)]


def clean_question(text: str) -> str | None:
    """A sampled user turn as a question to keep: one line ending at its first question mark,
    4 to 40 words; ``None`` for anything else (cut short, several lines, a list of options)."""
    line = text.split("\n", 1)[0].strip()
    end = line.find("?")
    if end < 0:
        return None
    question = line[: end + 1]
    return question if 4 <= len(question.split()) <= 40 else None


def whole_sentences(answer: str, finished: bool) -> str | None:
    """The answer as trained: whole when the model ended its turn, else up to its last
    sentence end (a turn cut mid-sentence would teach the model to stop mid-sentence);
    ``None`` when nothing whole is left."""
    answer = answer.strip()
    if finished:
        return answer or None
    ends = [m.end() for m in _SENTENCE_END.finditer(answer)]
    return answer[: ends[-1]] if ends else None


def synthesize(
    model: Any,
    tokenizer: Any,
    count: int,
    *,
    seed: int = 0,
    batch_size: int = 16,
    max_answer_tokens: int = MAX_ANSWER_TOKENS,
    openers: Sequence[str] = OPENERS,
) -> list[Rehearsal]:
    """``count`` distinct rehearsal turns written by ``model`` (fewer when it stops producing
    new questions): questions sampled after each of ``openers`` in turn, answered greedily.
    Needs a tokenizer with a chat template (a base without one has no chat turns to keep)."""
    import torch

    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("self-synthesized rehearsal needs a tokenizer with a chat template")
    torch.manual_seed(seed)
    opening = user_turn_opening(tokenizer)
    questions: list[str] = []
    seen: set[str] = set()
    began = time.perf_counter()
    rounds = 0
    width = min(batch_size, 2 * count)
    while len(questions) < count and rounds < 4 * (count // width + 1):
        started = [openers[(rounds * width + i) % len(openers)] for i in range(width)]
        sampled = generate_continuations(
            model, tokenizer, [opening + o for o in started], MAX_QUESTION_TOKENS, sample=True
        )
        for opener, (text, _) in zip(started, sampled, strict=True):
            question = clean_question(opener + text)
            if question and question.lower() not in seen and len(questions) < count:
                seen.add(question.lower())
                questions.append(question)
        rounds += 1
        log.info(
            "self-synthesized rehearsal: %d of %d questions sampled (%d batches, %.0fs)",
            len(questions),
            count,
            rounds,
            time.perf_counter() - began,
        )
    turns: list[Rehearsal] = []
    for start in range(0, len(questions), batch_size):
        chunk = questions[start : start + batch_size]
        prompts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
            )
            for q in chunk
        ]
        for question, (text, finished) in zip(
            chunk,
            generate_continuations(model, tokenizer, prompts, max_answer_tokens, sample=False),
            strict=True,
        ):
            answer = whole_sentences(text, finished)
            if answer:
                turns.append(Rehearsal(question, answer))
        log.info(
            "self-synthesized rehearsal: %d of %d questions answered (%.0fs)",
            min(start + batch_size, len(questions)),
            len(questions),
            time.perf_counter() - began,
        )
    log.info(
        "self-synthesized rehearsal: %d turns from %d sampled questions in %.0fs",
        len(turns),
        len(questions),
        time.perf_counter() - began,
    )
    return turns


# --- the published set ------------------------------------------------------------------------

#: Store prefix of the published sets: ``rehearsals/<root version>/``.
REHEARSALS = "rehearsals"
REHEARSAL_KIND = "rehearsal-set"
TURNS_FILE = "turns.jsonl"
COMPONENT = "training.rehearsal"


@dataclasses.dataclass(frozen=True)
class RehearsalSet:
    """The rehearsal turns ``base_version`` wrote, as published."""

    base_version: str
    turns: tuple[Rehearsal, ...]
    prefix: str  # where it is published: names it in a training set's mix


def rehearsal_prefix(base_version: str) -> str:
    from freshlm.registry.versions import check_version_id

    return f"{REHEARSALS}/{check_version_id(base_version)}"


def read_rehearsal_set(store: Any, base_version: str, count: int) -> RehearsalSet | None:
    """``base_version``'s published turns (the first ``count``), or None when it has none yet
    or fewer were asked for when it was built than ``count``."""
    from freshlm.artifacts import read_manifest_of_kind

    prefix = rehearsal_prefix(base_version)
    manifest = read_manifest_of_kind(store, prefix, REHEARSAL_KIND)
    if manifest is None:
        return None
    if int(manifest.fields.get("requested", 0)) < count:
        return None
    where = f"{store.uri_for(prefix)}/{TURNS_FILE}"
    turns = tuple(
        Rehearsal.from_dict(doc, f"{where} row {n}")
        for n, doc in enumerate(store.read_artifact_jsonl(manifest, TURNS_FILE), start=1)
    )
    return RehearsalSet(base_version, turns[:count], prefix)


def ensure_rehearsal_set(
    store: Any,
    base_version: str,
    load_model: Any,
    count: int,
    *,
    seed: int = 0,
    created_by: dict[str, Any] | None = None,
) -> RehearsalSet:
    """``base_version``'s rehearsal set of ``count`` turns: read when published, else written
    by the model ``load_model()`` returns (``(model, tokenizer)``) and published once, so every
    night of a lineage rehearses the same answers of its root."""
    from freshlm.store import StoreError

    existing = read_rehearsal_set(store, base_version, count)
    if existing is not None:
        log.info("rehearsal set of base %s: %d turns, published", base_version, len(existing.turns))
        return existing
    model, tokenizer = load_model()
    began = time.perf_counter()
    turns = synthesize(model, tokenizer, count, seed=seed)
    if not turns:
        raise ValueError(f"the base {base_version} wrote no usable rehearsal turn")
    prefix = rehearsal_prefix(base_version)
    # A set built for a smaller count is replaced: the prefix holds the largest asked for.
    try:
        with store.publisher(
            prefix,
            kind=REHEARSAL_KIND,
            created_by={"component": COMPONENT, **(created_by or {})},
            replace=store.read_manifest(prefix) is not None,
        ) as pub:
            pub.write_jsonl(TURNS_FILE, [t.to_dict() for t in turns])
            pub.set_manifest_fields(
                base_version=base_version,
                requested=count,
                turns=len(turns),
                seed=seed,
                seconds=round(time.perf_counter() - began, 3),
                openers=list(OPENERS),
                method="self-synthesized rehearsal (arXiv:2403.01244): questions sampled "
                "(temperature 0.8, top-p 0.95) after each opener, answered greedily",
            )
    except StoreError:
        published = read_rehearsal_set(store, base_version, count)
        if published is None:
            raise
        return published
    return RehearsalSet(base_version, tuple(turns), prefix)
