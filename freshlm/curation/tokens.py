"""Word tokenization shared by the quality and toxicity rules: one regex, no model.

The Gopher, C4 and FineWeb rules count "words" the way a word tokenizer does: punctuation marks
are tokens of their own (so ``"#OrrinPulse"`` is ``#`` + ``OrrinPulse``) and URLs stay whole.
datatrove uses spaCy's English tokenizer for this; :data:`WORD_RE` approximates it in a single
C-level ``findall`` (no per-character Python), which is what makes curation fast. It treats
Hangul like any other letters, so Korean eojeol (space-separated words) are words.

The contract's ``n_words`` is different and simpler: whitespace-separated tokens.
"""

from __future__ import annotations

import re
import sys
import unicodedata

WORD_RE = re.compile(
    r"https?://\S+|www\.\S+"  # URLs are one token, as in spaCy
    r"|\w+(?:['’.,:]\w+)*"  # words; inner apostrophes/decimal points stay ("5,200", "X2's")
    r"|[^\w\s]"  # every other non-space character is a token of its own
)
HAS_ALPHA_RE = re.compile(r"[^\W\d_]")


def _punctuation() -> frozenset[str]:
    # ASCII punctuation plus every Unicode punctuation character (categories P*): a token made of
    # these is a "symbol", not a word (Gopher's mean word length ignores symbols). Emoji and
    # currency signs are not punctuation, as in datatrove.
    ascii_punct = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
    unicode_punct = {
        chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)).startswith("P")
    }
    return frozenset(ascii_punct | unicode_punct)


PUNCTUATION = _punctuation()

# Line endings that end a sentence, in scripts FreshLM reads (FineWeb's "terminal punctuation").
TERMINAL_PUNCTUATION = (".", "!", "?", "…", "。", "！", "？", "．", "｡", "‼", "⁇", "⁈", "⁉")


def whitespace_words(text: str) -> int:
    """The contract's ``n_words``: whitespace-separated tokens (Hangul eojeol count as words)."""
    return len(text.split())
