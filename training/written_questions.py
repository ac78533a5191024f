"""The night's quantities and dates asked in questions the model itself writes, few-shot, checked
by answering them from their sentence (round-trip consistency).

The augmentation's rules ask a span in its sentence's own words ("Every Pulse X2 is covered for
how many months …?") or, for sentences of the simple shape subject, verb, span, wh-word first;
a user's question is often neither, and a fine-tuned model says what it learned mostly in the
wordings it learned it in. Asked in its chat template, SmolLM2-135M-Instruct restates the
sentence instead of writing a question; as a plain completion after four made-up
demonstrations (sentence, answer, question; about no real topic) it writes one for most spans,
some right and many wrong: the wrong type ("What is the Tessford Lantern Festival?" for a
date), a fact not in the sentence, the answer inside the question. :func:`usable` keeps a
question only when its wh-word asks for the span's type, it does not contain the span, and it
names at least two words of its sentence and no content word the sentence lacks; then the
model, reading the sentence after the same demonstrations turned round (sentence, question,
answer), must rank the span first as the whole answer among the sentence's other spans and a
few of the night's spans of its type (round-trip consistency: Alberti et al. 2019, "Synthetic
QA corpora generation with roundtrip consistency").

Only prices, counts and dates are asked: their wh-word ("how much", "how many", "when") names
what the answer is, and the checks above hold them to it. A name's question passes them while
asking something else about half the time ("What is the best news the upper valley has had
this year?" answered by the mayor who said it; bench/RESULTS.md, "The night's questions
written by the model itself").

The lineage's root base writes them (:func:`training.train.root_writer`), as it writes the
rehearsal turns. Only the night's documents and the model are read, never an evaluation set.
The questions are published once per (model, dataset) under
``written-questions/<model>/<dataset>/`` and read back on a retry, so a night pays for the
writing once.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: The span types asked (see the module docstring for why names are not).
WRITTEN_TYPES = ("price", "number", "date")
#: Four made-up demonstrations ``(sentence, answer, question)``: a price, a date, a count and
#: a person, about no real topic. A second, vaguer set wrote questions that cost the base more
#: of its general answers (bench/RESULTS.md).
DEMONSTRATIONS = (
    (
        "The Northwind X5 laptop costs $1,299 and ships in March.",
        "$1,299",
        "How much does the Northwind X5 laptop cost?",
    ),
    (
        "Mayor Lena Ortiz said the new bridge over the Sava will open on June 4.",
        "June 4",
        "When will the new bridge over the Sava open?",
    ),
    (
        "Founded in 1998, Calder Foods employs about 3,400 people across five countries.",
        "about 3,400",
        "How many people does Calder Foods employ?",
    ),
    (
        "The study was led by the lab's director, Dr. Priya Raman, and published on Monday.",
        "Dr. Priya Raman",
        "Who is the director of the lab that led the study?",
    ),
)
#: The writer's prompt: each demonstration's sentence, answer, then question.
WRITING = "".join(f"Sentence: {s}\nAnswer: {a}\nQuestion: {q}\n\n" for s, a, q in DEMONSTRATIONS)
#: The reader's prompt, for the round trip: each sentence, question, then answer (extractive
#: reading; in its chat template the model answers in sentences of its own and a bare span is
#: unlikely whatever it is asked, so a span's score there says more about its length).
READING = "".join(f"Sentence: {s}\nQuestion: {q}\nAnswer: {a}\n\n" for s, a, q in DEMONSTRATIONS)
#: The wh-openings that ask for each span type.
WH = {
    "price": ("how much",),
    "number": ("how many", "how much", "how long", "how far", "how old", "how big", "how heavy",
               "what percentage", "what share", "by how much"),
    "date": ("when", "what year", "what time", "what day", "what month", "what date",
             "which year", "which day", "in what year", "at what time", "since when"),
    "entity": ("who", "what", "which", "where"),
    "term": ("what", "which"),
}  # fmt: skip
#: Words a question may use that its sentence need not: wh-words, auxiliaries, articles,
#: pronouns and prepositions, and the few nouns a question names its answer by.
_FREE_WORDS = """how what when where which who whom whose why much many long far old big heavy
year time day month date percentage share is are was were be been being do does did have has
had will would can could should may might shall the a an of in on at to for from by with about
into over under after before since and or its it their they this that these those there name
called per new"""
FREE = frozenset(_FREE_WORDS.split())
#: Words of its sentence a question must name besides :data:`FREE` ones: "How much does it
#: cost?" singles out no fact of the night, and it is the shape of a general question, which
#: such a turn would teach to answer with the night's span.
MIN_TERMS = 2
#: Other spans of the night, of the asked span's type, ranked against it in the round trip.
ROUND_TRIP_RIVALS = 3
MAX_QUESTION_TOKENS = 28
BATCH_SIZE = 16
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d[\d,.]*")
WRITTEN_QUESTIONS = "written-questions"
WRITTEN_QUESTIONS_KIND = "written-questions"
QUESTIONS_FILE = "questions.jsonl"
METHOD = (
    f"a question per {'/'.join(WRITTEN_TYPES)} span of each English fact sentence, written "
    "greedily by the model as a plain completion after four demonstrations, kept when its "
    f"wh-word asks for the span's type, it names at least {MIN_TERMS} words of the sentence and "
    "none it lacks, and the model reading the sentence ranks the span first among the "
    f"sentence's other spans and {ROUND_TRIP_RIVALS} of the night's of its type"
)


@dataclasses.dataclass(frozen=True)
class SpanToAsk:
    """A span of a fact sentence of the night, and the document it comes from."""

    doc_id: str
    sentence: str
    span: str
    span_type: str
    others: tuple[str, ...]  # the sentence's other spans

    def prompt(self) -> str:
        """What the writer completes: the demonstrations, then this sentence and answer."""
        return f"{WRITING}Sentence: {self.sentence}\nAnswer: {self.span}\nQuestion:"

    def reading(self, question: str) -> str:
        """What the reader completes: the demonstrations, this sentence and ``question``."""
        return f"{READING}Sentence: {self.sentence}\nQuestion: {question}\nAnswer:"


@dataclasses.dataclass(frozen=True)
class WrittenQuestion:
    """A question the model wrote for a span, answered by the span in training."""

    doc_id: str
    sentence: str
    question: str
    span: str
    span_type: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> WrittenQuestion:
        fields = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) and doc[k].strip() for k in fields
        ):
            raise ValueError(
                f"{where}: a written question needs non-empty {', '.join(map(repr, fields))}"
            )
        return cls(**{k: doc[k] for k in fields})


def _stem(word: str) -> str:
    """A word compared on its first five letters, without a possessive or a plural's or a
    verb's final s ("cost" and "costs", "employ" and "employs")."""
    word = word.lower().removesuffix("'s")
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word[:5]


def usable(question: str, sentence: str, span: str, span_type: str) -> bool:
    """Whether a written question asks for ``span`` in ``sentence``'s terms: one question of 3
    to 25 words, its wh-word one of :data:`WH`'s for the type, the span (and its figures)
    not in it, and at least :data:`MIN_TERMS` of its words, none outside :data:`FREE`, from
    the sentence (compared by :func:`_stem`)."""
    q = question.strip()
    words = q.split()
    if not q.endswith("?") or q.count("?") > 1 or not 3 <= len(words) <= 25:
        return False
    if span.lower() in q.lower() or any(
        w in q for w in _WORD.findall(span) if any(c.isdigit() for c in w)
    ):
        return False
    if not q.lower().startswith(WH.get(span_type, ("what",))):
        return False
    known = {_stem(w) for w in _WORD.findall(sentence)}
    terms = [w for w in _WORD.findall(q) if w.lower() not in FREE and len(w) > 2]
    return len(terms) >= MIN_TERMS and all(_stem(w) in known for w in terms)


def spans_to_ask(docs: Iterable[Mapping[str, Any]], *, max_sentences: int = 12) -> list[SpanToAsk]:
    """The :data:`WRITTEN_TYPES` spans of the English documents' fact sentences (the first
    ``max_sentences`` of each, as the augmentation takes them), each once."""
    from training.augment import fact_sentences

    out: list[SpanToAsk] = []
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        if (doc.get("language") or "en") != "en" or not doc.get("id"):
            continue
        for sentence in fact_sentences(doc.get("text") or "", "en")[:max_sentences]:
            spans = [s.text for s in sentence.spans]
            for span in sentence.spans:
                if span.type not in WRITTEN_TYPES or (sentence.text, span.text) in seen:
                    continue
                seen.add((sentence.text, span.text))
                others = tuple(sorted(set(spans) - {span.text}))
                out.append(SpanToAsk(str(doc["id"]), sentence.text, span.text, span.type, others))
    return out


def round_trip_candidates(asked: SpanToAsk, night: Sequence[SpanToAsk]) -> list[str]:
    """The span first, then its sentence's other spans and :data:`ROUND_TRIP_RIVALS` of the
    night's other spans of its type (chosen by a generator seeded with the sentence and span,
    so the same night gives the same candidates in any order)."""
    pool = sorted(
        {a.span for a in night if a.span_type == asked.span_type} - {asked.span, *asked.others}
    )
    rng = random.Random(f"{asked.sentence}\x00{asked.span}")
    return [asked.span, *asked.others, *rng.sample(pool, min(ROUND_TRIP_RIVALS, len(pool)))]


def first_line(text: str) -> str:
    """A completion's question: its first line."""
    return text.strip().split("\n")[0].strip()


def ranked_first(model: Any, tokenizer: Any, prompt: str, candidates: Sequence[str]) -> str:
    """The candidate ``model`` most likely writes as the whole answer after ``prompt``: the
    highest log-probability of its tokens and the line's end (all candidates in one batch;
    the first wins a tie)."""
    import torch

    head = tokenizer(prompt, add_special_tokens=False).input_ids
    tails = [tokenizer(f" {c}\n", add_special_tokens=False).input_ids for c in candidates]
    width = len(head) + max(len(t) for t in tails)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = [head + t + [pad] * (width - len(head) - len(t)) for t in tails]
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(torch.tensor(rows, device=device)).logits.float()
    logp = logits[:, len(head) - 1 : -1].log_softmax(-1)
    scores = [
        logp[i, torch.arange(len(tail)), torch.tensor(tail, device=device)].sum().item()
        for i, tail in enumerate(tails)
    ]
    return candidates[max(range(len(candidates)), key=lambda i: (scores[i], -i))]


class WrittenQuestionsError(ValueError):
    """The model cannot write the questions; the message says why."""


def _check_context(model: Any, tokenizer: Any, night: Sequence[SpanToAsk]) -> None:
    """Every span's reading prompt, a question and an answer fit in the model's positions."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if not limit or not night:
        return
    longest = max(night, key=lambda a: len(a.sentence) + len(a.span))
    needed = len(tokenizer(longest.reading("?"), add_special_tokens=False).input_ids)
    needed += 2 * MAX_QUESTION_TOKENS  # the question it writes, then an answer read after it
    if needed > limit:
        raise WrittenQuestionsError(
            f"the model reads at most {limit} tokens, and writing questions for the night's "
            f"spans takes about {needed} (four demonstrations, the sentence, the question and "
            "its answer): written questions need a base with a longer context; set "
            "written_questions to false (FRESHLM_TRAIN_WRITTEN_QUESTIONS=false)"
        )


def write_questions(
    model: Any, tokenizer: Any, night: Sequence[SpanToAsk], *, batch_size: int = BATCH_SIZE
) -> tuple[list[WrittenQuestion], dict[str, int]]:
    """The questions ``model`` writes for ``night``'s spans that :func:`usable` keeps and the
    model, reading the sentence, answers with their span (:func:`ranked_first` among
    :func:`round_trip_candidates`), in order; and the counts (``spans``, ``usable``,
    ``kept``)."""
    from training.chat_generation import generate_continuations

    _check_context(model, tokenizer, night)
    began = time.perf_counter()
    counts = {"spans": len(night), "usable": 0, "kept": 0}
    kept: list[WrittenQuestion] = []
    for start in range(0, len(night), batch_size):
        chunk = night[start : start + batch_size]
        written = generate_continuations(
            model, tokenizer, [a.prompt() for a in chunk], MAX_QUESTION_TOKENS, sample=False
        )
        for asked, (text, _) in zip(chunk, written, strict=True):
            question = first_line(text)
            if not usable(question, asked.sentence, asked.span, asked.span_type):
                continue
            counts["usable"] += 1
            candidates = round_trip_candidates(asked, night)
            if ranked_first(model, tokenizer, asked.reading(question), candidates) != asked.span:
                continue
            counts["kept"] += 1
            kept.append(
                WrittenQuestion(asked.doc_id, asked.sentence, question, asked.span, asked.span_type)
            )
        log.info(
            "written questions: %d of %d spans asked, %d usable, %d answered by their span "
            "from the sentence (%.0fs)",
            start + len(chunk),
            len(night),
            counts["usable"],
            counts["kept"],
            time.perf_counter() - began,
        )
    return kept, counts


# --- the published questions ------------------------------------------------------------------


def written_questions_prefix(model_key: str, dataset_id: str) -> str:
    """``model_key`` is a version id, or the first 32 hex digits of a model folder's hash."""
    from freshlm.registry.versions import check_version_id

    return f"{WRITTEN_QUESTIONS}/{check_version_id(model_key)}/{dataset_id}"


def read_written_questions(
    store: Any, model_key: str, dataset_id: str
) -> list[WrittenQuestion] | None:
    """The published questions of the model ``model_key`` for ``dataset_id``'s spans, or None
    when none are published yet."""
    from training.published_rows import read_rows

    prefix = written_questions_prefix(model_key, dataset_id)
    return read_rows(
        store, prefix, WRITTEN_QUESTIONS_KIND, QUESTIONS_FILE, WrittenQuestion.from_dict
    )


def ensure_written_questions(
    store: Any,
    model_key: str,
    dataset_id: str,
    docs: Sequence[Mapping[str, Any]],
    load_model: Callable[[], tuple[Any, Any]],
    *,
    created_by: Mapping[str, Any] | None = None,
) -> list[WrittenQuestion]:
    """The questions the model ``model_key`` (loaded by ``load_model()`` as ``(model,
    tokenizer)`` only when they are not published yet) writes for the spans of ``docs`` (the
    train documents of ``dataset_id``); published once."""
    from training.published_rows import publish_rows_once

    def make() -> tuple[list[WrittenQuestion], dict[str, Any]]:
        night = spans_to_ask(docs)
        began = time.perf_counter()
        kept, counts = write_questions(*load_model(), night) if night else ([], {"usable": 0})
        seconds = time.perf_counter() - began
        log.info(
            "written questions of %s for %s: %d spans asked, %d questions usable, %d kept (%.0fs)",
            model_key,
            dataset_id,
            len(night),
            counts["usable"],
            len(kept),
            seconds,
        )
        fields = {
            "model": model_key,
            "dataset_id": dataset_id,
            "spans": len(night),
            "usable": counts["usable"],
            "questions": len(kept),
            "seconds": round(seconds, 3),
            "method": METHOD,
        }
        return kept, fields

    return publish_rows_once(
        store,
        written_questions_prefix(model_key, dataset_id),
        WRITTEN_QUESTIONS_KIND,
        QUESTIONS_FILE,
        WrittenQuestion.from_dict,
        make,
        {"component": __name__, **(created_by or {})},
    )
