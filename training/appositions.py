"""A sentence's appositions restated as sentences of their own ("X, a Y" as "X is a Y").

News packs facts into appositions: "We present LexiDrift, a benchmark of 14,200 neologisms
collected from …", "… said the lab's director, Dr. Tunde Adeyemi." Asked in place, such a fact
is asked through the whole sentence around it (a quote, a "We present"), which no reader asks;
restated as a copular sentence ("LexiDrift is a benchmark of 14,200 neologisms.", "The lab's
director is Tunde Adeyemi.": a title is left out, the name is the span) it has the simple
shape subject, verb, span that :mod:`training.augment` asks the way users ask, and it states
the fact a second way.

Two English shapes, each a rule of the language, not of any source:

* a name, then a description with an article ("LexiDrift, a benchmark of …", "Tunde Adeyemi,
  the lab's director,"): "<name> is <description>";
* a description that names a role, then a person's name ("the lab's director, Dr. Tunde
  Adeyemi", "Orrin's chief executive, Mara Lind,"): "<description> is <name>".

A description ends where the apposition does (a comma, a semicolon, a parenthesis, a quote,
the sentence's end) or where a reduced relative clause starts ("… neologisms collected from
…": what was collected is another fact); one that runs into a finite verb is a clause's
subject, no apposition ("November 20, the city announced …").
"""

from __future__ import annotations

import re

from freshlm.spans import FUNCTION_WORDS, extract_spans

#: A name: capitalised words (a model number or an inner "of"/"and" allowed), not a sentence's
#: first word when that is a function word.
_NAME = r"[A-Z][\w&'’.-]*(?:\s(?:of\s|and\s)?[A-Z0-9][\w&'’.-]*){0,5}"
_NAME_THEN_DESCRIPTION = re.compile(
    rf"(?P<name>{_NAME})(?:\s\([^()]{{1,60}}\))?,\s(?P<description>(?:a|an|the)\s(?:[^,;:()\"“”]|,(?=\d))+)"
)
_TITLE = r"(?:(?:Dr|Mr|Mrs|Ms|Prof)\.?\s)?"
_PERSON = r"[A-Z][\w'’-]+(?:\s[A-Z][\w'’-]+){1,3}"
_DESCRIPTION_THEN_PERSON = re.compile(
    rf"(?P<description>\b(?:the|its|their|[A-Z][\w]*['’]s)\s[a-z][^,;:()\"“”]{{2,60}}),\s"
    rf"{_TITLE}(?P<person>{_PERSON})(?=\s*(?:[,;.!?]|$))"
)
#: Words that cannot start a name: those capitalised only by position or grammar, and the
#: openers of a clause before its subject ("Because of Storm Ilse, the festival …").
_NOT_A_NAME = FUNCTION_WORDS | {
    "Because", "Although", "Despite", "Unlike", "According", "Live", "of", "and",
}  # fmt: skip
_PREPOSITION_BEFORE = re.compile(
    r"\b(?:in|on|at|by|of|for|from|after|before|since|until|with|without|during|near|to|into)\s$",
    re.IGNORECASE,
)
#: A word that starts a reduced or full relative clause: the description ends before it.
_CLAUSE_START = re.compile(r"\s(?:[a-z]{3,}ed|that|which|who|whose|where|when)\b")
#: A finite verb: a "description" that runs into one is a clause's subject ("November 20, the
#: city announced …", "Sam, the spare key is under …"), no apposition.
_FINITE = re.compile(
    r"\s(?:is|are|was|were|will|would|can|could|has|have|had|says|said|does|did)\b"
)
_MAX_DESCRIPTION_WORDS = 12
_MIN_DESCRIPTION_WORDS = 2


def restated(sentence: str) -> list[str]:
    """Each apposition of ``sentence`` (English) as a sentence of its own, in order; none
    when it has no apposition of the two shapes (see the module docstring)."""
    out: list[str] = []
    for m in _NAME_THEN_DESCRIPTION.finditer(sentence):
        name = _trimmed_name(m["name"])
        if (
            name is None
            or _is_a_date(name)
            or _PREPOSITION_BEFORE.search(sentence[: m.end("name") - len(name)])
        ):
            continue
        description = _description(m["description"])
        if description:
            out.append(f"{name} is {description}.")
    for m in _DESCRIPTION_THEN_PERSON.finditer(sentence):
        description = _description(m["description"])
        if description:
            out.append(f"{description[0].upper()}{description[1:]} is {m['person']}.")
    return list(dict.fromkeys(out))


def _is_a_date(name: str) -> bool:
    """Whether ``name`` starts with a date as :func:`freshlm.spans.extract_spans` reads one
    ("November 20, the city announced …": a time, not a thing a description describes)."""
    return any(s.type == "date" and s.start == 0 for s in extract_spans(name, "en"))


def _trimmed_name(name: str) -> str | None:
    """``name`` without the function words a sentence may open with ("Because of Storm Ilse"
    names "Storm Ilse"); None when nothing is left."""
    words = name.split()
    while words and words[0] in _NOT_A_NAME:
        words.pop(0)
    return " ".join(words) or None


def _description(text: str) -> str | None:
    """An apposition's description, cut where a clause starts and at its last word; None when
    too short or too long to be one noun phrase."""
    finite = _FINITE.search(text)
    cut = _CLAUSE_START.search(text)
    if finite and (cut is None or finite.start() < cut.start()):
        return None
    if cut and len(text[: cut.start()].split()) <= _MIN_DESCRIPTION_WORDS:
        return None  # "the city announced": a subject and its verb
    if cut:
        text = text[: cut.start()]
    text = text.strip(" .!?-—–")
    words = text.split()
    if not _MIN_DESCRIPTION_WORDS <= len(words) <= _MAX_DESCRIPTION_WORDS:
        return None
    return text
