"""The curation step that scrubs PII (the rules are :mod:`freshlm.pii`).

Types are scrubbed in :data:`freshlm.pii.PLACEHOLDERS` order; the document's ``pii`` field maps
each type to how many placeholders were inserted, the step's counters add them up
(``pii:<type>``) and count ``docs_with_pii``. The author field is left alone: handles there
are pseudonymous by design (document contract).
"""

from __future__ import annotations

from freshlm.curation.config import PIIConfig
from freshlm.curation.steps.base import Doc, DocStep, Drop
from freshlm.pii import PLACEHOLDERS, scrub


class PIIStep(DocStep):
    """Scrub ``text`` (and ``title``) in place; set ``pii``. Never drops a document."""

    name = "pii"

    def __init__(self, config: PIIConfig | None = None) -> None:
        super().__init__()
        self.config = config or PIIConfig()
        unknown = set(self.config.types) - set(PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown PII types {sorted(unknown)}; known: {list(PLACEHOLDERS)}")
        self._types = tuple(t for t in PLACEHOLDERS if t in self.config.types)

    def process(self, doc: Doc) -> Drop | None:
        text, found = scrub(doc["text"], self._types)
        title = doc.get("title")
        if title:
            title, in_title = scrub(title, self._types)
            doc["title"] = title
            for kind, n in in_title.items():
                found[kind] = found.get(kind, 0) + n
        doc["pii"] = found
        if found:
            doc["text"] = text
            self.counters["docs_with_pii"] += 1
            for kind, n in found.items():
                self.counters["pii:" + kind] += n
        return None
