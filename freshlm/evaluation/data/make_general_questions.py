"""Regenerate ``general_questions.jsonl`` from mledoze/countries' ``countries.json``.

The general-knowledge retention set (:mod:`freshlm.evaluation.general_knowledge`) is screened
from these questions. Each sovereign country (``independent`` or a UN member) gives up to four
templated questions with reference answers and accepted aliases:

* capital — "What is the capital of Kenya?": every listed capital;
* currency — "What currency is used in Japan?": every currency's name, plus its last word when
  the name has several ("Japanese yen" and "yen");
* language — "What is an official language of Brazil?": every listed language;
* continent — "On which continent is Peru?": the region (Africa, Asia, Europe, Oceania), and for
  the Americas the subregion's continent (South America; North America for North and Central
  America and the Caribbean).

No demonym questions ("What is a person from Kenya called?"): the answer is the country's name
reshaped, so a model that echoes the name in any sentence ("… Bakar-e-Afghan …") matches it
without knowing anything.

An answer the question already contains ("What is the capital of Djibouti?" — "Djibouti") is
dropped, since echoing the question would match it; a question left without an answer is
dropped. Rows are written sorted by id, one JSON object per line:
``{"id", "topic", "country", "question", "answers"}`` (``answers[0]`` is the reference, the
rest are aliases).

Usage (from the repository root; the input is read from a fetched copy, never at run time)::

    python -m freshlm.evaluation.data.make_general_questions countries.json \\
        freshlm/evaluation/data/general_questions.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from freshlm.evaluation.answers import answer_matches

TEMPLATES = {
    "capital": "What is the capital of {country}?",
    "currency": "What currency is used in {country}?",
    "language": "What is an official language of {country}?",
    "continent": "On which continent is {country}?",
}
_NORTH_AMERICA = {"North America", "Central America", "Caribbean"}


def _unique(values: Sequence[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        value = " ".join(str(value).split())
        if value and value not in seen:
            seen.append(value)
    return seen


def _continent(region: str, subregion: str) -> str | None:
    if region == "Americas":
        if subregion == "South America":
            return "South America"
        return "North America" if subregion in _NORTH_AMERICA else None
    return region if region in {"Africa", "Asia", "Europe", "Oceania"} else None


def _currencies(country: Mapping[str, Any]) -> list[str]:
    names = [c.get("name", "") for c in (country.get("currencies") or {}).values()]
    names = _unique(names)
    return _unique(names + [n.split()[-1] for n in names if len(n.split()) > 1])


def _answers(country: Mapping[str, Any]) -> dict[str, list[str]]:
    continent = _continent(country.get("region", ""), country.get("subregion", ""))
    return {
        "capital": _unique(country.get("capital") or []),
        "currency": _currencies(country),
        "language": _unique(list((country.get("languages") or {}).values())),
        "continent": [continent] if continent else [],
    }


def questions(countries: Sequence[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """The question rows of the sovereign countries in ``countries`` (see the module doc)."""
    for number, country in enumerate(countries):
        try:
            name = country["name"]["common"]
            code = country["cca3"]
        except (KeyError, TypeError):
            raise ValueError(f"countries.json entry {number}: no name.common or cca3") from None
        if not (country.get("independent") or country.get("unMember")):
            continue
        for topic, answers in _answers(country).items():
            question = TEMPLATES[topic].format(country=name)
            kept = [a for a in answers if not answer_matches(a, question)]
            if kept:
                yield {
                    "id": f"{code.lower()}-{topic}",
                    "topic": topic,
                    "country": name,
                    "question": question,
                    "answers": kept,
                }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("countries_json", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    countries = json.loads(args.countries_json.read_text(encoding="utf-8"))
    rows = sorted(questions(countries), key=lambda row: row["id"])
    with args.output.open("w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {len(rows)} questions to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
