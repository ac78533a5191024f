"""Quality: Gopher repetition and quality rules, C4 line rules and FineWeb line rules.

The rules for each document come from ``config.rules_for(language, kind)`` (see
:mod:`freshlm.curation.config` for the thresholds, their sources and the departures for SNS
posts, abstracts and Korean). They run in datatrove's order — repetition, Gopher quality, C4,
FineWeb — so decisions can be compared one to one (``bench/curate.py``). Drop reasons:

``gopher_rep:<rule>``  dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac,
                       top_<n>_gram, duplicated_<n>_n_grams
``gopher:<rule>``      min_words, max_words, avg_word_length_low/high, too_many_hashes,
                       too_many_ellipsis, too_many_bullets, too_many_end_ellipsis,
                       alpha_words, stop_words
``c4:<rule>``          lorem_ipsum, curly_bracket, too_few_sentences
``fineweb:<rule>``     line_punct_ratio, short_line_ratio, char_dup_ratio, list_ratio

C4 removes failing *lines* (counted as ``c4_lines_removed:<why>``) and keeps the document's
paragraph breaks; FineWeb then judges the remaining lines, as it would in datatrove.

Speed: tokens come from one regex ``findall``; n-gram statistics hash token ids with numpy and
only fall back to an exact Python scan when a cheap upper bound says a threshold may be crossed.
"""

from __future__ import annotations

import re

import numpy as np

from freshlm.curation.config import (
    C4Lines,
    FineWebLines,
    GopherQuality,
    GopherRepetition,
    QualityConfig,
)
from freshlm.curation.steps.base import Doc, DocStep, Drop
from freshlm.curation.tokens import (
    HAS_ALPHA_RE,
    PUNCTUATION,
    TERMINAL_PUNCTUATION,
    WORD_RE,
)

_PARAGRAPH_RE = re.compile(r"\n{2,}")
_LINES_RE = re.compile(r"\n+")
_CITATION_RE = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_SENTENCE_END_RE = re.compile(r"[.!?。！？]+['\"”’)\]]*(?=\s|$)")
_C4_END = (".", "?", "!", '"', "'")
_POLICY = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
# Odd 64-bit multipliers for rolling n-gram hashes (fixed: results must not depend on a seed).
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(duplicate elements, characters in them): every repeat after an element's first
    occurrence counts, as in Gopher's reference and datatrove."""
    seen: set[str] = set()
    dup = dup_chars = 0
    for item in items:
        if item in seen:
            dup += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup, dup_chars


class _NGrams:
    """Token n-gram keys of one document, built incrementally with numpy (n = 1, 2, ...)."""

    def __init__(self, words: list[str]) -> None:
        vocab: dict[str, int] = {}
        ids = [vocab.setdefault(w, len(vocab)) for w in words]
        self.ids = np.asarray(ids, dtype=np.uint64) + np.uint64(1)
        self.lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        self.n = 1
        self.keys = self.ids
        self.chars = self.lens  # characters in each n-gram's words (no separators)

    def advance_to(self, n: int) -> None:
        while self.n < n:
            self.n += 1
            m = len(self.ids) - self.n + 1
            if m <= 0:
                self.keys = self.keys[:0]
                self.chars = self.chars[:0]
                return
            self.keys = self.keys[:m] * _MIX + self.ids[self.n - 1 :]
            self.chars = self.chars[:m] + self.lens[self.n - 1 :]


def _top_ngram_chars(grams: _NGrams, n: int) -> int:
    """Characters covered by the most frequent n-gram (joined with spaces), first one on ties."""
    _, first, counts = np.unique(grams.keys, return_index=True, return_counts=True)
    best = counts.max()
    if best < 2:
        # Every n-gram occurs once: the "top" one is the first (datatrove's Counter order).
        return int(grams.chars[0]) + n - 1
    candidates = np.flatnonzero(counts == best)
    index = int(first[candidates].min())
    return (int(grams.chars[index]) + n - 1) * int(best)


def _dup_ngram_chars(grams: _NGrams, n: int, limit: float) -> int:
    """Characters in duplicated n-grams, scanning greedily as Gopher's reference does (a
    repeat skips ahead n tokens and is not remembered). Returns early with an upper bound when
    that bound is already within ``limit``."""
    keys = grams.keys
    uniq, first = np.unique(keys, return_index=True)
    if len(uniq) == len(keys):
        return 0
    repeat = np.ones(len(keys), dtype=bool)
    repeat[first] = False
    bound = int(grams.chars[repeat].sum())
    if bound <= limit:
        return bound
    seen: set[int] = set()
    keys_list = keys.tolist()
    chars = grams.chars
    total = idx = 0
    end = len(keys_list)
    while idx < end:
        key = keys_list[idx]
        if key in seen:
            total += int(chars[idx])
            idx += n
        else:
            seen.add(key)
            idx += 1
    return total


def repetition_problem(text: str, words: list[str], rules: GopherRepetition) -> str | None:
    """The first Gopher repetition rule ``text`` breaks, or None."""
    n_chars = len(text)
    paragraphs = _PARAGRAPH_RE.split(text.strip())
    if len(paragraphs) > 1:
        dup, dup_chars = _duplicates(paragraphs)
        if rules.max_dup_para_frac and dup / len(paragraphs) > rules.max_dup_para_frac:
            return "dup_para_frac"
        if rules.max_dup_para_char_frac and dup_chars / n_chars > rules.max_dup_para_char_frac:
            return "dup_para_char_frac"
    lines = _LINES_RE.split(text)
    if len(lines) > 1:
        dup, dup_chars = _duplicates(lines)
        if rules.max_dup_line_frac and dup / len(lines) > rules.max_dup_line_frac:
            return "dup_line_frac"
        if rules.max_dup_line_char_frac and dup_chars / n_chars > rules.max_dup_line_char_frac:
            return "dup_line_char_frac"
    if not (rules.top_ngram_char_frac or rules.dup_ngram_char_frac) or len(words) < 2:
        return None
    grams = _NGrams(words)
    for n, frac in rules.top_ngram_char_frac:
        if len(words) < n:
            break
        grams.advance_to(n)
        if _top_ngram_chars(grams, n) / n_chars > frac:
            return f"top_{n}_gram"
    for n, frac in rules.dup_ngram_char_frac:
        if len(words) < n:
            break
        grams.advance_to(n)
        dup_chars = _dup_ngram_chars(grams, n, frac * n_chars)
        if dup_chars / n_chars > frac:
            return f"duplicated_{n}_n_grams"
        if dup_chars == 0:
            # No repeated n-gram means no repeated longer n-gram either.
            break
    return None


def gopher_problem(text: str, words: list[str], rules: GopherQuality) -> str | None:
    """The first Gopher quality rule ``text`` breaks, or None."""
    n_words = len(words)
    if n_words == 0:
        return "min_words"
    non_symbol = [w for w in words if w not in PUNCTUATION]
    n_non_symbol = len(non_symbol)
    if rules.min_words and n_non_symbol < rules.min_words:
        return "min_words"
    if rules.max_words and n_non_symbol > rules.max_words:
        return "max_words"
    if n_non_symbol == 0:
        return "min_words"
    mean_length = sum(map(len, non_symbol)) / n_non_symbol
    if rules.min_avg_word_length and mean_length < rules.min_avg_word_length:
        return "avg_word_length_low"
    if rules.max_avg_word_length and mean_length > rules.max_avg_word_length:
        return "avg_word_length_high"
    if rules.max_symbol_word_ratio:
        if text.count("#") / n_words > rules.max_symbol_word_ratio:
            return "too_many_hashes"
        if (text.count("...") + text.count("…")) / n_words > rules.max_symbol_word_ratio:
            return "too_many_ellipsis"
    if rules.max_bullet_lines_ratio or rules.max_ellipsis_lines_ratio:
        lines = text.splitlines() or [""]
        if rules.max_bullet_lines_ratio:
            bullets = sum(1 for s in lines if s.lstrip().startswith(("•", "-")))
            if bullets / len(lines) > rules.max_bullet_lines_ratio:
                return "too_many_bullets"
        if rules.max_ellipsis_lines_ratio:
            ellipses = sum(1 for s in lines if s.rstrip().endswith(("...", "…")))
            if ellipses / len(lines) > rules.max_ellipsis_lines_ratio:
                return "too_many_end_ellipsis"
    if rules.min_alpha_words_ratio:
        # Over words, not punctuation tokens: Gopher counts whitespace-separated words, where
        # punctuation is attached. (datatrove divides by all spaCy tokens, so every comma
        # counts as a non-alphabetic word and ordinary news with numbers falls below 80%.)
        search = HAS_ALPHA_RE.search
        pool = words if rules.alpha_ratio_counts_punctuation else non_symbol
        alpha = sum(1 for w in pool if search(w))
        if alpha / len(pool) < rules.min_alpha_words_ratio:
            return "alpha_words"
    if rules.min_stop_words:
        stop = set(rules.stop_words)
        if len(stop.intersection(words)) < rules.min_stop_words:
            return "stop_words"
    return None


def c4_lines(text: str, rules: C4Lines, removed: dict[str, int]) -> tuple[str | None, list[str]]:
    """Apply C4's line rules. Returns (page-level problem or None, the kept lines).

    ``removed`` counts dropped lines by rule. Blank lines are kept (as "") so the caller can
    rebuild paragraphs; C4 itself would join the kept lines with single newlines.
    """
    kept: list[str] = []
    sentences = 0
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            kept.append("")
            continue
        words = line.split()
        if rules.max_word_length > 0 and any(len(w) > rules.max_word_length for w in words):
            removed["too_long_word"] = removed.get("too_long_word", 0) + 1
            continue
        if rules.remove_citations and "[" in line:
            line = _CITATION_RE.sub("", line)
        if rules.drop_lines_without_terminal_punct and (
            not line.endswith(_C4_END) or line.endswith("...")
        ):
            removed["no_terminal_punct"] = removed.get("no_terminal_punct", 0) + 1
            continue
        if len(words) < rules.min_words_per_line:
            removed["too_few_words"] = removed.get("too_few_words", 0) + 1
            continue
        lower = line.lower()
        if rules.drop_doc_with_lorem_ipsum and "lorem ipsum" in lower:
            return "lorem_ipsum", kept
        if rules.drop_lines_with_javascript and "javascript" in lower:
            removed["javascript"] = removed.get("javascript", 0) + 1
            continue
        if rules.drop_doc_with_curly_bracket and "{" in line:
            return "curly_bracket", kept
        if rules.drop_lines_with_policy and any(p in lower for p in _POLICY):
            removed["policy"] = removed.get("policy", 0) + 1
            continue
        sentences += max(1, len(_SENTENCE_END_RE.findall(line)))
        kept.append(line)
    if sentences < rules.min_sentences:
        return "too_few_sentences", kept
    return None, kept


def fineweb_problem(lines: list[str], n_words: int, rules: FineWebLines) -> str | None:
    """The first FineWeb rule broken by the non-blank ``lines`` of a text, or None."""
    if not lines:
        return "empty"
    n = len(lines)
    if rules.min_terminal_punct_lines_ratio is not None:
        ended = sum(1 for line in lines if line.endswith(TERMINAL_PUNCTUATION))
        if ended / n < rules.min_terminal_punct_lines_ratio:
            return "line_punct_ratio"
    if rules.max_short_lines_ratio is not None:
        short = sum(1 for line in lines if len(line) <= rules.short_line_chars)
        if short / n > rules.max_short_lines_ratio:
            return "short_line_ratio"
    if rules.max_dup_line_chars_ratio is not None and n > 1:
        chars = sum(map(len, lines))
        if chars and _duplicates(lines)[1] / chars > rules.max_dup_line_chars_ratio:
            return "char_dup_ratio"
    # Newlines as datatrove sees them: lines joined by single newlines.
    if (
        rules.max_newline_word_ratio is not None
        and n_words
        and (n - 1) / n_words > rules.max_newline_word_ratio
    ):
        return "list_ratio"
    return None


class QualityStep(DocStep):
    """Drop low-quality documents (see the module docstring for the rules and reasons).

    Counters: ``dropped:<family>:<rule>``, ``c4_lines_removed:<why>``, ``changed`` (lines
    removed by C4 from a kept document).
    """

    name = "quality"

    def __init__(self, config: QualityConfig | None = None) -> None:
        super().__init__()
        self.config = config or QualityConfig()

    def process(self, doc: Doc) -> Drop | None:
        text = doc["text"]
        rules = self.config.rules_for(doc.get("language") or "und", doc.get("kind") or "")
        words = WORD_RE.findall(text)
        if rules.repetition is not None:
            problem = repetition_problem(text, words, rules.repetition)
            if problem:
                return Drop("gopher_rep:" + problem)
        if rules.gopher is not None:
            problem = gopher_problem(text, words, rules.gopher)
            if problem:
                return Drop("gopher:" + problem, f"{len(words)} tokens")
        lines: list[str] | None = None
        n_words = len(words)
        if rules.c4 is not None:
            removed: dict[str, int] = {}
            problem, kept = c4_lines(text, rules.c4, removed)
            for why, count in removed.items():
                self.counters["c4_lines_removed:" + why] += count
            if problem:
                return Drop("c4:" + problem, f"lines removed: {removed}" if removed else "")
            if removed:
                new_text = "\n".join(kept).strip()
                new_text = re.sub(r"\n{3,}", "\n\n", new_text)
                # FineWeb counts words of what C4 kept: subtract the removed lines' tokens.
                n_words = len(WORD_RE.findall(new_text))
                doc["text"] = text = new_text
                self.counters["changed"] += 1
            lines = [line for line in kept if line]
        if rules.fineweb is not None:
            if lines is None:
                lines = [line for line in text.split("\n") if line.strip()]
            problem = fineweb_problem(lines, n_words, rules.fineweb)
            if problem:
                return Drop("fineweb:" + problem)
        if not text:
            return Drop("empty", "no lines left after C4's line rules")
        return None
