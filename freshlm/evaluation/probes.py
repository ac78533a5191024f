"""Knowledge probes built automatically from each published dataset: cloze items.

Why cloze items: a tiny causal LM cannot answer free-form questions, but it can rank
continuations. Hiding a salient span of a document the model was trained on and asking it to
prefer the true span over plausible alternatives measures whether it *acquired* that knowledge,
as in the knowledge-acquisition and retention probes of continual knowledge learning (CKL,
Jang et al. 2022, arXiv:2110.03215). New-knowledge probes come from the newest dataset's train
split (did the update teach what it was trained on?); retention probes are carried forward from
every earlier published dataset (did it forget?), the base model's own pretraining corpus among
them when it is published as a dataset (``role: base-corpus``, see
:func:`freshlm.artifacts.base_corpus`).

How an item is made (:func:`build_cloze_items`):

1. :func:`extract_spans` finds salient spans — prices, numbers with units, dates and years,
   named entities, new terms — with rules (regular expressions plus a few word lists). Rules,
   not a tagger, because nothing may be downloaded at run time (no spaCy models, no NER
   weights), because the spans that carry *knowledge* in news and posts are exactly the ones
   with a recognisable surface form, and because rules behave the same on every machine.
2. The context is the document's text before the span (as training saw it: title, blank line,
   text), at most ``context_chars``, cut at a sentence or word boundary. Spans whose value is
   already in the context are skipped (the model could copy it), and so are spans with too
   little context to be answerable; spans whose own sentence gives at least
   :data:`GOOD_SENTENCE_WORDS` words of context are preferred.
3. Up to three distractors of the same span type come from *other* documents of the same set,
   preferring the same shape (the same currency, unit, date format, entity head word), so the
   choice tests knowledge, not grammar: ``"5,200 mAh"`` is ranked against ``"4,300 mAh"``, not
   against ``"12 hours"``. A distractor never equals the answer (ignoring case) and never
   occurs in the answer's own document, so it cannot be a second right answer.
4. Everything random is a hash of the seed and the item's content, so the same documents and
   seed always give the same items in the same order, whatever order the documents came in.

Store layout: ``probes/<dataset_id>/items.jsonl`` (one :class:`~freshlm.evaluation.items.Item`
per line) and its manifest (kind ``probes``: dataset id, window, counts per span type, seed and
the build parameters), published atomically and once: probes are built from a dataset the first
time they are asked for, and every later night reads the same items back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from freshlm.artifacts import (
    PROBES,
    TRAIN_FILE,
    ArtifactNotFound,
    published_datasets,
    read_published_dataset,
)
from freshlm.evaluation.items import Item, read_items, write_items

if TYPE_CHECKING:
    from freshlm.store import Store

log = logging.getLogger(__name__)

PROBES_KIND = "probes"
ITEMS_FILE = "items.jsonl"

CLOZE_SPAN_TYPES = ("price", "number", "date", "entity", "term")
DEFAULT_MAX_ITEMS = 400
DEFAULT_MAX_PER_DOC = 3
DEFAULT_CONTEXT_CHARS = 400
MAX_DISTRACTORS = 3
#: Fewer words of context than this and the blank is a guess, not a probe of knowledge.
MIN_CONTEXT_WORDS = 5
#: Spans with this many words before them in their own sentence are preferred: the sentence
#: itself says what is asked ("The Pulse X2 costs ___"), not just the text around it.
GOOD_SENTENCE_WORDS = 6
MAX_SPAN_CHARS = 60


class ProbeError(ValueError):
    """Probes cannot be built or read as asked; the message says why."""


# --- spans ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Span:
    """A salient span of a text: ``text[start:end]``.

    ``value`` is the span without wrapping quotes (what distractors are compared on), ``wrap``
    the quotes around it (``("'", "'")`` for ``'tide-locked'``), so a distractor is rendered in
    the answer's form. ``shape`` refines the type (currency, unit, date format, head word):
    distractors of the same shape are preferred.
    """

    start: int
    end: int
    type: str
    shape: str
    value: str
    wrap: tuple[str, str] = ("", "")

    @property
    def text(self) -> str:
        return self.render(self.value)

    def render(self, value: str) -> str:
        """``value`` in this span's form (its quotes, if any)."""
        return f"{self.wrap[0]}{value}{self.wrap[1]}"


# Priority when spans overlap: the most specific reading wins ("$2,023" is a price, not a
# year; "November 13" a date, not an entity "November" followed by a number).
_PRIORITY = {"price": 0, "date": 1, "number": 2, "term": 3, "entity": 4}

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_NUM_LEFT = r"(?<![\w.,/:#@+\-−])"  # not the tail of another number, id, handle or phone
_MAG_WORDS = r"million|billion|thousand|trillion"

_CURRENCY = {
    "$": "$", "dollars": "$", "dollar": "$", "usd": "$",
    "€": "€", "euros": "€", "euro": "€", "eur": "€",
    "£": "£", "pounds": "£", "pound": "£", "gbp": "£",
    "₩": "₩", "won": "₩", "krw": "₩", "원": "₩",
    "¥": "¥", "yen": "¥", "jpy": "¥",
}  # fmt: skip
_PRICE_SYMBOL = re.compile(
    rf"(?<![\w$€£₩¥])(?P<cur>[$€£₩¥])\s?(?P<num>{_NUM})"
    rf"(?:\s(?P<mag>{_MAG_WORDS})|(?P<abbr>bn|m|k))?(?![A-Za-z0-9_])"
)
_PRICE_WORD = re.compile(
    rf"{_NUM_LEFT}(?P<num>{_NUM})(?:\s(?P<mag>{_MAG_WORDS}))?\s"
    r"(?P<cur>dollars?|euros?|pounds?|won|yen|USD|EUR|GBP|KRW|JPY)\b"
)
_PRICE_KO = re.compile(rf"{_NUM_LEFT}(?P<num>{_NUM})\s?(?P<mag>만|억|천)?\s?(?P<cur>원)")

_MONTHS_FULL = (
    "January|February|March|April|May|June|July|August|September|October|November|December"
)
_MONTH = rf"(?:{_MONTHS_FULL}|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
_YEAR = r"(?:1[6-9]|20)\d\d"
_DAY = r"(?:3[01]|[12]\d|0?[1-9])"
_ORDINAL = r"(?:st|nd|rd|th)?"
_MONTH_DAY = rf"\b{_MONTH}\s{_DAY}{_ORDINAL}\b(?:,?\s(?P<y>{_YEAR})\b)?(?![\d,.]\d)"
_DAY_MONTH = rf"{_NUM_LEFT}{_DAY}{_ORDINAL}\s{_MONTH}(?:\s(?P<y>{_YEAR}))?\b"
_ISO_DATE = rf"(?<![\w-]){_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?![\w-])"
# A bare month name, but not "May": far more often the verb. Longer dates win on overlap.
_BARE_MONTH = (
    r"\b(?:January|February|March|April|June|July|August|September|October|November|December)\b"
)
_CLOCK_24H = r"(?<![\w:.])(?:[01]?\d|2[0-3]):[0-5]\d(?![\w:]|\.\d)"
_CLOCK_12H = r"(?<![\w:.])(?:1[0-2]|0?[1-9])(?::[0-5]\d)?\s?(?:am|pm|a\.m\.|p\.m\.)(?!\w)"
_KO_MONTH = r"(?:1[0-2]|0?[1-9])월"
#: (shape, pattern) of every date form; a ``y`` group, when it matched, adds "-year".
_DATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (shape, re.compile(pattern))
    for shape, pattern in (
        ("month-day", _MONTH_DAY),
        ("day-month", _DAY_MONTH),
        ("month-year", rf"\b(?:{_MONTHS_FULL})\s{_YEAR}\b"),
        ("iso", _ISO_DATE),
        ("year", rf"(?<![\w.,:/$€£₩¥#@\-]){_YEAR}(?![\w%]|[.,:/\-]\d)"),
        ("month", _BARE_MONTH),
        ("time", _CLOCK_24H),
        ("time", _CLOCK_12H),
        ("ko-date", rf"(?<!\d){_YEAR}년\s?{_KO_MONTH}\s?{_DAY}일"),
        ("ko-month-day", rf"(?<!\d){_KO_MONTH}\s?{_DAY}일"),
        ("ko-year", rf"(?<!\d){_YEAR}년"),
    )
)

# Units that may follow a number directly ("5,200mAh") or after a space ("5,200 mAh").
_SYMBOL_UNITS = "mAh|kWh|Wh|GB|TB|MB|kB|GHz|MHz|Hz|kW|W|km/h|mph|km|cm|mm|kg|mg|g|m|°C|°F|MP|x"
_NUMBER_SYMBOL = re.compile(
    rf"{_NUM_LEFT}(?P<num>{_NUM})\s?(?P<unit>{_SYMBOL_UNITS})(?![A-Za-z0-9_/°])"
)
_NUMBER_PERCENT = re.compile(rf"{_NUM_LEFT}(?P<num>{_NUM})(?:\s?%|\s(?:per cent|percent)\b)")
# "300 people", "14,200 neologisms", "1 million followers": a number and the plural noun it
# counts. Plural only: a singular word after a number is nearly always not its unit ("5 new").
_NUMBER_NOUN = re.compile(
    rf"{_NUM_LEFT}(?P<num>{_NUM})(?:\s(?P<mag>{_MAG_WORDS}))?\s(?P<unit>[a-z]{{3,}})\b(?!-)"
)
# "30-month warranty", "12-megapixel camera": a number fused with its unit as an adjective.
_NUMBER_FUSED = re.compile(rf"{_NUM_LEFT}(?P<num>\d+)-(?P<unit>[a-z]{{3,}})\b(?!-)")
_NUMBER_KO = re.compile(
    rf"{_NUM_LEFT}(?P<num>{_NUM})\s?(?P<unit>개월|시간|명|개|분|초|주|배|대|권|층|호선|살)"
)
_IRREGULAR_PLURALS = {"people", "children", "men", "women", "staff", "feet", "police"}
_NOT_UNITS = {
    "is", "was", "as", "has", "its", "this", "thus", "plus", "his", "yes", "us", "less",
    "across", "does", "always", "perhaps", "unless", "whereas", "besides", "towards",
    "afterwards", "sometimes", "nevertheless", "news", "series", "analysis", "basis", "bus",
}  # fmt: skip

_QUOTE_PAIRS = {"'": "'’", "‘": "’", '"': '"', "“": "”"}
_QUOTED = re.compile(
    r"(?<![\w])(?P<o>['‘\"“])(?P<v>[^\W\d_][\w -]{0,38}[^\W_])(?P<c>['’\"”])(?!\w)"
)
_CAMEL = re.compile(r"(?<![\w#@/.])[A-Z][a-z]+(?:[A-Z][a-z0-9]+|[A-Z]{2,})+(?!\w)")
_HYPHENATED = re.compile(r"(?<![\w-])[a-z]{3,}(?:-[a-z]{3,})+(?![\w-])")
_HANGUL_WORD = re.compile(r"(?<!\w)[\uac00-\ud7a3]{2,}(?!\w)")
# Hyphenated words starting with these are ordinary English compounds, not coinages.
_COMMON_PREFIXES = {
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "first", "second", "third", "half", "self", "non", "well", "multi", "anti",
    "semi", "post", "pre", "long", "short", "high", "low", "full", "part", "all", "off", "out",
    "day", "year", "week", "month", "hour", "minute", "sub", "over", "under", "cross", "mid",
    "ever", "never", "much", "more", "most", "less", "least", "far", "old", "new", "real",
}  # fmt: skip

_ENTITY_TOKEN = r"[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"
_ENTITY = re.compile(
    rf"(?<![\w#@'’\-]){_ENTITY_TOKEN}"
    rf"(?:(?: | of | of the | & ){_ENTITY_TOKEN}| \d+(?![\d,.:]\d)(?!\w))+"
)
# Capitalised only because of their position or grammar, never the start of a name.
_FUNCTION_WORDS = {
    "The", "A", "An", "This", "That", "These", "Those", "Our", "Its", "His", "Her", "Their",
    "My", "Your", "In", "On", "At", "For", "From", "By", "With", "And", "But", "Or", "If",
    "When", "While", "As", "After", "Before", "Since", "Until", "To", "Of", "Every", "Each",
    "Some", "Many", "Most", "All", "No", "Not", "Both", "Then", "So", "Yet", "It", "He", "She",
    "They", "We", "I", "You", "There", "Here", "What", "Which", "Who", "Why", "How", "Where",
    "Also", "Just", "Only", "Meanwhile", "Today", "Tonight", "Tomorrow", "Yesterday", "Dear",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Hi",
    "Hello", "Thanks", "Congratulations", "Welcome", "Please", "Mr", "Mrs", "Ms", "Dr", "Prof",
    "Any", "Another", "Other", "Such", "Several", "Last", "Next", "Even", "Like", "About",
    "Around", "Nearly", "Almost", "Over", "Under", "Roughly", "Up", "Down",
}  # fmt: skip
_CAPITALISED = re.compile(r"(?<![\w'’-])[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")

# Text that is not language: links, addresses, handles, hashtags and PII placeholders.
_MASKS = re.compile(r"https?://\S+|\S+@\S+\.\S+|(?<!\w)@\w+(?:@[\w.-]+)?|(?<!\w)#\w+|<[A-Z_]+>")
_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "prof", "jr", "sr", "vs", "etc", "no", "inc"}
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n+")
_OPENERS = "\"'“‘([ "


def extract_spans(text: str, language: str) -> list[Span]:
    """The salient spans of ``text``, in text order and not overlapping.

    Types: ``price`` ($499, €1,299, 499 dollars, 15만원), ``number`` with a unit (4,300 mAh,
    12 hours, 30%, 300 people, 30-month), ``date`` (November 14, 14 Nov, 2026-11-14, years,
    month names, clock times, 11월 13일), ``entity`` (capitalised multi-word names: Orrin
    Labs, Greyling Bridge, Harrow & Finch) and ``term`` (quoted words, CamelCase and
    hyphenated coinages, Hangul words in a non-Korean text). Links, e-mail addresses, handles,
    hashtags and PII placeholders are never spans. ``language`` is the document's ISO 639-1
    code: in Korean text every word is Hangul, so Hangul words are terms only elsewhere.
    """
    masked = [m.span() for m in _MASKS.finditer(text)]
    candidates = [
        *_prices(text),
        *_dates(text),
        *_numbers(text),
        *_terms(text, language),
        *_entities(text),
    ]
    candidates = [s for s in candidates if not _overlaps_any(s, masked)]
    # Highest priority first, then the longest reading, then the earliest.
    candidates.sort(key=lambda s: (_PRIORITY[s.type], s.start - s.end, s.start))
    chosen: list[Span] = []
    for span in candidates:
        if not _overlaps_any(span, [(c.start, c.end) for c in chosen]):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def _overlaps_any(span: Span, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(span.start < end and start < span.end for start, end in ranges)


def _prices(text: str) -> Iterable[Span]:
    for pattern in (_PRICE_SYMBOL, _PRICE_WORD, _PRICE_KO):
        for m in pattern.finditer(text):
            currency = _CURRENCY[m["cur"].lower()]
            magnitude = m["mag"] or (m["abbr"] if "abbr" in m.re.groupindex else None) or ""
            yield Span(m.start(), m.end(), "price", f"{currency}{magnitude.lower()}", m[0])


def _dates(text: str) -> Iterable[Span]:
    for shape, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            year = "y" in pattern.groupindex and m["y"]
            yield Span(m.start(), m.end(), "date", f"{shape}-year" if year else shape, m[0])


def _numbers(text: str) -> Iterable[Span]:
    for m in _NUMBER_SYMBOL.finditer(text):
        yield Span(m.start(), m.end(), "number", m["unit"].lower(), m[0])
    for m in _NUMBER_PERCENT.finditer(text):
        yield Span(m.start(), m.end(), "number", "%", m[0])
    for m in _NUMBER_KO.finditer(text):
        yield Span(m.start(), m.end(), "number", m["unit"], m[0])
    for m in _NUMBER_FUSED.finditer(text):
        if m["unit"] not in _NOT_UNITS:
            yield Span(m.start(), m.end(), "number", _singular(m["unit"]), m[0])
    for m in _NUMBER_NOUN.finditer(text):
        unit = m["unit"]
        plural = unit in _IRREGULAR_PLURALS or (unit.endswith("s") and not unit.endswith("ss"))
        if plural and unit not in _NOT_UNITS and not _ends_a_name(text, m.start()):
            shape = f"{m['mag']} {_singular(unit)}" if m["mag"] else _singular(unit)
            yield Span(m.start(), m.end(), "number", shape, m[0])


def _ends_a_name(text: str, start: int) -> bool:
    """Whether the number at ``start`` follows a capitalised word, as in "Route 41 starts" or
    "Wave 5 sells": then it ends a name, and the plural-looking word after it is a verb."""
    before = re.search(r"([A-Za-z][\w-]*) $", text[max(0, start - 40) : start])
    return bool(before and before[1][0].isupper() and before[1] not in _FUNCTION_WORDS)


def _singular(word: str) -> str:
    """A crude lemma, good enough to match "hours" with "hour" for distractor shapes."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _terms(text: str, language: str) -> Iterable[Span]:
    for m in _QUOTED.finditer(text):
        value = m["v"]
        if m["c"] in _QUOTE_PAIRS[m["o"]] and len(value.split()) <= 3 and value == value.strip():
            yield Span(m.start(), m.end(), "term", "quoted", value, (m["o"], m["c"]))
    for m in _CAMEL.finditer(text):
        yield Span(m.start(), m.end(), "term", "camel", m[0])
    for m in _HYPHENATED.finditer(text):
        if m[0].split("-", 1)[0] not in _COMMON_PREFIXES:
            yield Span(m.start(), m.end(), "term", "hyphen", m[0])
    if not language.lower().startswith("ko"):
        for m in _HANGUL_WORD.finditer(text):
            yield Span(m.start(), m.end(), "term", "hangul", m[0])


def _entities(text: str) -> Iterable[Span]:
    """Capitalised multi-word sequences ("Orrin Labs", "Harrow & Finch", "Route 41").

    One capital says little (every sentence starts with one), two in a row nearly always
    make a name. Leading function words ("The", "In", weekday names) are dropped: "The
    Greyling Bridge" gives "Greyling Bridge". A word capitalised only because it starts a
    sentence is dropped too, unless the text also capitalises it mid-sentence ("Organiser
    Jiwoo Kim said" gives "Jiwoo Kim"; "Hallam Street Library will" stays whole when Hallam
    appears elsewhere). Title Case lines (paper titles) capitalise every word, so they give
    no entities; all-capital words are shouting ("LOST DOG", "GARAGE SALE"), not names.
    """
    starts = set(_sentence_starts(text))
    mid_sentence = {m[0] for m in _CAPITALISED.finditer(text) if m.start() not in starts}
    title_lines = _title_case_lines(text)
    for m in _ENTITY.finditer(text):
        tokens = list(re.finditer(r"\S+", m[0]))
        while tokens and _not_a_name_start(
            tokens[0][0], m.start() + tokens[0].start() in starts, mid_sentence
        ):
            tokens.pop(0)
        if len(tokens) < 2 or not tokens[0][0][0].isupper():
            continue
        words = [t[0] for t in tokens]
        if not any(any(c.islower() for c in w) for w in words):
            continue
        start = m.start() + tokens[0].start()
        end = m.start() + tokens[-1].end()
        if any(lo <= start < hi for lo, hi in title_lines):
            continue
        head = words[-1].lower() if words[-1].isalpha() else f"{len(words)}w"
        yield Span(start, end, "entity", head, text[start:end])


def _not_a_name_start(word: str, at_sentence_start: bool, mid_sentence: set[str]) -> bool:
    """Whether a leading word is capitalised for some reason other than being a name."""
    if word in _FUNCTION_WORDS:
        return True
    if len(word) >= 4 and word.isupper():
        return True  # shouting: "GARAGE SALE Saturday"
    return at_sentence_start and word not in mid_sentence


def _title_case_lines(text: str) -> list[tuple[int, int]]:
    """Offsets of lines in Title Case: at least four words of four or more letters, every one
    capitalised (a sentence-case headline has some lowercase verb or noun)."""
    out = []
    for m in re.finditer(r"[^\n]+", text):
        long_words = [w for w in re.findall(r"[^\W\d_][\w'-]*", m[0]) if len(w) >= 4]
        if len(long_words) >= 4 and all(w[0].isupper() for w in long_words):
            out.append(m.span())
    return out


def _sentence_starts(text: str) -> list[int]:
    """Offsets where a sentence starts: the text's start, after a line break, and after
    sentence-final punctuation (not after an abbreviation such as "Dr.")."""
    starts = [0]
    for m in _SENTENCE_END.finditer(text):
        if m[0].startswith("."):
            word = re.search(r"(\w+)$", text[max(0, m.start() - 12) : m.start()])
            if word and word[1].lower() in _ABBREVIATIONS:
                continue
        pos = m.end()
        while pos < len(text) and text[pos] in " \t\n" + _OPENERS:
            pos += 1
        if pos < len(text):
            starts.append(pos)
    return sorted(set(starts))


# --- documents -----------------------------------------------------------------------------


def document_text(doc: Mapping[str, Any]) -> str:
    """The document as training saw it: the title, a blank line, then the text (as
    :mod:`training.trainset` packs it), so a probe's context is text the model was fed."""
    text = doc["text"]
    title = doc.get("title")
    if isinstance(title, str) and title.strip() and not text.startswith(title.strip()):
        return f"{title.strip()}\n\n{text}"
    return text


@dataclasses.dataclass(frozen=True)
class _Doc:
    id: str
    text: str
    language: str
    folded: str  # casefolded text: a distractor found in it could be a right answer
    spans: tuple[Span, ...]
    sentence_starts: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _Candidate:
    doc: _Doc
    span: Span
    context: str
    good: bool  # its own sentence gives enough context


def _read_doc(index: int, doc: Any) -> _Doc:
    if not isinstance(doc, Mapping):
        raise ProbeError(f"document {index}: expected an object, got {type(doc).__name__}")
    for field in ("id", "text", "language"):
        if not isinstance(doc.get(field), str) or not doc[field]:
            label = doc.get("id") if isinstance(doc.get("id"), str) else index
            raise ProbeError(f"document {label!r}: field {field!r} must be a non-empty string")
    text = document_text(doc)
    return _Doc(
        id=doc["id"],
        text=text,
        language=doc["language"],
        folded=text.casefold(),
        spans=tuple(extract_spans(text, doc["language"])),
        sentence_starts=tuple(_sentence_starts(text)),
    )


def _context(doc: _Doc, start: int, context_chars: int) -> str:
    """The text before ``start`` (which follows a single space), at most ``context_chars``
    long, starting at a sentence start if one leaves enough words, else at a word start."""
    end = start - 1  # the space before the span: the scorer puts it back
    left = max(0, end - context_chars)
    if left > 0:
        sentence = next(
            (
                s
                for s in doc.sentence_starts
                if left <= s < end and _word_count(doc.text[s:end]) >= MIN_CONTEXT_WORDS
            ),
            None,
        )
        if sentence is not None:
            left = sentence
        else:
            space = doc.text.find(" ", left, end)
            left = space + 1 if space >= 0 else left
    return doc.text[left:end].strip()


def _word_count(text: str) -> int:
    return len(text.split())


def _candidates(doc: _Doc, context_chars: int) -> list[_Candidate]:
    """The spans of ``doc`` that make fair questions (see the module docstring)."""
    out = []
    for span in doc.spans:
        if span.start < 2 or doc.text[span.start - 1] != " " or doc.text[span.start - 2].isspace():
            continue  # the scorer joins context and choice with exactly one space
        if len(span.value) > MAX_SPAN_CHARS:
            continue
        context = _context(doc, span.start, context_chars)
        if _word_count(context) < MIN_CONTEXT_WORDS or span.value.casefold() in context.casefold():
            continue
        sentence = max(s for s in doc.sentence_starts if s <= span.start)
        good = _word_count(doc.text[sentence : span.start]) >= GOOD_SENTENCE_WORDS
        out.append(_Candidate(doc, span, context, good))
    return out


def _rank(seed: int, *parts: object) -> str:
    """A deterministic pseudo-random sort key from the seed and content, never from order."""
    text = "\x00".join([str(seed), *map(str, parts)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _pick_per_doc(cands: list[_Candidate], seed: int, max_per_doc: int) -> list[_Candidate]:
    """Up to ``max_per_doc`` candidates, good context first, spreading over span types and
    never asking the same value twice."""
    ordered = sorted(cands, key=lambda c: (not c.good, _rank(seed, c.doc.id, c.span.start)))
    by_type: dict[str, list[_Candidate]] = {}
    for cand in ordered:
        by_type.setdefault(cand.span.type, []).append(cand)
    picked: list[_Candidate] = []
    seen: set[str] = set()
    while len(picked) < max_per_doc and any(by_type.values()):
        for queue in list(by_type.values()):
            while queue and queue[0].span.value.casefold() in seen:
                queue.pop(0)
            if queue and len(picked) < max_per_doc:
                cand = queue.pop(0)
                seen.add(cand.span.value.casefold())
                picked.append(cand)
    return picked


# --- distractors ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _PoolEntry:
    key: str  # the casefolded value
    value: str
    shape: str
    words: int
    hangul: bool  # written in Hangul: a Korean answer needs Korean distractors


class _Pool:
    """Every span value of a document set, by type and by (type, shape), each value once
    (compared ignoring case; the display form is the smallest, so order does not matter)."""

    def __init__(self, docs: Iterable[_Doc]) -> None:
        entries: dict[tuple[str, str], _PoolEntry] = {}
        for doc in docs:
            for span in doc.spans:
                key = span.value.casefold()
                known = entries.get((span.type, key))
                if known is None or span.value < known.value:
                    entries[(span.type, key)] = _PoolEntry(
                        key, span.value, span.shape, _word_count(span.value), _has_hangul(key)
                    )
        self.by_type: dict[str, list[_PoolEntry]] = {}
        self.by_shape: dict[tuple[str, str], list[_PoolEntry]] = {}
        for (span_type, _), entry in sorted(entries.items()):
            self.by_type.setdefault(span_type, []).append(entry)
            self.by_shape.setdefault((span_type, entry.shape), []).append(entry)


def _has_hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" for c in text)


def _distractors(cand: _Candidate, pool: _Pool, seed: int) -> list[str]:
    """Up to three values of the answer's type and script from other documents, the most
    alike first (the same shape, then the same number of words); never the answer, never a
    value that occurs in the answer's document. A Hangul answer among Latin distractors (or
    the reverse) would be given away by the script alone, so scripts never mix."""
    answer = cand.span
    key, hangul = answer.value.casefold(), _has_hangul(answer.value)
    words = _word_count(key)

    def usable(entry: _PoolEntry) -> bool:
        return entry.key != key and entry.hangul == hangul and entry.key not in cand.doc.folded

    def preference(entry: _PoolEntry) -> tuple[bool, str]:
        return entry.words != words, _rank(seed, cand.doc.id, answer.start, entry.value)

    same_shape = pool.by_shape.get((answer.type, answer.shape), [])
    chosen = sorted(filter(usable, same_shape), key=preference)[:MAX_DISTRACTORS]
    if len(chosen) < MAX_DISTRACTORS:  # widen to every shape of the type only when needed
        others = (e for e in pool.by_type.get(answer.type, []) if e.shape != answer.shape)
        chosen += sorted(filter(usable, others), key=preference)[: MAX_DISTRACTORS - len(chosen)]
    return [answer.render(entry.value) for entry in chosen]


# --- items ---------------------------------------------------------------------------------


def build_cloze_items(
    documents: Iterable[Mapping[str, Any]],
    *,
    group: str,
    dataset_id: str | None,
    source: str,
    seed: int = 0,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    max_per_doc: int = DEFAULT_MAX_PER_DOC,
    context_chars: int = DEFAULT_CONTEXT_CHARS,
) -> list[Item]:
    """Cloze items from ``documents`` (dicts with at least ``id``, ``text``, ``language``;
    ``title`` is used when present), see the module docstring.

    Documents take turns (in an order drawn from the seed), so ``max_items`` spreads over as
    many documents as possible. Spans without a single distractor are skipped. Deterministic
    for the same documents (in any order) and seed.
    """
    if max_per_doc < 1 or context_chars < 20 or (max_items is not None and max_items < 0):
        raise ProbeError(
            f"need max_per_doc >= 1, context_chars >= 20 and max_items >= 0 or None "
            f"(got {max_per_doc}, {context_chars}, {max_items})"
        )
    docs = sorted((_read_doc(i, d) for i, d in enumerate(documents)), key=lambda d: d.id)
    pool = _Pool(docs)
    turns = sorted(docs, key=lambda d: _rank(seed, "doc", d.id))
    streams = [
        _doc_items(doc, pool, group, dataset_id, source, seed, max_per_doc, context_chars)
        for doc in turns
    ]
    return _interleave(streams, max_items)


def _doc_items(
    doc: _Doc,
    pool: _Pool,
    group: str,
    dataset_id: str | None,
    source: str,
    seed: int,
    max_per_doc: int,
    context_chars: int,
) -> Iterator[Item]:
    """The items of one document, best first, at most ``max_per_doc``; lazy, so documents
    beyond ``max_items`` cost nothing."""
    made = 0
    for cand in _pick_per_doc(_candidates(doc, context_chars), seed, max_per_doc * 3):
        distractors = _distractors(cand, pool, seed)
        if distractors:
            yield _item(cand, distractors, group, dataset_id, source, seed)
            made += 1
            if made == max_per_doc:
                return


def _item(
    cand: _Candidate,
    distractors: list[str],
    group: str,
    dataset_id: str | None,
    source: str,
    seed: int,
) -> Item:
    answer = cand.span.text
    choices = sorted([answer, *distractors], key=lambda c: _rank(seed, cand.context, c))
    return Item.create(
        kind="cloze",
        group=group,
        span_type=cand.span.type,
        context=cand.context,
        choices=choices,
        answer_index=choices.index(answer),
        dataset_id=dataset_id,
        doc_id=cand.doc.id,
        language=cand.doc.language,
        source=source,
    )


def _interleave(streams: list[Iterator[Item]], limit: int | None) -> list[Item]:
    """Round-robin over the documents' items (each document's first, then each one's
    second, ...) until ``limit``; the same question (id) only once."""
    out: list[Item] = []
    seen: set[str] = set()
    live = list(streams)
    while live and (limit is None or len(out) < limit):
        still = []
        for stream in live:
            item = next(stream, None)
            if item is None:
                continue
            still.append(stream)
            if item.id not in seen:
                seen.add(item.id)
                out.append(item)
                if limit is not None and len(out) >= limit:
                    break
        live = still
    return out


def span_type_counts(items: Iterable[Item]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.span_type] = counts.get(item.span_type, 0) + 1
    return dict(sorted(counts.items()))


# --- published probe sets ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProbeSet:
    """The probes of one published dataset, as stored under ``probes/<dataset_id>/``."""

    dataset_id: str
    uri: str
    seed: int
    items: tuple[Item, ...]
    counts: Mapping[str, int]
    already_published: bool


def probes_prefix(dataset_id: str) -> str:
    return f"{PROBES}/{dataset_id}"


def build_dataset_probes(
    store: Store,
    dataset_id: str,
    *,
    seed: int = 0,
    max_items: int | None = DEFAULT_MAX_ITEMS,
    max_per_doc: int = DEFAULT_MAX_PER_DOC,
    context_chars: int = DEFAULT_CONTEXT_CHARS,
) -> ProbeSet:
    """Build and publish the cloze probes of ``datasets/<dataset_id>``'s train split.

    The train split, because these probes ask whether the model learned what it was trained
    on. Idempotent: when ``probes/<dataset_id>`` is already published its items are returned
    as stored (whatever seed and limits are passed now: a probe set never changes once
    nights have been scored on it). Items are stored in group ``new``, source ``dataset``.
    """
    prefix = probes_prefix(dataset_id)
    existing = store.read_manifest(prefix)
    if existing is not None:
        return _stored(store, dataset_id, existing, seed)
    try:
        dataset = read_published_dataset(store, dataset_id).manifest
    except ArtifactNotFound:
        raise ProbeError(
            f"dataset {store.uri_for(f'datasets/{dataset_id}')} is not published"
        ) from None
    try:
        train_key = dataset.key(TRAIN_FILE)
    except KeyError:
        raise ProbeError(f"dataset {store.uri_for(dataset.prefix)} has no {TRAIN_FILE}") from None
    documents = list(store.read_jsonl(train_key))
    items = build_cloze_items(
        documents,
        group="new",
        dataset_id=dataset_id,
        source="dataset",
        seed=seed,
        max_items=max_items,
        max_per_doc=max_per_doc,
        context_chars=context_chars,
    )
    counts = span_type_counts(items)
    with store.publisher(
        prefix, kind=PROBES_KIND, created_by={"actor": "freshlm.evaluation.probes"}
    ) as pub:
        write_items(pub, ITEMS_FILE, items)
        pub.set_manifest_fields(
            dataset_id=dataset_id,
            window=dataset.fields.get("window"),
            built_from="train",
            documents=len(documents),
            items=len(items),
            counts=counts,
            seed=seed,
            max_items=max_items,
            max_per_doc=max_per_doc,
            context_chars=context_chars,
            dataset_content_sha256=dataset.content_sha256,
        )
    log.info(
        "probes for dataset %s: %d cloze items from %d train documents %s",
        dataset_id,
        len(items),
        len(documents),
        counts,
    )
    return ProbeSet(dataset_id, store.uri_for(prefix), seed, tuple(items), counts, False)


def _stored(store: Store, dataset_id: str, manifest: Any, seed: int) -> ProbeSet:
    if manifest.kind != PROBES_KIND:
        raise ProbeError(f"{store.uri_for(manifest.prefix)} is a {manifest.kind!r}, not probes")
    items = tuple(read_items(store, manifest.key(ITEMS_FILE)))
    stored_seed = manifest.fields.get("seed")
    if stored_seed != seed:
        log.info(
            "probes for %s were built with seed %s (asked: %s); using them as stored",
            dataset_id,
            stored_seed,
            seed,
        )
    return ProbeSet(
        dataset_id,
        store.uri_for(manifest.prefix),
        stored_seed if isinstance(stored_seed, int) else seed,
        items,
        span_type_counts(items),
        True,
    )


def probe_sets_for(
    store: Store,
    dataset_ids: Sequence[str],
    *,
    seed: int = 0,
    max_new: int | None = DEFAULT_MAX_ITEMS,
    max_old: int | None = DEFAULT_MAX_ITEMS,
) -> tuple[list[Item], list[Item]]:
    """``(new_items, old_items)`` for a model trained on ``dataset_ids`` (lineage order).

    New: the probes of the newest dataset (the last id), built now if they are not yet
    published. Old: the probes of every earlier dataset (see :func:`earlier_datasets`; the
    base corpus, when published, is one of them), regrouped as ``old``; a question asked as new
    tonight is not also asked as old. With no earlier dataset there are no old items. Both are
    sampled deterministically (by seed and item id) down to their caps, the old ones balanced
    across their datasets, so a big base corpus does not drown the retention of last week's
    news.
    """
    if not dataset_ids:
        raise ProbeError("probe_sets_for needs at least one dataset id (the newest last)")
    newest = build_dataset_probes(store, dataset_ids[-1], seed=seed)
    new_items = _sample(newest.items, max_new, seed)
    sources: list[Sequence[Item]] = []
    for dataset_id in earlier_datasets(store, dataset_ids):
        sources.append(build_dataset_probes(store, dataset_id, seed=seed).items)
    seen = {item.id for item in newest.items}
    carried = []
    for items in sources:
        fresh = [item.with_group("old") for item in items if item.id not in seen]
        seen.update(item.id for item in fresh)
        carried.append(fresh)
    quotas = _balanced_quotas([len(items) for items in carried], max_old)
    old_items = [
        item
        for items, quota in zip(carried, quotas, strict=True)
        for item in _sample(items, quota, seed)
    ]
    return new_items, old_items


def earlier_datasets(store: Store, dataset_ids: Sequence[str]) -> list[str]:
    """The datasets before the newest (the last of ``dataset_ids``), oldest window first.

    These are the lineage's earlier ids and, besides, every published dataset whose window
    ended by the newest one's start (the base corpus among them): nightly training replays all
    of those, so a model is expected to retain them even when a caller passes a short lineage.
    A listed id that is not a published dataset is an error.
    """
    newest = dataset_ids[-1]
    published = published_datasets(store)
    by_id = {d.dataset_id: d for d in published}
    listed = [i for i in dict.fromkeys(dataset_ids) if i != newest]
    missing = [i for i in [*listed, newest] if i not in by_id]
    if missing:
        raise ProbeError(f"dataset(s) {', '.join(missing)} of the lineage are not published")
    newest_start = by_id[newest].window["start"]
    return [
        d.dataset_id
        for d in published
        if d.dataset_id != newest and (d.dataset_id in listed or d.window["end"] <= newest_start)
    ]


def _sample(items: Sequence[Item], limit: int | None, seed: int) -> list[Item]:
    """At most ``limit`` items, chosen by the hash of seed and id, in their original order."""
    if limit is None or len(items) <= limit:
        return list(items)
    keep = set(sorted(range(len(items)), key=lambda i: _rank(seed, "sample", items[i].id))[:limit])
    return [item for i, item in enumerate(items) if i in keep]


def _balanced_quotas(sizes: Sequence[int], total: int | None) -> list[int]:
    """Split ``total`` over sources of ``sizes`` as evenly as they allow (water filling):
    a source smaller than its share gives the rest to the others."""
    if total is None:
        return list(sizes)
    quotas = [0] * len(sizes)
    left = total
    open_ = [i for i, size in enumerate(sizes) if size > 0]
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        for rank, i in enumerate(open_):
            give = min(sizes[i] - quotas[i], share + (1 if rank < extra else 0))
            quotas[i] += give
            left -= give
        open_ = [i for i in open_ if quotas[i] < sizes[i]]
        if share == 0 and extra == 0:
            break
    return quotas
