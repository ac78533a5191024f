"""Other wordings of an augmentation question, by rule: the same fact asked as users ask it.

A small model fine-tuned on a few wordings of a question answers those wordings and not
another: on night 1 of the sandbox the pretrained base, trained on the augmentation's
questions, says 16 of 17 of them back and 3 of the 13 new facts asked in a user's words
(``bench/RESULTS.md``, "Said in the forms it was taught"). A fact is learned so that it can be
extracted when it is seen in many forms (Allen-Zhu & Li 2023, arXiv:2309.14316), and the base
is too small to paraphrase (asked to, it restates the sentence), so the forms are written by
rules of English that hold for any day's news: an owner's possessive as an ``of`` phrase
("Pulse X2's battery" → "the battery of the Pulse X2"), a figure-bearing modifier left out
("the base model with 128 GB of storage" → "the base model"), the wh-phrase as users also
write it ("How much does … cost?" → "What is the price of …?", "When does" → "On what date
does", "how many months" → "how long", "who or what" → "what"), and a leading aside dropped
("It's official: …").

:func:`question_variants` applies every rule that fits, alone and together, and returns the
distinct new wordings in a fixed order, the original left out. Nothing here reads evaluation
probes or questions.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: Durations a "how many" question may ask as "how long".
_DURATIONS = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")
_FIGURE = r"[$€£]?\d(?:[\d.,]*\d)?"
#: A figure with its unit after a preposition, inside a noun phrase: "with 128 GB of storage".
_FIGURE_MODIFIER = re.compile(
    rf"\swith\s(?:an?\s)?{_FIGURE}(?:%|\s?(?!per\b)[A-Za-z]+)?"
    r"(?:\sof\s[a-z]+)?(?=[\s?])"
)
#: A question asked wh-word first (after an optional ``"<topic>: "``), as users ask.
_FRONTED = re.compile(
    r"^(?:[^:?]+:\s)?(?:How much|How many \w+|How long|What|When|Who or what|Who|Which|Where)"
    r"\s(?:does|do|did|is|are|was|were|will|can|has|have)\b"
)
#: A short leading aside that is not the question's subject: "It's official: …".
_ASIDE = re.compile(r"^(?P<aside>[^:?]{2,30}):\s+(?P<rest>[A-Za-z].*\?)$")
_MAX_ASIDE_WORDS = 3
_LEAD = r"^(?P<lead>[^:?]+:\s)?"
_COST = re.compile(rf"{_LEAD}How much (?:does|do|did) (?P<what>.+?) cost\?$")
_HOW_MUCH_IS = re.compile(rf"{_LEAD}How much (?:is|are|was|were) (?P<what>.+?)\?$")
_FRONT_WHEN = re.compile(rf"{_LEAD}When\b")
#: Particles of phrasal verbs ("dug up"): not the verb that closes a question.
_PARTICLES = ("up", "down", "out", "off", "in", "on", "back", "over", "away")
_IN_PLACE_WHEN = re.compile(r"\b(?P<prep>on|at|in|since|from|after|until|by) when\?$")
_HOW_MANY_DURATION = re.compile(rf"\bHow many (?:{'|'.join(_DURATIONS)})\b")
_WHO_OR_WHAT = re.compile(r"\bWho or what\b")
_PERCENT = re.compile(r"\bby what percent\b")
#: (preposition, noun) that ask "when" for a date span of each shape (:mod:`freshlm.spans`).
_WHEN_BY_SHAPE = {
    "time": ("at", "time"),
    "year": ("in", "year"),
    "month": ("in", "month"),
    "month-year": ("in", "month"),
    "month-day": ("on", "date"),
    "day-month": ("on", "date"),
    "iso": ("on", "date"),
}


def _when_as(answer: str) -> tuple[str, str] | None:
    """What "when" asks for, by the answer's kind as the span extractor reads it: (its
    preposition, its noun) for a time of day, a year, a month, a date; None for another
    kind."""
    from freshlm.spans import extract_spans

    dates = [s for s in extract_spans(answer, "en") if s.type == "date"]
    return _WHEN_BY_SHAPE.get(dates[0].shape.removesuffix("-year")) if dates else None


def _possessive_as_of(question: str, topic: str | None, _: str) -> str | None:
    """ "How much does Pulse X2's base model cost?" → "How much does the base model of the
    Pulse X2 cost?": in a fronted question whose topic's possessive owns one or two words
    before the closing verb (or a "with" phrase, or the question mark)."""
    if not topic or not _FRONTED.match(question):
        return None
    found = re.search(
        rf"(?:\b[Tt]he )?\b{re.escape(topic)}['’]s (?P<noun>[a-z][\w-]*(?: [a-z][\w-]*)??)"
        rf"(?P<rest>(?: with [^?]*)? (?!(?:{'|'.join(_PARTICLES)})\?)[a-z]+\?|\?)$",
        question,
    )
    if not found:
        return None
    out = f"{question[: found.start()]}the {found['noun']} of the {topic}{found['rest']}"
    return out[0].upper() + out[1:]


def _without_figure_modifier(question: str, _: str | None, __: str) -> str | None:
    """ "How much does the base model with 128 GB of storage cost?" → "How much does the base
    model cost?": in a fronted question, a figure that qualifies what is asked about, left
    out as a user would leave it out."""
    if not _FRONTED.match(question):
        return None
    found = _FIGURE_MODIFIER.search(question)
    if not found:
        return None
    return question[: found.start()] + question[found.end() :]


def _wh_as_users_write_it(question: str, _: str | None, answer: str) -> str | None:
    """The wh-phrase in another common wording: "How much does X cost?" → "What is the price
    of X?", "How much is X?" → "What is the price of X?", a fronted "When" → "On what date"
    (or "At what time", "In what year", by the answer), an in-place "on when?" → "on what
    date?", "How many months" → "How long", a fronted "Who or what" → "What", "by what
    percent" → "by how much"."""
    if found := _COST.match(question) or _HOW_MUCH_IS.match(question):
        return f"{found['lead'] or ''}What is the price of {found['what']}?"
    kind = _when_as(answer)
    if kind and (found := _FRONT_WHEN.match(question)):
        preposition, noun = kind
        wording = f"{preposition.capitalize()} what {noun}"
        return f"{found['lead'] or ''}{wording}{question[found.end() :]}"
    if kind and (found := _IN_PLACE_WHEN.search(question)):
        return f"{question[: found.start()]}{found['prep']} what {kind[1]}?"
    if _HOW_MANY_DURATION.search(question) and _FRONTED.match(question):
        return _HOW_MANY_DURATION.sub("How long", question)
    if _WHO_OR_WHAT.search(question) and _FRONTED.match(question):
        return _WHO_OR_WHAT.sub("What", question)
    if _PERCENT.search(question):
        return _PERCENT.sub("by how much", question)
    return None


def _without_aside(question: str, topic: str | None, _: str) -> str | None:
    """ "It's official: the festival is on when?" → "The festival is on when?": a short
    leading aside that is not the topic's name (which says what the question is about)."""
    found = _ASIDE.match(question)
    if (
        not found
        or len(found["aside"].split()) > _MAX_ASIDE_WORDS
        or (topic and found["aside"].strip().lower() == topic.lower())
    ):
        return None
    rest = found["rest"]
    return rest[0].upper() + rest[1:]


_RULES: tuple[Callable[[str, str | None, str], str | None], ...] = (
    _without_aside,
    _without_figure_modifier,
    _possessive_as_of,
    _wh_as_users_write_it,
)


def question_variants(question: str, topic: str | None, answer: str, limit: int = 4) -> list[str]:
    """Up to ``limit`` other wordings of ``question`` (about ``topic``, answered by
    ``answer``): each rule applied to the question and to every wording already written,
    breadth first, so the first variants change one thing and later ones combine them; the
    original and repeats left out."""
    seen = {question}
    frontier = [question]
    out: list[str] = []
    while frontier and len(out) < limit:
        written = []
        for text in frontier:
            for rule in _RULES:
                variant = rule(text, topic, answer)
                if variant and variant not in seen:
                    seen.add(variant)
                    written.append(variant)
        out += written
        frontier = written
    return out[:limit]
