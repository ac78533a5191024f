"""Knowledge augmentation: each new document's facts stated in several forms.

A language model learns a fact from fine-tuning when it sees it stated in varied forms, not
when it reads one page many times (Allen-Zhu & Li 2023, "Physics of Language Models 3.1",
arXiv:2309.14316: knowledge augmentation; Ovadia et al. 2023, arXiv:2312.05934: paraphrases;
Yang et al. 2024, arXiv:2409.07431, synthetic continued pretraining). From every sentence of a
new document that carries a salient span (a price, number, date, new term or name:
:func:`freshlm.spans.extract_spans`), :func:`augment_document` writes:

* the sentence anchored to its topic (``"<title>: <sentence>"``), so the fact reads as a fact
  about something even out of its page;
* question-and-answer turns, in the model's chat template when its tokenizer has one
  (``Question: …\\nAnswer: …`` otherwise), the answer always the whole sentence so the model
  learns to *say* the fact:
  - the sentence asked back up to its span (``"The base model costs how much?"``),
  - for a new term, ``What does '<term>' mean?``,
  - the sentence with its span blanked, answered by the span.

Everything is derived from the document's own text by rules: nothing here reads evaluation
probes or questions, so it works the same on any day's news.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from freshlm.spans import Span, extract_spans, sentence_starts

#: The wh-phrase that asks for a span of each type.
ASK_FOR = {
    "price": "how much",
    "date": "when",
    "number": "how many",
    "term": "what",
    "entity": "who or what",
}
MIN_SENTENCE_WORDS = 5
MAX_SENTENCE_CHARS = 400
MIN_PREFIX_WORDS = 3
BLANK = "___"

#: ``(question, answer) -> text``: how one turn is written for the model being trained.
TurnFormat = Callable[[str, str], str]


def plain_turn(question: str, answer: str) -> str:
    return f"Question: {question}\nAnswer: {answer}"


def chat_turn(tokenizer: Any) -> TurnFormat:
    """Turns in ``tokenizer``'s chat template (user asks, assistant answers); the plain form
    when the tokenizer has no template."""
    if not getattr(tokenizer, "chat_template", None):
        return plain_turn

    def render(question: str, answer: str) -> str:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            tokenize=False,
        )

    return render


@dataclasses.dataclass(frozen=True)
class Sentence:
    text: str
    spans: tuple[Span, ...]  # offsets relative to ``text``


def fact_sentences(text: str, language: str) -> list[Sentence]:
    """The sentences of ``text`` that carry at least one salient span, each with its spans."""
    spans = extract_spans(text, language)
    starts = [*sentence_starts(text), len(text)]
    found = []
    for begin, end in itertools.pairwise(starts):
        raw = text[begin:end]
        stripped = raw.strip()
        if not stripped or len(stripped) > MAX_SENTENCE_CHARS:
            continue
        if len(stripped.split()) < MIN_SENTENCE_WORDS and language != "ko":
            continue
        offset = begin + (len(raw) - len(raw.lstrip()))
        inside = tuple(
            dataclasses.replace(s, start=s.start - offset, end=s.end - offset)
            for s in spans
            if s.start >= offset and s.end <= offset + len(stripped)
        )
        if inside:
            found.append(Sentence(stripped, inside))
    return found


def _asked_back(sentence: Sentence, span: Span) -> str | None:
    """The sentence up to its span, with the span's wh-phrase: ``"X costs how much?"``."""
    prefix = sentence.text[: span.start].rstrip(" ,:;-–—(\"'“‘")
    if len(prefix.split()) < MIN_PREFIX_WORDS:
        return None
    return f"{prefix} {ASK_FOR[span.type]}?"


def _blanked(sentence: Sentence, span: Span) -> str:
    return sentence.text[: span.start] + BLANK + sentence.text[span.end :]


def augment_document(
    doc: Mapping[str, Any], turn: TurnFormat = plain_turn, *, max_sentences: int = 12
) -> list[str]:
    """Training texts that state ``doc``'s facts in several forms (see the module docstring),
    at most ``max_sentences`` fact sentences (the first ones: news puts the facts first)."""
    text = doc.get("text") or ""
    title = (doc.get("title") or "").strip()
    language = doc.get("language") or "en"
    out: list[str] = []
    for sentence in fact_sentences(text, language)[:max_sentences]:
        out.append(f"{title}: {sentence.text}" if title else sentence.text)
        asked: set[str] = set()
        for span in sentence.spans:
            questions = [_asked_back(sentence, span)]
            if span.type == "term":
                questions.append(f"What does {span.text} mean?")
            for question in questions:
                if question and question not in asked:
                    asked.add(question)
                    out.append(turn(question, sentence.text))
            blank = f"Fill in the blank: {_blanked(sentence, span)}"
            out.append(turn(blank, span.text))
    return out


def augment_documents(
    docs: Sequence[Mapping[str, Any]], turn: TurnFormat = plain_turn
) -> dict[str, list[str]]:
    """``{doc id: texts}`` for every document with at least one fact sentence."""
    augmented = {}
    for doc in docs:
        texts = augment_document(doc, turn)
        if texts:
            augmented[str(doc["id"])] = texts
    return augmented
