"""Salient spans of news text: prices, numbers with units, dates, new terms, names.

What a reader would remember of a sentence, and so what a model should learn from it: the
evaluation hides them to build cloze probes (:mod:`freshlm.evaluation.probes`), and training
asks about them to state each document's facts in several forms (:mod:`training.augment`).
Rules only (regular expressions over English and Korean), no model: the same text always gives
the same spans.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable


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
#: Capitalised only because of their position or grammar, never the start of a name.
FUNCTION_WORDS = {
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
    return bool(before and before[1][0].isupper() and before[1] not in FUNCTION_WORDS)


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
    starts = set(sentence_starts(text))
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
    if word in FUNCTION_WORDS:
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


def sentence_starts(text: str) -> list[int]:
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
