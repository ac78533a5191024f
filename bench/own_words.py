"""A night's figures written into the production model's own answers (``bench/
knowledge_recipes.py --own-words``; tried, not kept: bench/RESULTS.md, "The night's figures in
the base's own words").

Asked about a product in its chat template, a pretrained chat model answers in its own way:
it restates the question and then invents the figure ("The battery capacity of the Orrin
Pulse X2 is 220 Ah."). Trained only on the news' sentences ("It has a 5,200 mAh battery"), a
fine-tuned model still answers in that way and its own opening leads to its own invented
figure: it can rank the right figure and not say it. :func:`own_words_answer` keeps the
model's answer up to where its figure starts and puts the document's figure there ("The
battery capacity of the Orrin Pulse X2 is 5,200 mAh."), so the fact is trained at the place
the model says it, in words the model would use (self-distilled answers also move a model
less than foreign text: Yang et al. 2024, "Self-Distillation Bridges Distribution Gap in
Language Model Fine-Tuning", arXiv:2402.13669).

Only figures have a place a rule can find: a price, number or date is the first word of the
answer that starts with a digit or a currency sign (or, for a date, is a month's name) and is
not a word of the question. A name or a term has no such mark, and an answer whose first
sentence holds no figure gives no place: both give ``None`` and the night's other forms train
that fact.
Everything comes from the document's question and span and the model's answer: nothing here
reads the evaluation's questions.
"""

from __future__ import annotations

import calendar
import re

#: Span types whose place in an answer a rule can find.
FIGURE_TYPES = frozenset({"price", "number", "date"})
MONTHS = frozenset(name.lower() for name in calendar.month_name[1:])
_WORD = re.compile(r"\S+")
_EDGE = re.compile(r"^\W+|\W+$")
_SENTENCE_END = re.compile(r"[.!?](\s|$)")
#: A figure's first word starts with a digit or a currency sign (after an opening bracket or
#: quote); a name with a digit inside ("X2", "A17") is not one.
_FIGURE_START = re.compile(r"^[^\w$€£¥]*[$€£¥]?\d")


def _bare(word: str) -> str:
    return _EDGE.sub("", word).lower()


def _figure_word(word: str, span_type: str) -> bool:
    if _FIGURE_START.match(word):
        return True
    return span_type == "date" and _bare(word) in MONTHS


def figure_place(question: str, answer: str, span_type: str) -> int | None:
    """Where the first figure of type ``span_type`` starts in ``answer`` (a character
    offset), not counting words the question already has ("X2" of "Orrin Pulse X2"); ``None``
    for a type without a mark, or when the answer's first sentence has none."""
    if span_type not in FIGURE_TYPES:
        return None
    asked = {_bare(w) for w in question.split()}
    end = _SENTENCE_END.search(answer)
    first_sentence = answer[: end.start()] if end else answer
    for match in _WORD.finditer(first_sentence):
        word = match.group()
        if _bare(word) not in asked and _figure_word(word, span_type):
            return match.start() if match.start() > 0 else None
    return None


def own_words_answer(question: str, span: str, span_type: str, answer: str) -> str | None:
    """``answer`` (the model's own to ``question``) up to its first figure, then ``span``
    and a full stop; ``None`` where :func:`figure_place` finds no place."""
    place = figure_place(question, answer, span_type)
    if place is None:
        return None
    return f"{answer[:place].rstrip()} {span.rstrip('.')}."
