"""The general-knowledge retention set: questions the base model answered right before any
training, which every later version must keep answering.

Cloze retention items and old world facts measure what the model read in the news or its
corpus; a pretrained base also knows things no crawl taught it (capitals, currencies,
languages), and a nightly fine-tune can erase them without touching either. This set measures
that.

**Candidates.** ``data/general_questions.jsonl``: templated questions about the sovereign
countries (capital, currency, official language, continent) with a reference answer
and accepted aliases, derived from mledoze/countries (ODbL 1.0; see ``data/PROVENANCE.md`` and
``data/make_general_questions.py``).

**Selection.** A stable sample of the candidates (:func:`~freshlm.evaluation.config.stable_subset`
by question id, at most ``EvalConfig.general_max_questions``) is asked to the *root* of the
lineage, the base version published at v0 (:func:`freshlm.registry.root_version`), exactly as
the evaluator asks every model (:func:`~freshlm.evaluation.answers.generate_answers`: the chat
template when the tokenizer has one, greedy, ``answer_new_tokens`` tokens); a question is kept
when the answer contains its reference or an alias
(:func:`~freshlm.evaluation.answers.answer_matches`).
Because the prompt and the decoding are the evaluator's own, the base scores 1.0 on the set by
construction, and a later version's accuracy on it *is* its retention relative to the base.
Items chosen for being right once sit partly near the model's decision boundary, so any weight
change flips some of them (regression to the mean): a fine-tune that forgot nothing still
scores a little under 1.0. The gate therefore compares each candidate with production, whose
score carries the same effect, rather than with 1.0.

**Publication.** The set is published once per base version as the artifact
``evaluations/general-sets/<base version>/`` (kind ``general-set``; ``questions.jsonl`` and
the counts in the manifest: screened, kept, seconds), and every later evaluation reads it
without loading the base. The evaluator builds it when it is missing (a store created before
the set existed, or the first night): with the production model itself when production is the
base, else with the base loaded for the purpose. A base that answers none of the questions
(the tiny GPT-2 the tests train from scratch) gives an empty set: a valid outcome, and the
metric is then reported as not measured, with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freshlm.evaluation.answers import answer_matches
from freshlm.evaluation.config import stable_subset

if TYPE_CHECKING:
    from freshlm.store import Store

log = logging.getLogger(__name__)

#: Store prefix of the published sets: ``evaluations/general-sets/<base version>/``.
GENERAL_SETS = "evaluations/general-sets"
GENERAL_SET_KIND = "general-set"
SET_FILE = "questions.jsonl"
QUESTIONS_PATH = Path(__file__).with_name("data") / "general_questions.jsonl"
COMPONENT = "freshlm.evaluation.general_knowledge"

#: Questions in, the model's generated answers out (same order, same length).
Answerer = Callable[[Sequence[str]], list[str]]


@dataclasses.dataclass(frozen=True)
class GeneralQuestion:
    """One question with its reference answer (``answers[0]``) and accepted aliases."""

    id: str
    topic: str
    question: str
    answers: tuple[str, ...]

    def matches(self, text: str) -> bool:
        """Whether a generated answer states the reference or one of its aliases."""
        return any(answer_matches(answer, text) for answer in self.answers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "question": self.question,
            "answers": list(self.answers),
        }

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> GeneralQuestion:
        """Parse one row; :class:`ValueError` naming ``where`` and the field when malformed."""
        if not isinstance(doc, Mapping):
            raise ValueError(f"{where}: expected a JSON object, not {type(doc).__name__}")
        for field in ("id", "topic", "question"):
            if not isinstance(doc.get(field), str) or not doc[field].strip():
                raise ValueError(f"{where}: '{field}' must be a non-empty string")
        answers = doc.get("answers")
        if (
            not isinstance(answers, list)
            or not answers
            or not all(isinstance(a, str) and a.strip() for a in answers)
        ):
            raise ValueError(
                f"{where} ({doc['id']}): 'answers' must be a non-empty list of non-empty strings"
            )
        return cls(doc["id"], doc["topic"], doc["question"], tuple(answers))


def load_questions(path: str | Path | None = None) -> list[GeneralQuestion]:
    """The candidate questions of ``path`` (default: the vendored :data:`QUESTIONS_PATH`);
    :class:`ValueError` naming the file and line of a malformed row or a repeated id."""
    file = Path(path) if path is not None else QUESTIONS_PATH
    questions: list[GeneralQuestion] = []
    seen: set[str] = set()
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{file.name} line {number}"
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not JSON ({exc})") from None
            question = GeneralQuestion.from_dict(doc, where)
            if question.id in seen:
                raise ValueError(f"{where}: question id {question.id!r} is given twice")
            seen.add(question.id)
            questions.append(question)
    return questions


def screen(
    questions: Sequence[GeneralQuestion], answer: Answerer
) -> tuple[list[GeneralQuestion], list[str]]:
    """``(kept, texts)``: the questions whose generated answer matches, and every answer."""
    texts = answer([q.question for q in questions])
    if len(texts) != len(questions):
        raise ValueError(f"the answerer gave {len(texts)} answers to {len(questions)} questions")
    kept = [q for q, text in zip(questions, texts, strict=True) if q.matches(text)]
    return kept, texts


# --- the published set ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GeneralSet:
    """The questions ``base_version`` answered right when screened, with how it was built."""

    base_version: str
    questions: tuple[GeneralQuestion, ...]
    screened: int
    seconds: float
    max_new_tokens: int
    uri: str | None = None

    @property
    def kept(self) -> int:
        return len(self.questions)

    @property
    def base_said_acc(self) -> float | None:
        """The base's own accuracy on the set: 1.0 by construction (None when empty)."""
        return 1.0 if self.questions else None

    def unmeasured_reason(self) -> str | None:
        """Why the set measures nothing (None when it has questions)."""
        if self.questions:
            return None
        if not self.screened:
            return "no general-knowledge questions were screened"
        return (
            f"the base model {self.base_version} answered none of the {self.screened} "
            "general-knowledge questions screened"
        )

    def summary(self) -> dict[str, Any]:
        """What the report says about the set."""
        return {
            "base_version": self.base_version,
            "questions": self.kept,
            "screened": self.screened,
            "base_said_acc": self.base_said_acc,
            "max_new_tokens": self.max_new_tokens,
            "seconds": self.seconds,
            "uri": self.uri,
        }


def general_set_prefix(base_version: str) -> str:
    from freshlm.registry.versions import check_version_id

    return f"{GENERAL_SETS}/{check_version_id(base_version)}"


def read_general_set(store: Store, base_version: str) -> GeneralSet | None:
    """The published set of ``base_version``, or None when there is none yet."""
    from freshlm.artifacts import read_manifest_of_kind

    prefix = general_set_prefix(base_version)
    manifest = read_manifest_of_kind(store, prefix, GENERAL_SET_KIND)
    if manifest is None:
        return None
    uri = store.uri_for(prefix)
    questions = tuple(
        GeneralQuestion.from_dict(doc, f"{uri}/{SET_FILE} row {number}")
        for number, doc in enumerate(store.read_artifact_jsonl(manifest, SET_FILE), start=1)
    )
    fields = manifest.fields
    return GeneralSet(
        base_version=base_version,
        questions=questions,
        screened=int(fields.get("screened", len(questions))),
        seconds=float(fields.get("seconds", 0.0)),
        max_new_tokens=int(fields.get("max_new_tokens", 0)),
        uri=uri,
    )


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_general_set(
    store: Store,
    base_version: str,
    answer: Answerer,
    *,
    max_questions: int | None,
    seed: int,
    max_new_tokens: int,
    questions_path: str | Path | None = None,
    created_by: Mapping[str, Any] | None = None,
) -> GeneralSet:
    """Screen a stable sample of the candidate questions with ``answer`` (the base model's
    answerer) and publish the ones it answers right as ``base_version``'s set. When another
    process published the set first, that one stands and is returned."""
    from freshlm.store import StoreError

    file = Path(questions_path) if questions_path is not None else QUESTIONS_PATH
    candidates = load_questions(file)
    sample = stable_subset(candidates, max_questions, seed=seed, key=lambda q: q.id)
    began = time.perf_counter()
    kept, _ = screen(sample, answer)
    seconds = round(time.perf_counter() - began, 3)
    rate = round(len(sample) / seconds, 2) if seconds > 0 else None
    log.info(
        "general-knowledge set of base %s: kept %d of %d questions screened in %.1fs "
        "(%s questions/s)",
        base_version,
        len(kept),
        len(sample),
        seconds,
        rate if rate is not None else "n/a",
    )
    prefix = general_set_prefix(base_version)
    actor = {"component": COMPONENT, **dict(created_by or {})}
    try:
        with store.publisher(prefix, kind=GENERAL_SET_KIND, created_by=actor) as pub:
            pub.write_jsonl(SET_FILE, [q.to_dict() for q in kept])
            pub.set_manifest_fields(
                base_version=base_version,
                screened=len(sample),
                kept=len(kept),
                seconds=seconds,
                questions_per_s=rate,
                max_new_tokens=max_new_tokens,
                seed=seed,
                max_questions=max_questions,
                candidates=len(candidates),
                source={"file": file.name, "sha256": _file_sha256(file)},
                prompt="the chat template when the tokenizer has one, else 'Question: …\\nAnswer:'",
            )
    except StoreError:
        existing = read_general_set(store, base_version)
        if existing is None:
            raise
        log.info("general-knowledge set %s was published concurrently", store.uri_for(prefix))
        return existing
    return GeneralSet(
        base_version=base_version,
        questions=tuple(kept),
        screened=len(sample),
        seconds=seconds,
        max_new_tokens=max_new_tokens,
        uri=store.uri_for(prefix),
    )


def ensure_general_set(
    store: Store,
    base_version: str,
    answerer: Callable[[], Answerer],
    *,
    max_questions: int | None,
    seed: int,
    max_new_tokens: int,
    questions_path: str | Path | None = None,
    created_by: Mapping[str, Any] | None = None,
) -> GeneralSet:
    """``base_version``'s published set; built first (``answerer()`` called, e.g. loading the
    base model) only when it is not published yet."""
    existing = read_general_set(store, base_version)
    if existing is not None:
        log.info(
            "general-knowledge set of base %s: %d questions (of %d screened), published",
            base_version,
            existing.kept,
            existing.screened,
        )
        return existing
    return build_general_set(
        store,
        base_version,
        answerer(),
        max_questions=max_questions,
        seed=seed,
        max_new_tokens=max_new_tokens,
        questions_path=questions_path,
        created_by=created_by,
    )
