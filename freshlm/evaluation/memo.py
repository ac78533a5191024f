"""What a model version has already been measured on, kept so it is never measured twice.

Every night compares the candidate with production, and production is last night's candidate:
without a memo, the same model scores the same retention items, CrowS-Pairs sentences and
held-out windows every night. A score is a pure function of the model's weights and the token
ids it is given (:data:`~freshlm.evaluation.scoring.Request`), and a greedy answer of the
weights and the prompt, so both are kept per version (and per dtype and device kind: bf16 on a
GPU does not round as fp32 on a CPU) in the store, and reused by any later evaluation of that
version. Latency is always measured: it is a timing, not a function of the weights. Answers
cover the world's fact questions and the general-knowledge set alike (keyed by the question):
the base's answers when its set is screened are kept too, so production on the first night,
which is the base, is not asked them again.

``<SCORE_MEMOS>/<version>/<dtype>-<device>.jsonl.gz``: one record per score
(``{"key", "logprob", "tokens", "greedy"}``) or answer (``{"key", "text"}``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from freshlm.artifacts import SCORE_MEMOS
from freshlm.store import Store

log = logging.getLogger(__name__)


def request_key(ids: Sequence[int], n: int) -> str:
    """The memo key of a scoring request: its ids and how many of the last are scored."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(n.to_bytes(4, "little"))
    for token in ids:
        digest.update(int(token).to_bytes(4, "little"))
    return "s:" + digest.hexdigest()


def answer_key(prompt: str, max_new_tokens: int) -> str:
    """The memo key of a greedy answer to ``prompt`` of at most ``max_new_tokens`` tokens."""
    digest = hashlib.blake2b(f"{max_new_tokens}\n{prompt}".encode(), digest_size=16)
    return "a:" + digest.hexdigest()


class ScoreMemo:
    """Scores and answers of one model version, with how many were reused this time."""

    def __init__(
        self,
        scores: dict[str, tuple[float, int, bool]] | None = None,
        answers: dict[str, str] | None = None,
    ) -> None:
        self.scores: dict[str, tuple[float, int, bool]] = dict(scores or {})
        self.answers: dict[str, str] = dict(answers or {})
        self.loaded = len(self.scores) + len(self.answers)
        self.hits = 0

    @property
    def added(self) -> int:
        return len(self.scores) + len(self.answers) - self.loaded

    def records(self) -> Iterator[dict[str, Any]]:
        for key, (logprob, tokens, greedy) in sorted(self.scores.items()):
            yield {"key": key, "logprob": logprob, "tokens": tokens, "greedy": greedy}
        for key, text in sorted(self.answers.items()):
            yield {"key": key, "text": text}


def memo_key(version_id: str, model: Any) -> str:
    """Where ``version_id``'s memo lives for the dtype and device kind ``model`` runs in."""
    param = next(model.parameters())
    dtype = str(param.dtype).removeprefix("torch.")
    return f"{SCORE_MEMOS}/{version_id}/{dtype}-{param.device.type}.jsonl.gz"


def load_memo(store: Store, version_id: str, model: Any) -> ScoreMemo:
    """The version's memo for how ``model`` runs; empty when there is none yet. A damaged
    memo is logged and ignored (everything is measured again), never trusted in part."""
    key = memo_key(version_id, model)
    if not store.exists(key):
        return ScoreMemo()
    scores: dict[str, tuple[float, int, bool]] = {}
    answers: dict[str, str] = {}
    try:
        for record in store.read_jsonl(key):
            if "text" in record:
                answers[str(record["key"])] = str(record["text"])
            else:
                scores[str(record["key"])] = (
                    float(record["logprob"]),
                    int(record["tokens"]),
                    bool(record["greedy"]),
                )
    except (KeyError, TypeError, ValueError, OSError) as exc:
        log.warning(
            "%s: unreadable score memo (%s); measuring everything again", store.uri_for(key), exc
        )
        return ScoreMemo()
    log.info(
        "model %s: %d scores and %d answers known from earlier evaluations",
        version_id,
        len(scores),
        len(answers),
    )
    return ScoreMemo(scores, answers)


def save_memo(store: Store, version_id: str, model: Any, memo: ScoreMemo) -> None:
    """Write the memo back when this evaluation added to it (the whole file, atomically)."""
    if memo.added <= 0:
        return
    key = memo_key(version_id, model)
    count = store.write_jsonl(key, memo.records())
    log.info(
        "model %s: %d of its measurements reused, %d new; memo of %d kept at %s",
        version_id,
        memo.hits,
        memo.added,
        count,
        store.uri_for(key),
    )
