"""From per-item results to the report's numbers: accuracies, forgetting and paired comparisons.

Everything here is plain Python over :class:`~freshlm.evaluation.scoring.ItemResult` lists
(no torch), so the promotion gate and tests can use it cheaply.

**The forgetting ratio** follows the spirit of FUAR (Forgotten / (Updated + Acquired) Ratio,
Jang et al. 2022, "Towards Continual Knowledge Learning of Language Models", ICLR 2022), counted
per item on the *same* items for both models:

* ``forgotten``: retention items (old knowledge) the baseline got right and the candidate wrong;
* ``gained``: new-knowledge items the baseline got wrong and the candidate right;
* ``fuar = forgotten / gained``. Below 1 the candidate gained more than it forgot; 0 is ideal.

When ``gained == 0`` the ratio is undefined (CKL reports "n.d."), and it is ``None`` here
(JSON has no infinity). What a gate should make of it: with ``forgotten > 0`` the candidate
forgot without learning anything measurable, which must fail; with ``forgotten == 0`` nothing
changed either way, so there is no evidence the candidate is better and it should not be
promoted on knowledge grounds (a gate may still let it through on an explicit "neutral update"
rule). Either way ``None`` must never be read as "good".

Item-level flips are noisy on small sets, so :func:`paired_comparison` also gives the exact
McNemar test on the discordant pairs (two-sided binomial with p = 1/2): a gate can require
``mcnemar_p`` below a threshold before believing a drop or a gain.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freshlm.evaluation.scoring import ItemResult

#: The per-model metrics of a report, in display order (the report contract's ``M``).
METRIC_KEYS = (
    "new_knowledge_acc",
    "retention_acc",
    "world_new_acc",
    "world_old_acc",
    "world_new_said_acc",
    "world_old_said_acc",
    "general_said_acc",
    "ppl_new",
    "ppl_old",
    "crows_stereo_share",
    "latency_p50_ms",
    "latency_p95_ms",
    "gen_tokens_per_s",
)

#: Item pools of a report: (name, kind, group). ``new``/``old`` are the cloze items the caller
#: passes as new and old; the world facts split by group. ``stale`` facts (superseded by a later
#: fact, see :mod:`freshlm.evaluation.items`) are reported on their own and enter neither the
#: accuracies of ``M`` nor the forgetting ratio: a model that learned the update *should* stop
#: choosing their answer, so their accuracy falling is good news, not forgetting.
POOLS = ("new", "old", "world_new", "world_old", "world_stale")

_DIGITS = 6


def accuracy(results: Sequence[ItemResult]) -> float | None:
    """Share of correct results; None when there are none (no items is not 0% right)."""
    if not results:
        return None
    return round(sum(r.correct for r in results) / len(results), _DIGITS)


def accuracy_by_group(results: Sequence[ItemResult]) -> dict[str, dict[str, Any]]:
    """``{"<kind>/<group>": {"items", "correct", "accuracy"}}``, sorted by key."""
    groups: dict[str, list[ItemResult]] = {}
    for result in results:
        groups.setdefault(f"{result.kind}/{result.group}", []).append(result)
    return {
        key: {
            "items": len(members),
            "correct": sum(r.correct for r in members),
            "accuracy": accuracy(members),
        }
        for key, members in sorted(groups.items())
    }


def pair_results(
    baseline: Sequence[ItemResult], candidate: Sequence[ItemResult]
) -> list[tuple[ItemResult, ItemResult]]:
    """The two models' results on each item, by item id; :class:`ValueError` naming the items
    if the two lists are not over the same items (comparisons are only meaningful paired)."""
    base = {r.item_id: r for r in baseline}
    cand = {r.item_id: r for r in candidate}
    if len(base) != len(baseline) or len(cand) != len(candidate):
        raise ValueError("results list an item id twice; item ids must be unique")
    if base.keys() != cand.keys():
        only_base = sorted(base.keys() - cand.keys())[:5]
        only_cand = sorted(cand.keys() - base.keys())[:5]
        raise ValueError(
            "baseline and candidate were scored on different items "
            f"(only baseline: {only_base}, only candidate: {only_cand}); "
            "compare the two models on the same items"
        )
    return [(base[r.item_id], cand[r.item_id]) for r in baseline]


def mcnemar_exact_p(only_baseline: int, only_candidate: int) -> float:
    """Two-sided exact McNemar p-value for the discordant counts (1.0 when there are none)."""
    n = only_baseline + only_candidate
    if n == 0:
        return 1.0
    k = min(only_baseline, only_candidate)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return round(min(1.0, 2 * tail), _DIGITS)


@dataclasses.dataclass(frozen=True)
class Paired:
    """Both models on the same items: who got what right.

    ``only_baseline``: right before, wrong now (lost); ``only_candidate``: wrong before, right
    now (won). ``delta`` is candidate minus baseline accuracy (None without items).
    """

    items: int
    both_right: int
    both_wrong: int
    only_baseline: int
    only_candidate: int
    baseline_acc: float | None
    candidate_acc: float | None
    delta: float | None
    mcnemar_p: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def paired_comparison(baseline: Sequence[ItemResult], candidate: Sequence[ItemResult]) -> Paired:
    pairs = pair_results(baseline, candidate)
    both_right = sum(b.correct and c.correct for b, c in pairs)
    both_wrong = sum(not b.correct and not c.correct for b, c in pairs)
    only_baseline = sum(b.correct and not c.correct for b, c in pairs)
    only_candidate = sum(c.correct and not b.correct for b, c in pairs)
    base_acc = accuracy(baseline)
    cand_acc = accuracy(candidate)
    return Paired(
        items=len(pairs),
        both_right=both_right,
        both_wrong=both_wrong,
        only_baseline=only_baseline,
        only_candidate=only_candidate,
        baseline_acc=base_acc,
        candidate_acc=cand_acc,
        delta=difference(cand_acc, base_acc),
        mcnemar_p=mcnemar_exact_p(only_baseline, only_candidate),
    )


@dataclasses.dataclass(frozen=True)
class Forgetting:
    """The FUAR-like forgetting ratio (see the module docstring)."""

    forgotten: int
    gained: int
    fuar: float | None
    retention_items: int
    new_items: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def forgetting(
    baseline_old: Sequence[ItemResult],
    candidate_old: Sequence[ItemResult],
    baseline_new: Sequence[ItemResult],
    candidate_new: Sequence[ItemResult],
) -> Forgetting:
    """Forgotten retention items, gained new items and their ratio (None if nothing gained)."""
    old = paired_comparison(baseline_old, candidate_old)
    new = paired_comparison(baseline_new, candidate_new)
    forgotten = old.only_baseline
    gained = new.only_candidate
    fuar = round(forgotten / gained, _DIGITS) if gained else None
    return Forgetting(forgotten, gained, fuar, old.items, new.items)


def difference(a: float | None, b: float | None) -> float | None:
    """``a - b``, or None if either is missing."""
    if a is None or b is None:
        return None
    return round(a - b, _DIGITS)


def pct_change(new: float | None, old: float | None) -> float | None:
    """Relative change from ``old`` to ``new`` in percent; None if either is missing or
    ``old`` is 0."""
    if new is None or old is None or old == 0:
        return None
    return round((new / old - 1.0) * 100.0, 4)


def compare(
    baseline: Mapping[str, float | None],
    candidate: Mapping[str, float | None],
    forgot: Forgetting,
) -> dict[str, Any]:
    """The report's ``comparison``: signs chosen so that a positive number is what its name
    says (a positive ``retention_drop`` or ``general_retention_drop`` is retention lost, on the
    cloze items and on the general-knowledge set; a positive ``ppl_old_rise_pct`` is
    old-text perplexity up, a positive ``bias_change`` is more stereotyped). Values are None
    when either side's metric is."""
    return {
        "fuar": forgot.fuar,
        "forgotten": forgot.forgotten,
        "gained": forgot.gained,
        "new_knowledge_gain": difference(
            candidate.get("new_knowledge_acc"), baseline.get("new_knowledge_acc")
        ),
        "retention_drop": difference(baseline.get("retention_acc"), candidate.get("retention_acc")),
        "general_retention_drop": difference(
            baseline.get("general_said_acc"), candidate.get("general_said_acc")
        ),
        "ppl_old_rise_pct": pct_change(candidate.get("ppl_old"), baseline.get("ppl_old")),
        "ppl_new_change_pct": pct_change(candidate.get("ppl_new"), baseline.get("ppl_new")),
        "bias_change": difference(
            candidate.get("crows_stereo_share"), baseline.get("crows_stereo_share")
        ),
        "latency_p95_change_pct": pct_change(
            candidate.get("latency_p95_ms"), baseline.get("latency_p95_ms")
        ),
    }
