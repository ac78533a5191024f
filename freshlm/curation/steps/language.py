"""Language: offline identification, recorded as ``language`` and ``language_score``.

Two signals, both offline (nothing is downloaded at run time):

* a script check: text whose letters are mostly Hangul is Korean (score = Hangul share). It is
  exact where statistical models struggle (very short posts) and catches posts whose client
  tagged them wrongly;
* otherwise `py3langid <https://pypi.org/project/py3langid/>`_ (a maintained fork of langid.py,
  Lui & Baldwin 2012; its naive Bayes model over byte n-grams ships inside the wheel, 97
  languages), with normalized probabilities.

A low-confidence guess outside the kept languages (typical for a post of names and numbers) is
not trusted: the source's declared language is used if it is kept, else ``und``. Documents
confidently in another language are dropped (``language:unsupported``); ``und`` ones are kept
and get the default rules.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from freshlm.curation.config import LanguageConfig
from freshlm.curation.steps.base import Doc, DocStep, Drop

_HANGUL_RE = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER_RE = re.compile(r"[^\W\d_]")


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    # Loaded once per process (~0.5 s: the model is decompressed from the wheel).
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def hangul_share(text: str) -> float:
    """Share of letters that are Hangul (0 when there is no Hangul at all: the cheap case)."""
    if not _HANGUL_RE.search(text):
        return 0.0
    hangul = len(_HANGUL_RE.findall(text))
    letters = len(_LETTER_RE.findall(text))
    return hangul / letters if letters else 0.0


def identify(text: str, config: LanguageConfig) -> tuple[str, float]:
    """``(language, score)`` for ``text``: ISO 639-1 code (or ``und``) and confidence 0..1."""
    share = hangul_share(text)
    if share >= config.hangul_share:
        return "ko", round(share, 4)
    if not text.strip():
        return "und", 0.0
    language, score = _identifier().classify(text[: config.max_chars])
    return language, round(float(score), 4)


class LanguageStep(DocStep):
    """Record ``language``/``language_score``; drop confidently unsupported languages.

    Counters: ``lang:<code>`` for every kept document, ``declared_overridden`` when the
    detection disagrees with the source's declared language and wins.
    """

    name = "language"

    def __init__(self, config: LanguageConfig | None = None) -> None:
        super().__init__()
        self.config = config or LanguageConfig()
        self._keep = frozenset(self.config.keep)

    def process(self, doc: Doc) -> Drop | None:
        config = self.config
        language, score = identify(doc["text"], config)
        declared = doc.get("_declared")  # the raw record's language, set by intake
        if language not in self._keep and score < config.min_score:
            language = declared if declared in self._keep else "und"
        elif declared and declared != language and language in self._keep:
            self.counters["declared_overridden"] += 1
        doc["language"] = language
        doc["language_score"] = score
        if language != "und" and language not in self._keep:
            return Drop("unsupported", f"detected {language} ({score:.2f})")
        self.counters["lang:" + language] += 1
        return None
