"""Canary questions: the latest facts, asked of the served model the way users ask.

The canary set is the *new* facts of the newest evaluation report (``reports/…/report.json``,
its ``facts`` with ``group: new``): the facts the latest candidate was judged on learning. Each
question goes to ``POST <serve_url>/v1/chat/completions`` (greedy, as users get it); an answer
counts as correct when it states the expected answer as the evaluator counts one
(:mod:`freshlm.answer_match`).
The version that answered is recorded with each answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import requests

from freshlm.answer_match import answer_matches
from freshlm.artifacts import REPORT_JSON, REPORT_KIND, REPORTS
from freshlm.store import Store

MAX_CANARIES = 5
MAX_TOKENS = 32


@dataclasses.dataclass
class CanaryResult:
    asked: int = 0
    correct: int = 0
    accuracy: float | None = None
    versions: list[str] = dataclasses.field(default_factory=list)
    answers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    report: str | None = None  # the report the canaries came from
    error: str | None = None  # the server could not be asked

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def canary_set(store: Store, limit: int = MAX_CANARIES) -> tuple[list[dict[str, str]], str | None]:
    """``([{question, answer}], report URI)`` from the newest report with new facts."""
    newest: tuple[str, list[dict[str, str]], str] | None = None
    for prefix in store.list_published(REPORTS + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is None or manifest.kind != REPORT_KIND:
            continue
        report = store.read_json(manifest.key(REPORT_JSON))
        facts = [
            {"question": str(f["question"]), "answer": str(f["answer"])}
            for f in report.get("facts") or []
            if f.get("group") == "new" and f.get("question") and f.get("answer")
        ]
        created = str(report.get("created_at") or "")
        if facts and (newest is None or created > newest[0]):
            newest = (created, facts, store.uri_for(prefix))
    if newest is None:
        return [], None
    return newest[1][:limit], newest[2]


def states(expected: str, answer: str) -> bool:
    """Whether ``answer`` states ``expected``, counted as the evaluator counts a said answer
    (:func:`freshlm.answer_match.answer_matches`), so a canary and the report agree."""
    return answer_matches(expected, answer)


def ask_canaries(
    serve_url: str, canaries: list[dict[str, str]], *, timeout_s: float = 60.0
) -> CanaryResult:
    """Ask each canary over HTTP; a server that cannot be reached is ``error``, not a raise."""
    result = CanaryResult()
    session = requests.Session()
    for canary in canaries:
        try:
            answer = session.post(
                f"{serve_url}/v1/chat/completions",
                json={
                    "model": "production",
                    "messages": [{"role": "user", "content": canary["question"]}],
                    "max_tokens": MAX_TOKENS,
                },
                timeout=timeout_s,
            )
            answer.raise_for_status()
            body = answer.json()
            text, version = body["choices"][0]["message"]["content"], body["model"]
        except (requests.RequestException, ValueError, KeyError, IndexError) as exc:
            result.error = f"{serve_url}: {type(exc).__name__}: {exc}"
            break
        correct = states(canary["answer"], text)
        result.asked += 1
        result.correct += int(correct)
        if version not in result.versions:
            result.versions.append(version)
        result.answers.append({**canary, "said": text, "correct": correct, "version": version})
    if result.asked:
        result.accuracy = round(result.correct / result.asked, 4)
    return result
