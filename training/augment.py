"""Knowledge augmentation: each new document's facts stated in several forms.

A language model learns a fact from fine-tuning when it sees it stated in varied forms, not
when it reads one page many times (Allen-Zhu & Li 2023, "Physics of Language Models 3.1",
arXiv:2309.14316: knowledge augmentation; Ovadia et al. 2023, arXiv:2312.05934: paraphrases;
Yang et al. 2024, arXiv:2409.07431, synthetic continued pretraining). From every sentence of a
new document that carries a salient span (a price, number, date, new term or name:
:func:`freshlm.spans.extract_spans`), :func:`augment_document` writes:

* the sentence under its document's title (``"<title>: <sentence>"``);
* question-and-answer turns, in the model's chat template when its tokenizer has one
  (``Question: …\nAnswer: …`` otherwise). Each span is asked for by the whole sentence with
  the span replaced by its wh-phrase, which names what a figure counts (``"Replacement
  batteries will cost how much at Orrin service desks?"``, ``"… drew an estimated how many
  visitors?"``) and, where an English sentence has the simple shape subject, verb, span,
  also wh-word first, as users ask (``"How much will replacement batteries cost at Orrin
  service desks?"``, :func:`_fronted`); a Korean sentence asks in situ, the Korean
  wh-word in the span's place (``"랜턴 축제 언제로 연기됐대요?"``). Each is answered once by
  the span (what a reader would remember) and once by the whole sentence (so the model
  learns to *say* the fact);
* for a new term, ``What does <term> mean?``, and for a sentence that defines the document's
  topic ("… means …"), ``What does <topic> mean?``, answered by the sentence.

Questions and answers name the document's topic (:func:`document_topic`: the name it mentions
most) when their sentence does not, so a fact is bound to what it is about: "It has a 5,200
mAh battery" asks "Pulse X2's battery…", not a question any phone could answer.

Everything is derived from the document's own text by rules: nothing here reads evaluation
probes or questions, so it works the same on any day's news.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from freshlm.spans import Span, extract_spans, sentence_starts
from training.appositions import restated

#: The wh-phrase that asks for a span of each type.
ASK_FOR = {
    "price": "how much",
    "date": "when",
    "number": "how many",
    "term": "what",
    "entity": "who or what",
}
#: Korean asks in situ: the wh-word takes the span's place and its particle stays attached
#: ("랜턴 축제 11월 28일로 연기됐대요" asks "랜턴 축제 언제로 연기됐대요?"). A figure keeps its
#: counter ("2호선은" asks "몇 호선은", "37개" asks "몇 개").
ASK_FOR_KO = {
    "price": "얼마",
    "date": "언제",
    "number": "몇",
    "term": "무엇",
    "entity": "무엇",
}
MIN_SENTENCE_WORDS = 5
MAX_SENTENCE_CHARS = 400

#: ``(question, answer) -> text``: how one turn is written for the model being trained.
TurnFormat = Callable[[str, str], str]


def plain_turn(question: str, answer: str) -> str:
    return f"Question: {question}\nAnswer: {answer}"


def turn_prompt(tokenizer: Any, question: str) -> str:
    """The part of a turn written by :func:`chat_turn` before its answer: what the model is
    given, not what it learns to write (training puts no loss on it)."""
    if not getattr(tokenizer, "chat_template", None):
        return f"Question: {question}\nAnswer:"
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )


def chat_turn(tokenizer: Any) -> TurnFormat:
    """Turns in ``tokenizer``'s chat template (user asks, assistant answers); the plain form
    when the tokenizer has no template."""
    if not getattr(tokenizer, "chat_template", None):
        return plain_turn

    def render(question: str, answer: str) -> str:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            tokenize=False,
        )

    return render


@dataclasses.dataclass(frozen=True)
class Sentence:
    text: str
    spans: tuple[Span, ...]  # offsets relative to ``text``


_NEXT_OPENER = re.compile(r"\s+[\"“‘]$")


def fact_sentences(text: str, language: str) -> list[Sentence]:
    """The sentences of ``text`` that carry at least one salient span, each with its spans."""
    spans = extract_spans(text, language)
    starts = [*sentence_starts(text), len(text)]
    found = []
    for begin, end in itertools.pairwise(starts):
        raw = text[begin:end].split("\n\n")[0]  # a sentence ends with its paragraph
        # The next sentence's opening quote ('… Adeyemi. "We …') is not this one's.
        stripped = _NEXT_OPENER.sub("", raw.strip())
        if not stripped or len(stripped) > MAX_SENTENCE_CHARS:
            continue
        if len(stripped.split()) < MIN_SENTENCE_WORDS and language != "ko":
            continue
        offset = begin + (len(raw) - len(raw.lstrip()))
        inside = tuple(
            dataclasses.replace(s, start=s.start - offset, end=s.end - offset)
            for s in spans
            if s.start >= offset and s.end <= offset + len(stripped)
        )
        if inside:
            found.append(Sentence(stripped, inside))
    return found


#: Sentence-initial pronouns that stand for the document's topic ("It has a 5,200 mAh battery").
TOPIC_PRONOUNS = ("It", "Its", "They", "Their")


def document_topic(doc: Mapping[str, Any]) -> str | None:
    """What the document is about: the name (entity or term span) it mentions most, its title's
    mentions counted twice, the title's first one winning a tie. None when no name occurs twice
    (or, in a text without a title, at all).

    Questions and answers name it when their sentence does not, so each fact is learned as a
    fact *about something* ("It has a 5,200 mAh battery" is useless out of its page)."""
    title = (doc.get("title") or "").strip()
    text = doc.get("text") or ""
    language = doc.get("language") or "en"
    names: dict[str, int] = {}
    for position, span in enumerate(extract_spans(f"{title}\n{text}", language)):
        if span.type in ("entity", "term"):
            names.setdefault(span.value, position)
    counts = {name: 2 * title.count(name) + text.count(name) for name in names if len(name) > 2}
    ranked = sorted(counts, key=lambda name: (-counts[name], names[name]))
    # A post has no title: its first name is its best guess, as a reader's would be.
    if not ranked or counts[ranked[0]] < (2 if title else 1):
        return None
    return ranked[0]


def _about(topic: str | None, text: str) -> str:
    """``text`` naming ``topic``: a leading pronoun replaced by it, else ``"<topic>: "`` in
    front; unchanged when it already names it or there is no topic."""
    if not topic or topic.lower() in text.lower():
        return text
    first, _, rest = text.partition(" ")
    if first in TOPIC_PRONOUNS and rest:
        possessive = "'s" if first in ("Its", "Their") else ""
        return f"{topic}{possessive} {rest}"
    return f"{topic}: {text}"


def _asked_ko(sentence: Sentence, span: Span) -> str:
    """A Korean sentence with its span replaced by the Korean wh-word, as a question; what
    follows the span up to the end of its clause stays as written, a particle attached."""
    after = sentence.text[span.end :].rstrip(" .!?…;:")
    clause_end = re.search(r"[,;]\s", after)
    if clause_end:
        after = after[: clause_end.start()]
    before = sentence.text[: span.start].rstrip()
    wh = _wh_in_place_ko(span)
    if wh == "언제" and after.startswith("에"):
        after = after[1:]  # "11월 13일에 나온다" asks "언제 나온다": 언제 takes no 에
    return f"{before} {wh}".strip() + after + "?"


def _wh_in_place_ko(span: Span) -> str:
    """The Korean wh-word for ``span``: a figure's counter or unit kept after 몇 ("3배" -> "몇
    배", "5,200mAh" -> "몇 mAh", "40%" -> "몇 퍼센트")."""
    if span.type != "number":
        return ASK_FOR_KO[span.type]
    if span.shape == "%":
        return "몇 퍼센트"
    counter = re.fullmatch(r"[\d.,]+\s*(?P<counter>\D*)", span.text)
    if counter and counter["counter"]:
        return f"몇 {counter['counter'].strip()}"
    return ASK_FOR_KO["number"]


def _asked(sentence: Sentence, span: Span) -> str:
    """The sentence with its span replaced by the span's wh-phrase, as a question:
    ``"Replacement batteries will cost how much at Orrin service desks?"``. Every word before
    the span stays, so the question carries what the fact is about; after it, the words up to
    the end of its clause ("Orrin employs about how many people?", not "…, 1,400 of them in
    Tessford?"): what follows a comma is another fact, and no one asks two at once. A span
    with fewer than three words before it, or inside a relative clause or an apposition,
    keeps the whole rest ("At how much for the base model, the Pulse X2 undercuts …?"): the
    sentence's subject or verb comes after the comma."""
    before = sentence.text[: span.start].rstrip(" \"'“‘")
    after = sentence.text[span.end :].lstrip("\"'”’").rstrip(" .!?;:")
    fused = _FUSED_MODIFIER.fullmatch(span.text) if span.type == "number" else None
    noun = re.match(r" ([^\W\d][\w-]*)", after) if fused else None
    if fused and noun:
        # "the 30-month warranty covers" asks "the warranty of how many months covers"
        unit = fused["unit"]
        units = unit + ("es" if unit.endswith(("s", "sh", "ch", "x", "z")) else "s")
        before = f"{before} {noun[1]} of"
        after = after[noun.end() :]
        question = f"{before} how many {units}".strip()
    else:
        question = f"{before} {_wh_in_place(span)}".strip()
    clause_end = re.search(r"[,;]\s", after)
    if (
        clause_end
        and len(before.split()) >= _MIN_WORDS_BEFORE_A_CUT
        and not _OPEN_INSERT.search(before)  # "The plant, which opened in 2017, employs …"
    ):
        after = after[: clause_end.start()]
    if after:
        question += after if after[0] in ",;:)" else f" {after.strip()}"
    return question[0].upper() + question[1:] + "?"


#: Finite verbs whose base form no rule derives (``did``/``does`` + the base form asks them).
_IRREGULAR = {
    "goes": "go", "does": "do", "has": "have", "had": "have", "said": "say", "says": "say",
    "sold": "sell", "began": "begin", "rose": "rise", "fell": "fall", "made": "make",
    "took": "take", "got": "get", "gave": "give", "won": "win", "ran": "run", "paid": "pay",
    "built": "build", "bought": "buy", "brought": "bring", "kept": "keep", "led": "lead",
    "left": "leave", "lost": "lose", "meant": "mean", "met": "meet", "spent": "spend",
    "told": "tell", "found": "find", "held": "hold", "became": "become", "came": "come",
    "grew": "grow", "knew": "know", "saw": "see", "sent": "send", "stood": "stand",
    "went": "go", "wrote": "write", "drew": "draw", "chose": "choose", "hired": "hire",
}  # fmt: skip
_COPULAS = ("is", "are", "was", "were")
#: Verbs that report a clause ("said the back costs"): the span belongs to the clause.
_REPORTING = {"say", "tell", "think", "believe", "expect", "report", "claim", "add", "note"}
_MODALS = ("will", "can", "would", "could", "should", "must", "may", "might")
_PREPOSITIONS = {
    "on", "at", "in", "by", "until", "from", "since", "for", "of", "to", "with", "into",
    "onto", "before", "after", "about", "around", "under", "over", "per", "than", "within",
    "during", "through", "between", "across", "near", "via", "against", "among", "behind",
    "beyond", "toward", "towards", "upon", "without", "up", "down", "out", "off", "past",
}  # fmt: skip
#: Words that end or join clauses: a subject or the words between verb and span holding one
#: is not the simple shape a question is made from by rule.
_NOT_IN_MIDDLE = {"a", "an", "the", "and", "or", "but", "that", "which", "who", "every", "each"}
_ARTICLES = ("a", "an", "the")
#: Words that may follow a span that ends a phrase (a span followed by anything else is
#: usually a modifier inside a longer phrase: "a 30-month warranty").
_PHRASE_END = _PREPOSITIONS | {"and", "or", "but", "each", "every", "a", "an", "the"}
#: Number words after a figure that are part of the figure, not its unit.
_NOT_UNITS = {"million", "billion", "thousand", "hundred", "percent", "per", "cent"}
#: A figure fused with its unit that modifies the noun after it ("a 30-month warranty").
_FUSED_MODIFIER = re.compile(r"[\d.,]+-(?P<unit>[a-z]{3,})")
#: Words before a span that hold a subject, so an in-place question may end with its clause.
_MIN_WORDS_BEFORE_A_CUT = 3
#: A relative clause or an apposition the span sits in: its comma after the span closes it,
#: and the sentence's own verb comes after.
_OPEN_INSERT = re.compile(
    r",\s+(?:which|who|whose|where|a|an|the|its|their)\b[^,]*$", re.IGNORECASE
)
_MAX_SUBJECT_WORDS = 10
_MAX_MIDDLE_WORDS = 5
_MAX_TAIL_WORDS = 5
#: Sentence-initial words that are not names: lowercased inside a question.
_LOWERED = ("The", "A", "An", "Every", "Each", "This", "These", "Those", "Some", "All", "Most")


def _base_form(verb: str) -> str | None:
    """The base form of a finite verb (``carries`` → ``carry``, ``unveiled`` → ``unveil``):
    an irregular one from :data:`_IRREGULAR`, a regular one by the spelling rules; None when
    ``verb`` does not look finite."""
    if verb in _IRREGULAR:
        return _IRREGULAR[verb]
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("sses", "shes", "ches", "xes", "zes", "oes")):
        return verb[:-2]
    if verb.endswith("s") and not verb.endswith(("ss", "us", "is")) and len(verb) > 3:
        return verb[:-1]
    if verb.endswith("ied") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith("ed") and len(verb) > 4:
        stem = verb[:-2]
        if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] in "bgmnpt":
            return stem[:-1]  # stopped, planned
        if stem[-1] in "cvgzu" or (stem[-1] == "s" and stem[-2] in "aeiou"):
            return stem + "e"  # announced, closed, raised, argued
        return stem
    return None


def _wh_in_place(span: Span) -> str:
    """The wh-phrase that takes ``span``'s place in its sentence, naming what a figure counts
    ("drew an estimated how many visitors?", "stands at what percent?"): a question that
    names the attribute binds the figure to it, where a bare "how many" fits any figure."""
    if span.type == "number" and span.shape == "%":
        return "what percent"
    return _wh_for(span) or ASK_FOR[span.type]


def _wh_for(span: Span) -> str | None:
    """The span's fronted wh-phrase, naming a figure's unit ("how many grams" for "182
    grams"); None for a figure without a unit ("6 per cent", "1.2 million": "how many" does
    not ask those)."""
    if span.type == "number":
        words = span.text.split()
        if len(words) > 1 and words[-1].isalpha() and words[-1].lower() not in _NOT_UNITS:
            return f"how many {words[-1]}"
        return None
    return ASK_FOR[span.type]


def _fronted(sentence: Sentence, span: Span, topic: str | None) -> str | None:
    """The question a reader would ask for ``span``, its wh-phrase in front: "The base model
    costs $649." asks "How much does the base model cost?"; "The phone goes on sale on
    November 13." asks "When does the phone go on sale?"; "The Pulse X2 runs on the Kite 3."
    asks "Who or what does the Pulse X2 run on?". Only for English sentences of the simple
    shape subject, finite verb (or modal and verb, or a form of "be"), at most a few words,
    then the span; None for any other (:func:`_asked` still asks them in place). The topic is
    named as :func:`_about` names it, or as the owner of a "the ..." subject.

    Users ask wh-questions in this order, and a small model fine-tuned on one form of a
    question answers that form, not another (Berglund et al. 2023, the reversal curse;
    Allen-Zhu & Li 2023): the in-place form alone teaches an answer to a question nobody asks."""
    words = sentence.text[: span.start].split()
    tail_text = sentence.text[span.end :]
    tail = re.split(r"[,;:.!?](?:\s|$)", tail_text, maxsplit=1)[0].split()
    if tail and tail[0].lower() not in _PHRASE_END:
        return None  # the span modifies what follows it
    while words and words[-1].lower() in _ARTICLES:
        words.pop()
    stranded = ""
    if words and words[-1].lower() in _PREPOSITIONS:
        preposition = words.pop().lower()
        if span.type in ("price", "number"):
            return None  # "charges at how many watts": no natural fronted form by rule
        if span.type in ("term", "entity"):
            stranded = preposition  # "Who or what does it run on?"; a date drops it
    wh = _wh_for(span)
    if wh is None or not words or words[0].lower() in _PREPOSITIONS:
        return None
    at = _finite_verb(words)
    if at is None:
        return None
    verb, subject_words, middle = words[at], words[:at], words[at + 1 :]
    if (
        len(middle) > _MAX_MIDDLE_WORDS
        or any(not re.fullmatch(r"[^\W\d][\w'’-]*", w) for w in middle)  # no figures
        or any(_clause_word(w) for w in middle)
        or (len(middle) > 1 and middle[-2].lower() in _ARTICLES)  # "drew an estimated"
        or any(not re.fullmatch(r"[\w'’.-]+", w) for w in subject_words)
        or any(_clause_word(w) for w in subject_words[1:])
        or (verb in _MODALS and not middle)
        or _base_form(verb) in _REPORTING  # "Orrin said the back costs $20": a clause follows
        or (verb in _COPULAS and span.type == "number")  # "is 30 months": not "how many"
    ):
        return None
    subject = " ".join(subject_words)
    if topic and subject_words[0] in TOPIC_PRONOUNS:
        subject = _about(topic, subject)
    if subject.split()[0] in _LOWERED:
        subject = subject[0].lower() + subject[1:]
    if topic and topic.lower() not in subject.lower() and subject.startswith("the "):
        subject = f"{topic}'s {subject[4:]}"
    if verb in _COPULAS or verb in _MODALS:
        parts = [verb, subject, *middle]
    else:
        past = verb.endswith("ed") or (verb in _IRREGULAR and not verb.endswith("s"))
        parts = ["did" if past else "does", subject, _base_form(verb) or verb, *middle]
    if stranded:
        parts.append(stranded)
    if (
        0 < len(tail) <= _MAX_TAIL_WORDS
        and tail[0].lower() in _PREPOSITIONS - {"of"}  # "$20 of credit": the span's own
        and not any(c.isdigit() for c in " ".join(tail))
    ):
        parts += tail
    question = f"{wh} {' '.join(parts)}?"
    question = question[0].upper() + question[1:]
    if topic and topic.lower() not in question.lower():
        question = f"{topic}: {question}"
    return question


def _clause_word(word: str) -> bool:
    """Whether ``word``, inside a subject, shows the subject holds a clause of its own ("Orrin
    said the back", "stallholders asked for the change so that they")."""
    lower = word.lower()
    return (
        lower in _NOT_IN_MIDDLE - set(_ARTICLES)
        or lower in _IRREGULAR
        or lower in _COPULAS
        or lower in _MODALS
        or (word.islower() and word.endswith("ed"))
    )


def _finite_verb(words: Sequence[str]) -> int | None:
    """Where the finite verb of ``words`` (a sentence up to its span) is: the first modal or
    form of "be" after the first word, else the first word that reads as a finite verb
    (:func:`_base_form`) and is followed by the span, an article or a preposition (a plural
    noun, "batteries", is followed by its verb instead); None when there is none within
    :data:`_MAX_SUBJECT_WORDS` words."""
    window = range(1, min(len(words), _MAX_SUBJECT_WORDS + 1))
    for i in window:
        if words[i] in _COPULAS or words[i] in _MODALS:
            return i
    for i in window:
        word = words[i]
        if not word.isalpha() or not word.islower() or _base_form(word) is None:
            continue
        after = words[i + 1].lower() if i + 1 < len(words) else None
        if after is None or after in _ARTICLES or after in _PREPOSITIONS:
            return i
    return None


#: A sentence that defines something (English): "The phrase … means being so glued to …".
DEFINING = re.compile(r"\b(?:means|meaning|refers to|is slang for|stands for)\b")


def _defining_sentences(text: str) -> list[str]:
    starts = [*sentence_starts(text), len(text)]
    found = []
    for begin, end in itertools.pairwise(starts):
        sentence = text[begin:end].split("\n\n")[0].strip()
        if DEFINING.search(sentence) and len(sentence) <= MAX_SENTENCE_CHARS:
            found.append(sentence)
    return found


@dataclasses.dataclass(frozen=True)
class QA:
    """One question-and-answer turn; ``span_type`` is set when the answer is the asked span
    alone (a figure, date or name), whose alternatives the night's other spans of that type
    are (:func:`rival_answers`)."""

    question: str
    answer: str
    span_type: str | None = None


def document_forms(
    doc: Mapping[str, Any],
    *,
    max_sentences: int = 12,
    variants: int = 0,
    appositions: bool = False,
) -> list[str | QA]:
    """``doc``'s facts in several forms (see the module docstring): statements (``str``) and
    question-answer turns (:class:`QA`), at most ``max_sentences`` fact sentences (the first
    ones: news puts the facts first). With ``variants``, each span question is also asked in
    up to that many other wordings (:mod:`training.question_variants`), answered by the span.
    With ``appositions``, a sentence's appositions are also stated and asked as sentences of
    their own (:mod:`training.appositions`: "LexiDrift, a benchmark of 14,200 neologisms"
    as "LexiDrift is a benchmark of 14,200 neologisms.")."""
    text = doc.get("text") or ""
    title = (doc.get("title") or "").strip()
    language = doc.get("language") or "en"
    topic = document_topic(doc)
    out: list[str | QA] = []
    for sentence in fact_sentences(text, language)[:max_sentences]:
        out.append(f"{title}: {sentence.text}" if title else sentence.text)
        asked: set[str] = set()
        out += _span_turns(sentence, topic, language, asked, variants)
        for restatement in restated(sentence.text) if language == "en" and appositions else ():
            for own in fact_sentences(restatement, language):
                out.append(f"{title}: {own.text}" if title else own.text)
                out += _span_turns(own, topic, language, asked, variants)
    if topic and language == "en":
        for sentence in _defining_sentences(text):
            out.append(QA(f"What does {topic} mean?", _about(topic, sentence)))
    return out


def _span_turns(
    sentence: Sentence, topic: str | None, language: str, asked: set[str], variants: int
) -> list[QA]:
    """The turns that ask for each span of ``sentence`` (in place and, in English, wh-word
    first, and in up to ``variants`` other wordings), each answered by the span and by the
    sentence; none twice in ``asked``."""
    from training.question_variants import question_variants

    out: list[QA] = []
    stated = _about(topic, sentence.text)
    for span in sentence.spans:
        if span.value == topic:
            continue  # "<topic>: … who or what …?" answered by the topic teaches nothing
        in_place = _asked_ko if language == "ko" else _asked
        questions = [_about(topic, in_place(sentence, span))]
        if language == "en":
            questions.append(_fronted(sentence, span, topic))
        for question in questions:
            if question is not None and question not in asked:
                asked.add(question)
                out += [QA(question, stated), QA(question, span.text, span.type)]
                for other in question_variants(question, topic, span.text, variants):
                    if other not in asked:
                        asked.add(other)
                        out.append(QA(other, span.text, span.type))
        meaning = f"What does {span.text} mean?"
        if span.type == "term" and meaning not in asked:
            asked.add(meaning)
            out.append(QA(meaning, stated))
    return out


def augment_document(
    doc: Mapping[str, Any], turn: TurnFormat = plain_turn, *, max_sentences: int = 12
) -> list[str]:
    """:func:`document_forms` as training texts, the turns written by ``turn``."""
    return [
        form if isinstance(form, str) else turn(form.question, form.answer)
        for form in document_forms(doc, max_sentences=max_sentences)
    ]


def rival_answers(turns: Sequence[QA], k: int, seed: str) -> list[list[str]]:
    """For each turn answered by a span, up to ``k`` other spans of the same type from
    ``turns`` (the other figures, dates or names of the same night), chosen at random with
    ``seed``; an empty list for the other turns.

    Trained against, they teach that an answer belongs to its question: a model that only
    learned the night's figures ranks any of them first under any question (it says the
    battery's price when asked the phone's)."""
    by_type: dict[str, list[str]] = {}
    for t in turns:
        if t.span_type and t.answer not in by_type.setdefault(t.span_type, []):
            by_type[t.span_type].append(t.answer)
    rng = random.Random(seed)
    out = []
    for t in turns:
        pool = [a for a in by_type.get(t.span_type or "", []) if a != t.answer]
        out.append(rng.sample(pool, min(k, len(pool))) if t.span_type else [])
    return out


def augment_documents(
    docs: Sequence[Mapping[str, Any]], turn: TurnFormat = plain_turn
) -> dict[str, list[str]]:
    """``{doc id: texts}`` for every document with at least one fact sentence."""
    augmented = {}
    for doc in docs:
        texts = augment_document(doc, turn)
        if texts:
            augmented[str(doc["id"])] = texts
    return augmented
