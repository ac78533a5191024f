"""Whether a written answer states an expected one, read as a person reads it.

Case, Unicode forms, thousands separators, spacing and punctuation around the words, a
figure's unit in the plural, as "30-month" or written against the figure ("5,200mAh"), and
which generic person a definition addresses ("glued to your phone", "glued to their phone",
"to one's phone") do not matter; the words, numbers and currency do ("$64" is not "$649").
The evaluator's said figure (:mod:`freshlm.evaluation.answers`) and the served model's canaries
(:mod:`freshlm.monitoring.canaries`) both count an answer this way.
"""

from __future__ import annotations

import re
import unicodedata

_THOUSANDS = re.compile(r"(?<=\d)[,\u202f\u00a0'](?=\d{3}\b)")
_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")
_NOT_WORD = re.compile(r"[^\w$€£¥₩%\u2024]+")
#: A figure's unit in the plural ("30 months"): singular, as in "a 30-month warranty", which
#: states the same figure.
_PLURAL_UNIT = re.compile(r"(?<=\d) ([^\W\d_]{2,}?)s\b")
#: A figure written against its unit ("5,200mAh"): the same figure as with a space.
_GLUED_UNIT = re.compile(r"(?<=\d)(?=[^\W\d_])")
#: The possessives of a generic person, as definitions write them ("so glued to your phone",
#: "to their phone", "to one's phone"): one word, read after punctuation is gone.
_GENERIC_POSSESSIVE = re.compile(r"\b(?:your|their|one s|someone s)\b")


def normalize(text: str) -> str:
    """Lower case, NFKC, no thousands separators, every run of characters other than
    letters, digits, currency signs and ``%`` collapsed to one space (a decimal point stays),
    a unit written against its figure set apart ("5,200mAh" reads "5200 mah"), the word
    after a figure singular ("30 months" and "30-month" both read "30 month"), and a generic
    person's possessive ("your", "their", "one's") read as "their"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _THOUSANDS.sub("", _GLUED_UNIT.sub(" ", text))
    text = _DECIMAL_POINT.sub("\u2024", text)  # a placeholder the punctuation pass keeps
    text = _NOT_WORD.sub(" ", text).replace("\u2024", ".")
    text = _PLURAL_UNIT.sub(r" \1", " ".join(text.split()))
    return _GENERIC_POSSESSIVE.sub("their", text)


def answer_matches(expected: str, generated: str) -> bool:
    """True when the generated text contains the expected answer as whole words, after
    :func:`normalize` ("5,200 mAh" matches "It has a 5200 mAh battery."; "$64" does not match
    "$649")."""
    want = normalize(expected)
    if not want:
        return False
    return re.search(rf"(?<![\w.]){re.escape(want)}(?![\w]|\.\d)", normalize(generated)) is not None
