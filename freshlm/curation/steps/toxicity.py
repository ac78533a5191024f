"""Toxicity: a word-list screen with a ratio threshold; flagged documents are dropped.

Lists (one entry per line, ``#`` comments; see ``wordlists/README.md`` for sources/licences):
LDNOOBW English (CC BY 4.0) and FreshLM's Korean list. Matching:

* single words match whole lowercase word tokens (``\\w+``), never substrings ("ass" does not
  match "class");
* multi-word phrases match consecutive tokens (word boundaries on both ends);
* entries with no word characters (the LDNOOBW emoji) are counted as substrings;
* Korean entries match at the start of a Hangul word, because particles and endings attach to
  the end of the word (씨발놈아 contains 씨발); an exception list keeps benign words that start
  like an entry (시발점 "starting point").

``toxicity`` = hits / words. A document is dropped (``toxicity:ratio``) when that share is above
``max_ratio`` with at least ``min_hits`` hits; the detail lists up to five matched entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from freshlm.curation.config import ToxicityConfig
from freshlm.curation.steps.base import Doc, DocStep, Drop

_TOKEN_RE = re.compile(r"\w+")
_HANGUL_RE = re.compile("[\uac00-\ud7a3]")
# Benign Korean words that begin like a listed entry (prefix matching would flag them).
KOREAN_EXCEPTIONS = frozenset({"시발점", "시발역", "시발택시", "시발자동차"})
_EXCEPTION_PREFIXES = tuple(sorted(KOREAN_EXCEPTIONS))


class WordLists:
    """Compiled word lists: single words, phrases by first word, symbols, Korean prefixes."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.words: set[str] = set()
        self.phrases: dict[str, list[tuple[str, ...]]] = {}
        self.symbols: list[str] = []
        self.korean: set[str] = set()
        for raw in entries:
            entry = raw.strip().lower()
            if not entry or entry.startswith("#"):
                continue
            tokens = tuple(_TOKEN_RE.findall(entry))
            if not tokens:
                self.symbols.append(entry)
            elif _HANGUL_RE.search(entry) and len(tokens) == 1:
                self.korean.add(tokens[0])
            elif len(tokens) == 1:
                self.words.add(tokens[0])
            else:
                self.phrases.setdefault(tokens[0], []).append(tokens)
        self.phrase_starts = frozenset(self.phrases)
        self.korean_lengths = sorted({len(k) for k in self.korean})

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> WordLists:
        entries: list[str] = []
        for path in paths:
            try:
                entries.extend(Path(path).read_text(encoding="utf-8").splitlines())
            except OSError as exc:
                raise FileNotFoundError(f"toxicity word list {path} is unreadable: {exc}") from None
        return cls(entries)

    def matches(self, text: str) -> tuple[int, int, list[str]]:
        """(hits, words, matched entries) for ``text``."""
        lower = text.lower()
        tokens = _TOKEN_RE.findall(lower)
        hits = 0
        found: list[str] = []
        if self.words.intersection(tokens):
            words = self.words
            for token in tokens:
                if token in words:
                    hits += 1
                    found.append(token)
        if self.phrase_starts.intersection(tokens):
            phrases = self.phrases
            for i, token in enumerate(tokens):
                for phrase in phrases.get(token, ()):
                    if tuple(tokens[i : i + len(phrase)]) == phrase:
                        hits += 1
                        found.append(" ".join(phrase))
        for symbol in self.symbols:
            if symbol in lower:
                n = lower.count(symbol)
                hits += n
                found.append(symbol)
        if self.korean and _HANGUL_RE.search(lower):
            korean = self.korean
            for token in tokens:
                if not _HANGUL_RE.match(token) or token.startswith(_EXCEPTION_PREFIXES):
                    continue
                for length in self.korean_lengths:
                    if length > len(token):
                        break
                    if token[:length] in korean:
                        hits += 1
                        found.append(token[:length])
                        break
        return hits, len(tokens), found


class ToxicityStep(DocStep):
    """Set ``toxicity``; drop documents above the ratio. Counters: ``docs_with_hits``."""

    name = "toxicity"

    def __init__(self, config: ToxicityConfig | None = None) -> None:
        super().__init__()
        self.config = config or ToxicityConfig()
        self.lists = WordLists.from_files(self.config.lists)

    def process(self, doc: Doc) -> Drop | None:
        hits, words, found = self.lists.matches(doc["text"])
        ratio = hits / words if words else 0.0
        doc["toxicity"] = round(ratio, 4)
        if hits:
            self.counters["docs_with_hits"] += 1
        if hits >= self.config.min_hits and ratio > self.config.max_ratio:
            shown = ", ".join(sorted(set(found))[:5])
            return Drop("ratio", f"{hits} of {words} words on the lists ({ratio:.1%}): {shown}")
        return None
