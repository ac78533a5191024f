"""The one curation config: every threshold, per language and per source kind, with its source.

Everything curation decides is read from a :class:`CurationConfig`; nothing else holds a number.
Defaults reproduce the published rules for long English web pages, and the documented
departures below make the same rules fair to short SNS posts, arXiv abstracts and Korean text.

Sources:

* **Gopher** — Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from
  Training Gopher", Appendix A.1.1 (quality filter) and Table A1 (repetition removal).
* **C4** — Raffel et al. 2020, "Exploring the Limits of Transfer Learning with a Unified
  Text-to-Text Transformer", section 2.2, and its reference code (TFDS ``c4_utils.py``).
* **FineWeb** — Penedo et al. 2024, "The FineWeb Datasets: Decanting the Web for the Finest Text
  Data at Scale", section 3.3.3 (the three custom filters, thresholds from their ablations).
* **MinHash dedup** — Broder 1997; FineWeb section 3.3.2 (5-grams, 14 buckets x 8 hashes).

Departures (why the defaults are not applied everywhere):

* **SNS posts** are one to a few short lines with no sentence punctuation, hashtags, mentions and
  numbers. Gopher's 50-word minimum, stop-word rule and n-gram repetition fractions (statistics
  of long pages), C4's line rules and FineWeb's line ratios would drop almost every post; they
  are relaxed or disabled for ``kind="sns"``. Spam floods are caught by near-dup removal instead.
* **News articles** (``kind="news"``) come from publishers' feeds: edited text whose short
  briefs carry facts, so C4's page minimum is 2 sentences instead of 5 and Gopher's is 25
  words instead of 50. ``kind="web"`` (and any
  unknown kind) gets the published defaults unchanged.
* **Gopher's alphabetic-word share** is computed over words, punctuation tokens excluded, as in
  the paper (whitespace words); datatrove divides by all tokens including punctuation.
* **arXiv abstracts** are one paragraph of 4-10 sentences: C4's 5-sentence minimum becomes 3.
* **Korean** is written in eojeol (a word plus its attached particles), so one whitespace word
  carries more than an English word, words are short in characters (one Hangul syllable is one
  character) and Gopher's English stop words never occur. For ``ko``: word minimums are scaled
  by 0.6, mean word length must lie in 1-12 characters instead of 3-10, the stop-word rule is
  off, and C4 needs 3 sentences instead of 5.

Usage::

    config = CurationConfig()                       # the defaults above
    rules = config.quality.rules_for("ko", "sns")   # resolved per language and kind
    config = dataclasses.replace(config, split=SplitConfig(heldout_ratio=0.1))
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

WORDLIST_DIR = Path(__file__).with_name("wordlists")


@dataclass(frozen=True)
class NormalizeConfig:
    """Text clean-up before any rule looks at the text."""

    # Lines shorter than this that match a boilerplate pattern ("Read more", "Share this
    # article", "무단 전재 및 재배포 금지", ...) are removed; longer lines are kept because they
    # are likely real sentences that merely mention such words.
    boilerplate_max_line_chars: int = 120
    # Consecutive blank lines beyond one paragraph break carry no information.
    max_blank_lines: int = 1


@dataclass(frozen=True)
class LanguageConfig:
    """Offline language identification (py3langid's bundled model + a Hangul script check)."""

    # First-class languages; a document confidently identified as anything else is dropped.
    keep: tuple[str, ...] = ("en", "ko")
    # Below this py3langid probability a non-kept guess is not trusted (short posts, names,
    # numbers): the source's declared language is used if it is kept, else "und" (kept).
    min_score: float = 0.5
    # A text whose letters are at least this share Hangul is Korean, whatever the model says:
    # Korean posts tagged "en" by their client exist (scenario day 2).
    hangul_share: float = 0.5
    # The model's accuracy saturates long before this; longer texts are classified on a prefix.
    max_chars: int = 2000


@dataclass(frozen=True)
class GopherQuality:
    """Gopher quality filter (Rae et al. 2021, Appendix A.1.1); None disables a rule."""

    min_words: int | None = 50  # "fewer than 50 ... words"
    max_words: int | None = 100_000  # "or more than 100,000 words"
    min_avg_word_length: float | None = 3  # "mean word length is outside the range of 3 to 10"
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1  # "symbol-to-word ratio greater than 0.1" (#, ...)
    max_bullet_lines_ratio: float | None = 0.9  # "more than 90% of lines starting with a bullet"
    max_ellipsis_lines_ratio: float | None = 0.3  # "more than 30% ending with an ellipsis"
    min_alpha_words_ratio: float | None = 0.8  # "80% of words ... contain at least one alphabetic"
    # False: the share is over words (as in the paper). True: over all tokens, punctuation
    # included, as datatrove computes it (only for comparing decisions with datatrove).
    alpha_ratio_counts_punctuation: bool = False
    min_stop_words: int | None = 2  # "at least two of the following English words"
    stop_words: tuple[str, ...] = ("the", "be", "to", "of", "and", "that", "have", "with")


@dataclass(frozen=True)
class GopherRepetition:
    """Gopher repetition removal (Rae et al. 2021, Table A1); None / () disables a rule."""

    max_dup_line_frac: float | None = 0.30
    max_dup_para_frac: float | None = 0.30
    max_dup_line_char_frac: float | None = 0.20
    max_dup_para_char_frac: float | None = 0.20
    # (n, max share of characters in the most frequent n-gram)
    top_ngram_char_frac: tuple[tuple[int, float], ...] = ((2, 0.20), (3, 0.18), (4, 0.16))
    # (n, max share of characters in duplicated n-grams)
    dup_ngram_char_frac: tuple[tuple[int, float], ...] = (
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    )


@dataclass(frozen=True)
class C4Lines:
    """C4 line and page rules (Raffel et al. 2020, section 2.2; TFDS c4_utils)."""

    remove_citations: bool = True  # "[1]", "[edit]", "[citation needed]" (Wikipedia-style)
    drop_lines_without_terminal_punct: bool = True  # "only retained lines that ended in . ! ? \""
    min_words_per_line: int = 3  # "only retained lines that contained at least 3 words"
    max_word_length: int = 1000  # reference code: lines with a word over 1000 chars
    drop_lines_with_javascript: bool = True  # "removed any line with the word Javascript"
    drop_lines_with_policy: bool = True  # reference code: cookie / terms-of-use lines
    drop_doc_with_lorem_ipsum: bool = True  # "removed any page where ... lorem ipsum appeared"
    drop_doc_with_curly_bracket: bool = True  # "removed any pages that contained a curly bracket"
    min_sentences: int = 5  # "discarded any page with fewer than 5 sentences"


@dataclass(frozen=True)
class FineWebLines:
    """FineWeb's custom filters (Penedo et al. 2024, section 3.3.3)."""

    min_terminal_punct_lines_ratio: float | None = 0.12  # lines ending in punctuation <= 12%
    max_short_lines_ratio: float | None = 0.67  # lines of <= 30 chars > 67%
    short_line_chars: int = 30
    max_dup_line_chars_ratio: float | None = 0.01  # chars in duplicated lines > 1%
    max_newline_word_ratio: float | None = 0.3  # "\n" per word > 0.3 (lists)


@dataclass(frozen=True)
class QualityRules:
    """The rules for one (language, kind); a None member disables that whole family."""

    gopher: GopherQuality | None = field(default_factory=GopherQuality)
    repetition: GopherRepetition | None = field(default_factory=GopherRepetition)
    c4: C4Lines | None = field(default_factory=C4Lines)
    fineweb: FineWebLines | None = field(default_factory=FineWebLines)


@dataclass(frozen=True)
class LanguageAdjustment:
    """How a language departs from the English-derived rules (see the module docstring)."""

    word_count_factor: float = 1.0  # scales Gopher's min_words
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    stop_words: tuple[str, ...] | None = None  # None: keep the kind's list; () disables the rule
    max_c4_min_sentences: int | None = None  # caps C4's sentence minimum


def _web_rules() -> QualityRules:
    # Arbitrary web pages: the published defaults, unchanged.
    return QualityRules()


def _news_rules() -> QualityRules:
    # Articles from a publisher's feed are edited text; briefs of 3-4 sentences are common and
    # often carry the day's facts, which C4's 5-sentence page minimum and Gopher's 50 words
    # would drop (a two-sentence road-closure notice is worth learning).
    return QualityRules(gopher=GopherQuality(min_words=25), c4=C4Lines(min_sentences=2))


def _paper_rules() -> QualityRules:
    return QualityRules(
        # Abstracts can be short (~30 words) yet dense; 50 would drop real papers.
        gopher=GopherQuality(min_words=30),
        c4=C4Lines(min_sentences=3),
    )


def _sns_rules() -> QualityRules:
    return QualityRules(
        gopher=GopherQuality(
            min_words=3,  # a post of 1-2 words carries no learnable text
            max_words=2_000,  # Mastodon's default limit is 500 characters
            max_avg_word_length=15,  # URLs and hashtags are long single tokens
            max_symbol_word_ratio=0.3,  # hashtag-heavy posts are normal on Mastodon
            max_bullet_lines_ratio=None,  # too few lines for a ratio to mean anything
            max_ellipsis_lines_ratio=None,
            min_alpha_words_ratio=0.5,  # prices, times and scores are normal in posts
            min_stop_words=0,
        ),
        # Line-level duplication still means junk; n-gram fractions are long-page statistics.
        repetition=GopherRepetition(top_ngram_char_frac=(), dup_ngram_char_frac=()),
        c4=None,
        fineweb=None,
    )


@dataclass(frozen=True)
class QualityConfig:
    """Quality rules per source kind, then adjusted per language."""

    kinds: dict[str, QualityRules] = field(
        default_factory=lambda: {
            "web": _web_rules(),
            "news": _news_rules(),
            "paper": _paper_rules(),
            "sns": _sns_rules(),
        }
    )
    # Unknown kinds get the strictest (web page) rules.
    default_kind: str = "web"
    languages: dict[str, LanguageAdjustment] = field(
        default_factory=lambda: {
            "ko": LanguageAdjustment(
                word_count_factor=0.6,
                min_avg_word_length=1,
                max_avg_word_length=12,
                stop_words=(),
                max_c4_min_sentences=3,
            ),
        }
    )

    def __hash__(self) -> int:  # dict fields: hash by identity so rules_for can be cached
        return id(self)

    def rules_for(self, language: str, kind: str) -> QualityRules:
        """The rules for a document of ``language`` and ``kind`` (cached per pair)."""
        return _resolve(self, language, kind)


@functools.lru_cache(maxsize=256)
def _resolve(config: QualityConfig, language: str, kind: str) -> QualityRules:
    rules = config.kinds.get(kind) or config.kinds[config.default_kind]
    adjust = config.languages.get(language)
    if adjust is None:
        return rules
    gopher = rules.gopher
    if gopher is not None:
        changes: dict[str, Any] = {}
        if gopher.min_words is not None:
            changes["min_words"] = max(1, round(gopher.min_words * adjust.word_count_factor))
        if gopher.min_avg_word_length is not None:
            changes["min_avg_word_length"] = adjust.min_avg_word_length
        if gopher.max_avg_word_length is not None:
            changes["max_avg_word_length"] = max(
                adjust.max_avg_word_length or 0, gopher.max_avg_word_length
            )
        if adjust.stop_words is not None:
            changes["stop_words"] = adjust.stop_words
            if not adjust.stop_words:
                changes["min_stop_words"] = 0
        gopher = replace(gopher, **changes)
    c4 = rules.c4
    if c4 is not None and adjust.max_c4_min_sentences is not None:
        c4 = replace(c4, min_sentences=min(c4.min_sentences, adjust.max_c4_min_sentences))
    return replace(rules, gopher=gopher, c4=c4)


@dataclass(frozen=True)
class DedupConfig:
    """Exact (content hash) and near-duplicate (MinHash + LSH) removal."""

    # Character shingles work for Korean (no word segmentation) and for short posts, where one
    # changed word destroys most word 5-grams. The text is first simplified (lowercase, digits
    # to 0, punctuation to space), as datatrove's MinHash does.
    shingle_chars: int = 5
    # 14 bands x 8 rows as in FineWeb: pairs with Jaccard >= ~0.75 collide with probability
    # >= 0.9; pairs at 0.5 with ~5%.
    bands: int = 14
    rows: int = 8
    seed: int = 1  # fixes the hash permutations; part of the index format
    # Texts with fewer shingles than this are only exact-deduplicated (too little evidence).
    min_shingles: int = 5

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows


@dataclass(frozen=True)
class PIIConfig:
    """Which PII types are replaced by typed placeholders (see freshlm.pii)."""

    types: tuple[str, ...] = (
        "url_secret",
        "handle",
        "email",
        "ip",
        "kr_rrn",
        "us_ssn",
        "uk_nino",
        "credit_card",
        "bank_account",
        "phone",
    )


@dataclass(frozen=True)
class ToxicityConfig:
    """Word-list screen: LDNOOBW English (CC BY 4.0) and FreshLM's own Korean list."""

    lists: tuple[Path, ...] = (WORDLIST_DIR / "ldnoobw_en.txt", WORDLIST_DIR / "ko.txt")
    # Share of words on a list above which a document is dropped. C4 dropped a page for any
    # single listed word, which is known to remove benign text (Dodge et al. 2021, "Documenting
    # Large Webtext Corpora"); a ratio keeps a long article that quotes one word, and still
    # drops a short post that is mostly slurs.
    max_ratio: float = 0.05
    min_hits: int = 1


@dataclass(frozen=True)
class SplitConfig:
    """Deterministic held-out split: a document's split depends only on its id."""

    heldout_ratio: float = 0.05
    salt: str = "freshlm-heldout-v1"  # changing it reshuffles every split


@dataclass(frozen=True)
class CurationConfig:
    """All of curation's settings. Immutable; derive variants with dataclasses.replace."""

    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    pii: PIIConfig = field(default_factory=PIIConfig)
    toxicity: ToxicityConfig = field(default_factory=ToxicityConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def __hash__(self) -> int:
        return id(self)

    def to_json(self) -> dict[str, Any]:
        """The config as JSON (paths as strings), for stats and manifests."""

        def convert(value: Any) -> Any:
            if isinstance(value, Path):
                return value.name
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [convert(v) for v in value]
            return value

        return convert(dataclasses.asdict(self))
