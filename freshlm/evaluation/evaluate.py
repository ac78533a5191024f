"""Evaluate a candidate model version against the production model, and publish the report.

:func:`evaluate` downloads both versions (cached by version id under the work folder), scores
both on the *same* items and texts, computes the metrics and their comparison, and publishes
the report atomically as the artifact ``reports/<candidate>/vs-<baseline>/`` (kind
``eval-report``; files and schema in :mod:`freshlm.evaluation.report`). Running it again for
the same two versions finds the published report and returns it without loading a model
(DESIGN invariant 1); to re-evaluate with other items, delete the artifact first.

Per model it measures:

* the items — ``new_items`` (new-knowledge cloze items), ``old_items`` (retention cloze items)
  and ``fact_items`` (the world's fact probes, split by their group into new, old and stale) —
  in one batched ranking pass (:meth:`~freshlm.evaluation.scoring.CausalLMScorer.rank_items`),
  plus a control: the new facts' choices under another fact's question
  (:func:`~freshlm.evaluation.world_facts.wrong_question_controls`), reported in ``controls``
  apart from every accuracy, so a reader can tell a learned fact from a familiar string;
* perplexity on ``new_texts`` (held-out new documents) and on ``old_texts`` (held-out
  documents of earlier datasets, the base corpus among them; see :func:`heldout_texts`);
* CrowS-Pairs (:mod:`freshlm.evaluation.bias`) and generation latency
  (:mod:`freshlm.evaluation.latency`; prompts are the first item contexts, the same for both,
  and the two models are timed interleaved, prompt by prompt, so that load on a shared machine
  falls on both alike).

and, asked in the model's own words like the facts, the general-knowledge retention set: the
questions the root of the lineage (the base at v0) answered right, built once per base and
published (:mod:`freshlm.evaluation.general_knowledge`); the report gives each model's
``general_said_acc`` and ``comparison["general_retention_drop"]`` (production minus
candidate, positive = forgotten).

The forgetting ratio counts retention over old cloze items plus old world facts, and gains over
new cloze items plus new world facts (stale facts are left out, see
:data:`freshlm.evaluation.metrics.POOLS`).

Caps (``max_new_items``, ``max_old_items``, ``heldout_max_docs``, ``crows_max_pairs``,
``general_max_questions``) take stable samples
(:func:`~freshlm.evaluation.config.stable_subset`), so a rerun with the same inputs scores the
same items. Any input may be empty (no retention items or old text when no earlier dataset is
published; no general question the base answered right): the metrics it feeds are None and
``counts["unmeasured"]`` says why.

:func:`evaluate` runs four steps: :func:`prepare` (check and sample the inputs), :func:`score`
(both models on them), :func:`build_report` (metrics, comparison, the report's files) and
:func:`publish_report`. Every step logs its numbers (items/s, tokens/s, seconds).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freshlm.artifacts import (
    REPORT_JSON,
    REPORT_KIND,
    REPORTS,
    ArtifactNotFound,
    read_published_dataset,
    read_report,
    report_prefix,
)
from freshlm.evaluation import metrics as m
from freshlm.evaluation.answers import FACT_QUESTION, ranking_context
from freshlm.evaluation.config import EvalConfig, stable_subset
from freshlm.evaluation.general_knowledge import (
    GeneralSet,
    ensure_general_set,
    read_general_set,
)
from freshlm.evaluation.memo import ScoreMemo, answer_key, load_memo, save_memo
from freshlm.evaluation.report import (
    CHART_PNG,
    ITEMS_JSONL,
    REPORT_HTML,
    REPORT_SCHEMA,
    render_chart,
    render_html,
)
from freshlm.evaluation.world_facts import wrong_question_controls
from freshlm.footprint import Meter
from freshlm.registry.versions import get_version, root_version, version_prefix
from freshlm.store import StoreError

if TYPE_CHECKING:
    from freshlm.evaluation.answers import GeneratedAnswer
    from freshlm.evaluation.bias import BiasResult
    from freshlm.evaluation.general_knowledge import Answerer, GeneralQuestion
    from freshlm.evaluation.items import Item
    from freshlm.evaluation.latency import LatencyResult
    from freshlm.evaluation.scoring import ItemResult, Perplexity
    from freshlm.registry.versions import ModelVersion
    from freshlm.store import Store

log = logging.getLogger(__name__)

COMPONENT = "freshlm.evaluation"
_FALLBACK_PROMPT = "The latest news:"


# --- inputs -----------------------------------------------------------------------------------


def heldout_texts(
    store: Store, dataset_ids: Sequence[str], *, limit: int | None = None, seed: int = 0
) -> list[str]:
    """The ``text`` of every held-out document of the published datasets, in order
    (``datasets/<id>/heldout.jsonl.gz``); ``limit`` takes a stable sample by document id."""
    docs: list[tuple[str, str]] = []
    for dataset_id in dataset_ids:
        try:
            dataset = read_published_dataset(store, dataset_id)
        except ArtifactNotFound as exc:
            raise ValueError(f"{exc} to take held-out text from") from None
        for number, record in enumerate(dataset.documents(store, "heldout")):
            text = record.get("text")
            if isinstance(text, str) and text.strip():
                docs.append((str(record.get("id") or f"{dataset_id}:{number}"), text))
    chosen = stable_subset(docs, limit, seed=seed, key=lambda d: d[0])
    return [text for _, text in chosen]


def download_cached(
    store: Store,
    version_id: str,
    work_dir: str | os.PathLike[str],
    *,
    keep: int | None = None,
) -> Path:
    """The version's model folder under ``work_dir/models/<version_id>``, downloaded (and
    checked against its manifest) unless a complete copy is already there; with ``keep``, the
    least recently used copies beyond ``keep`` are deleted
    (:func:`freshlm.registry.local_copies.local_copy`)."""
    from freshlm.registry.local_copies import local_copy

    return local_copy(store, version_id, Path(work_dir) / "models", keep=keep)


# --- one model --------------------------------------------------------------------------------


@dataclasses.dataclass
class _ModelRun:
    version_id: str
    results: list[ItemResult]
    ppl_new: Perplexity
    ppl_old: Perplexity
    bias: BiasResult | None
    latency: LatencyResult | None
    timings: dict[str, float]
    controls: list[ItemResult] = dataclasses.field(default_factory=list)
    answers: dict[str, GeneratedAnswer] = dataclasses.field(default_factory=dict)
    general: dict[str, GeneratedAnswer] = dataclasses.field(default_factory=dict)


def _load(path: Path, config: EvalConfig) -> tuple[Any, float]:
    """``(scorer, seconds)``: the model in ``path`` loaded in ``config.dtype`` and warmed up."""
    import torch

    from freshlm.evaluation.scoring import CausalLMScorer, torch_threads

    began = time.perf_counter()
    with torch_threads(config.threads):
        scorer = CausalLMScorer.from_pretrained(
            path,
            batch_size=config.batch_size,
            max_length=config.max_length,
            dtype=getattr(torch, config.dtype),
        )
        scorer.warm_up()
    return scorer, round(time.perf_counter() - began, 3)


def _measure(
    scorer: Any,
    version_id: str,
    *,
    load_s: float,
    items: Sequence[Item],
    new_texts: Sequence[str],
    old_texts: Sequence[str],
    pairs: Sequence[Any],
    config: EvalConfig,
    controls: Sequence[Item] = (),
    facts: Sequence[Item] = (),
    general: Sequence[GeneralQuestion] = (),
) -> _ModelRun:
    """Everything measured of one model on its own; latency is timed afterwards, both models
    interleaved (:func:`_measure_latency`). ``controls`` are scored apart from ``items``: they
    enter no pool, accuracy or forgetting figure. ``facts`` and the ``general`` questions are
    also asked as a user asks them, and the model's own answers checked
    (:mod:`freshlm.evaluation.answers`)."""
    from freshlm.evaluation.bias import crows_pairs_score
    from freshlm.evaluation.scoring import torch_threads

    timings: dict[str, float] = {"load_s": load_s}

    def lap(name: str, began: float) -> float:
        timings[name] = round(time.perf_counter() - began, 3)
        return time.perf_counter()

    with torch_threads(config.threads):
        t = time.perf_counter()
        # One batched pass over the items and the controls; the controls are split off after.
        # Fact questions are ranked in the model's chat template when it has one.
        ranked = [*items, *controls]
        contexts = [
            ranking_context(scorer.tokenizer, i.context) if i.kind == "fact" else i.context
            for i in ranked
        ]
        scored = scorer.rank_items(ranked, contexts=contexts)
        results, control_results = scored[: len(items)], scored[len(items) :]
        t = lap("items_s", t)
        if scored and timings["items_s"] > 0:
            timings["items_per_s"] = round(len(scored) / timings["items_s"], 2)
        ppl_new = scorer.perplexity(new_texts)
        ppl_old = scorer.perplexity(old_texts)
        t = lap("perplexity_s", t)
        bias = crows_pairs_score(scorer, pairs) if pairs else None
        t = lap("crows_s", t)
        answers, general_answers = _answer_questions(scorer, facts, general, config)
        lap("answers_s", t)
    log.info(
        "model %s: %d items (%d of them controls) in %.1fs (%s items/s), perplexity %.1fs, "
        "CrowS-Pairs %.1fs",
        version_id,
        len(scored),
        len(control_results),
        timings["items_s"],
        timings.get("items_per_s", "n/a"),
        timings["perplexity_s"],
        timings["crows_s"],
    )
    return _ModelRun(
        version_id,
        results,
        ppl_new,
        ppl_old,
        bias,
        None,
        timings,
        control_results,
        answers,
        general_answers,
    )


def _answer_questions(
    scorer: Any, facts: Sequence[Item], general: Sequence[GeneralQuestion], config: EvalConfig
) -> tuple[dict[str, GeneratedAnswer], dict[str, GeneratedAnswer]]:
    """``(facts, general)``: each fact's and each general question put to the model as a user
    would (one batched pass), its answer checked: a fact against its answer, a general question
    against its reference and aliases."""
    from freshlm.evaluation.answers import GeneratedAnswer, check_answers

    texts = _ask(
        scorer,
        [*(_question(item.context) for item in facts), *(q.question for q in general)],
        config,
    )
    fact_texts, general_texts = texts[: len(facts)], texts[len(facts) :]
    checked = check_answers(
        [item.id for item in facts], [item.choices[item.answer_index] for item in facts], fact_texts
    )
    said = {
        q.id: GeneratedAnswer(q.id, text, q.matches(text))
        for q, text in zip(general, general_texts, strict=True)
    }
    return {answer.item_id: answer for answer in checked}, said


def _ask(scorer: Any, questions: Sequence[str], config: EvalConfig) -> list[str]:
    """The model's greedy answers to ``questions``, in order; an answer this version already
    gave (its memo, :mod:`freshlm.evaluation.memo`) is reused, not generated again."""
    from freshlm.evaluation.answers import generate_answers

    memo = scorer.memo if scorer.memo is not None else ScoreMemo()
    keys = [answer_key(q, config.answer_new_tokens) for q in questions]
    missing = [i for i, key in enumerate(keys) if key not in memo.answers]
    memo.hits += len(keys) - len(missing)
    fresh = generate_answers(
        scorer.model,
        scorer.tokenizer,
        [questions[i] for i in missing],
        max_new_tokens=config.answer_new_tokens,
        batch_size=config.batch_size,
    )
    for i, text in zip(missing, fresh, strict=True):
        memo.answers[keys[i]] = text
    return [memo.answers[key] for key in keys]


def _answerer(scorer: Any, config: EvalConfig) -> Answerer:
    """Questions in, ``scorer``'s model's answers out, as :func:`_measure` asks them (so the
    base's answers when its general-knowledge set is screened are the evaluator's own)."""
    from freshlm.evaluation.scoring import torch_threads

    def answer(questions: Sequence[str]) -> list[str]:
        with torch_threads(config.threads):
            return _ask(scorer, questions, config)

    return answer


def _measure_latency(
    scorers: dict[str, Any], runs: dict[str, _ModelRun], prompts: Sequence[str], config: EvalConfig
) -> None:
    """Time both models' generation on the same prompts, interleaved prompt by prompt (see
    :func:`freshlm.evaluation.latency.measure_latency_paired`), into ``runs[role].latency``."""
    from freshlm.evaluation.latency import measure_latency_paired
    from freshlm.evaluation.scoring import torch_threads

    if not prompts:
        return
    began = time.perf_counter()
    with torch_threads(config.threads):
        results = measure_latency_paired(
            {role: (s.model, s.tokenizer) for role, s in scorers.items()},
            prompts,
            new_tokens=config.latency_new_tokens,
        )
    seconds = round(time.perf_counter() - began, 3)
    for role, result in results.items():
        runs[role].latency = result
        runs[role].timings["latency_s"] = seconds  # the interleaved step, both models


def _release(scorers: dict[str, Any]) -> None:
    """Drop the models and give their GPU memory back."""
    cuda = any(str(s.device).startswith("cuda") for s in scorers.values())
    scorers.clear()
    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()


def _pools(pool_of: Sequence[str], results: Sequence[ItemResult]) -> dict[str, list[ItemResult]]:
    """Results split into :data:`~freshlm.evaluation.metrics.POOLS`."""
    pools: dict[str, list[ItemResult]] = {name: [] for name in m.POOLS}
    for pool, result in zip(pool_of, results, strict=True):
        pools[pool].append(result)
    return pools


def _said_accuracy(run: _ModelRun, facts: Sequence[Item], group: str) -> float | None:
    """Share of the ``group`` facts whose answer the model stated in its own words."""
    said = [run.answers[item.id].correct for item in facts if item.group == group]
    return round(sum(said) / len(said), 6) if said else None


def _general_accuracy(run: _ModelRun) -> float | None:
    """Share of the general-knowledge set the model answered right (None when it is empty)."""
    said = [answer.correct for answer in run.general.values()]
    return round(sum(said) / len(said), 6) if said else None


def _model_metrics(
    run: _ModelRun, pools: Mapping[str, list[ItemResult]], facts: Sequence[Item] = ()
) -> dict[str, Any]:
    def ppl(p: Perplexity) -> float | None:
        return round(p.perplexity, 4) if p.perplexity is not None else None

    latency = run.latency
    return {
        "new_knowledge_acc": m.accuracy(pools["new"]),
        "retention_acc": m.accuracy(pools["old"]),
        "world_new_acc": m.accuracy(pools["world_new"]),
        "world_old_acc": m.accuracy(pools["world_old"]),
        "world_new_said_acc": _said_accuracy(run, facts, "new"),
        "world_old_said_acc": _said_accuracy(run, facts, "old"),
        "general_said_acc": _general_accuracy(run),
        "ppl_new": ppl(run.ppl_new),
        "ppl_old": ppl(run.ppl_old),
        "crows_stereo_share": run.bias.stereo_share if run.bias else None,
        "latency_p50_ms": latency.p50_ms if latency else None,
        "latency_p95_ms": latency.p95_ms if latency else None,
        "gen_tokens_per_s": latency.tokens_per_s if latency else None,
    }


# --- history across versions ------------------------------------------------------------------


def _empty_metrics() -> dict[str, Any]:
    return dict.fromkeys(m.METRIC_KEYS)


def lineage_history(store: Store, version_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The ancestors of ``version_id`` (parent, grandparent, …; oldest first, at most
    ``limit``), each with the metrics it had when it was last evaluated: as the candidate of a
    published report if it ever was one, else as the baseline of one (None-filled if never)."""
    from freshlm.registry import RegistryError

    chain: list[str] = []
    seen = {version_id}
    current = version_id
    while len(chain) < limit:
        try:
            parent = get_version(store, current).lineage.parent_version
        except RegistryError:
            break
        if not parent or parent in seen:
            break
        chain.append(parent)
        seen.add(parent)
        current = parent
    if not chain:
        return []
    as_candidate: dict[str, tuple[dict, str]] = {}
    as_baseline: dict[str, tuple[dict, str]] = {}
    for prefix in store.list_published(REPORTS + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is None or manifest.kind != REPORT_KIND:
            continue
        fields = manifest.fields
        metrics = fields.get("metrics") or {}
        uri = store.uri_for(prefix)
        if fields.get("candidate_version") in seen and "candidate" in metrics:
            as_candidate[fields["candidate_version"]] = (metrics["candidate"], uri)
        if fields.get("baseline_version") in seen and "baseline" in metrics:
            as_baseline[fields["baseline_version"]] = (metrics["baseline"], uri)
    history = []
    for ancestor in reversed(chain):
        found = as_candidate.get(ancestor) or as_baseline.get(ancestor)
        metrics = {**_empty_metrics(), **(found[0] if found else {})}
        history.append(
            {"version_id": ancestor, "metrics": metrics, "source": found[1] if found else None}
        )
    return history


def _history(
    store: Store,
    history: Sequence[Mapping[str, Any]] | None,
    baseline: tuple[str, dict],
    candidate: tuple[str, dict],
    uri: str,
) -> list[dict[str, Any]]:
    if history is None:
        earlier = lineage_history(store, baseline[0])
    else:
        earlier = []
        for entry in history:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("version_id"), str):
                raise ValueError("history entries must be {'version_id': str, 'metrics': {...}}")
            earlier.append(
                {
                    "version_id": entry["version_id"],
                    "metrics": {**_empty_metrics(), **dict(entry.get("metrics") or {})},
                    "source": entry.get("source"),
                }
            )
    ids = {baseline[0], candidate[0]}
    entries = [e for e in earlier if e["version_id"] not in ids]
    entries.append(
        {"version_id": baseline[0], "metrics": baseline[1], "source": uri, "role": "baseline"}
    )
    entries.append(
        {"version_id": candidate[0], "metrics": candidate[1], "source": uri, "role": "candidate"}
    )
    return entries


# --- step 1: prepare the inputs --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Prepared:
    """The checked and sampled inputs of one evaluation: what both models are scored on.

    ``items`` is new, then old, then fact items; ``pool_of`` names each one's pool
    (:data:`~freshlm.evaluation.metrics.POOLS`). ``controls`` are scored beside the items but
    enter no pool (see :func:`~freshlm.evaluation.world_facts.wrong_question_controls`)."""

    new: list[Item]
    old: list[Item]
    facts: list[Item]
    items: list[Item]
    pool_of: list[str]
    controls: list[Item]
    texts_new: list[str]
    texts_old: list[str]
    pairs: list[Any]
    prompts: list[str]
    new_items_given: int
    old_items_given: int

    @property
    def pool_counts(self) -> dict[str, int]:
        return {name: self.pool_of.count(name) for name in m.POOLS}


def _check_items(new: Sequence[Item], old: Sequence[Item], facts: Sequence[Item]) -> None:
    """Each list holds only its kind of item, and no item is given twice."""
    for name, group, kind in (("new_items", new, "cloze"), ("old_items", old, "cloze")):
        for item in group:
            if item.kind != kind:
                raise ValueError(f"{name}: item {item.id} is a {item.kind!r} item, not {kind!r}")
    for item in facts:
        if item.kind != "fact":
            raise ValueError(f"fact_items: item {item.id} is a {item.kind!r} item, not 'fact'")
    seen: dict[str, str] = {}
    for label, group in (("new_items", new), ("old_items", old), ("fact_items", facts)):
        for item in group:
            if item.id in seen:
                raise ValueError(
                    f"item {item.id} is given twice ({seen[item.id]} and {label}); each item "
                    "must be scored once"
                )
            seen[item.id] = label


def _sample_texts(texts: Sequence[str], config: EvalConfig) -> list[str]:
    kept = [t for t in texts if t and t.strip()]
    return stable_subset(kept, config.heldout_max_docs, seed=config.seed, key=lambda t: t)


def prepare(
    *,
    new_items: Sequence[Item],
    old_items: Sequence[Item],
    fact_items: Sequence[Item],
    new_texts: Sequence[str],
    old_texts: Sequence[str],
    config: EvalConfig,
    crows_path: str | os.PathLike[str] | None = None,
) -> Prepared:
    """The inputs checked (``ValueError`` naming a misplaced or repeated item) and sampled
    down to the configured caps; any of them may be empty."""
    from freshlm.evaluation.bias import load_crows_pairs

    new = stable_subset(new_items, config.max_new_items, seed=config.seed, key=lambda i: i.id)
    old = stable_subset(old_items, config.max_old_items, seed=config.seed, key=lambda i: i.id)
    facts = list(fact_items)
    _check_items(new, old, facts)
    items = [*new, *old, *facts]
    texts_new = _sample_texts(new_texts, config)
    texts_old = _sample_texts(old_texts, config)
    return Prepared(
        new=new,
        old=old,
        facts=facts,
        items=items,
        # The list an item came in decides its pool for cloze items (an item carried from new
        # to old keeps its id and may keep its stored group); facts go by their group.
        pool_of=[
            *(["new"] * len(new)),
            *(["old"] * len(old)),
            *(f"world_{item.group}" for item in facts),
        ],
        # The new facts' choices under another new fact's question: what familiarity with the
        # answer strings alone scores (see wrong_question_controls).
        controls=wrong_question_controls([item for item in facts if item.group == "new"]),
        texts_new=texts_new,
        texts_old=texts_old,
        pairs=load_crows_pairs(crows_path, max_pairs=config.crows_max_pairs, seed=config.seed),
        prompts=_latency_prompts(items, [*texts_new, *texts_old], config.latency_prompts),
        new_items_given=len(new_items),
        old_items_given=len(old_items),
    )


def _latency_prompts(items: Sequence[Item], texts: Sequence[str], count: int) -> list[str]:
    prompts = [item.context for item in items[:count]]
    for text in texts:
        if len(prompts) >= count:
            break
        prompts.append(text[:300])
    return prompts or [_FALLBACK_PROMPT]


# --- step 2: score both models ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scored:
    """What :func:`score` measured: ``runs`` (``{"baseline": run, "candidate": run}``) and the
    general-knowledge set both models were asked."""

    runs: dict[str, _ModelRun]
    general: GeneralSet


def _general_set(
    store: Store,
    base_version: str,
    config: EvalConfig,
    work_dir: str | os.PathLike[str],
    keep_copies: int | None = None,
) -> GeneralSet:
    """The base's general-knowledge set, screened with the base loaded for the purpose when it
    is not published yet (the base is neither of the two models being evaluated)."""

    def load_base() -> Answerer:
        folder = download_cached(store, base_version, work_dir, keep=keep_copies)
        scorer, load_s = _load(folder, config)
        scorer.memo = load_memo(store, base_version, scorer.model)
        log.info(
            "base %s loaded in %.1fs to screen its general-knowledge set", base_version, load_s
        )
        loaded.append(scorer)
        return _answerer(scorer, config)

    loaded: list[Any] = []
    try:
        general = _ensure_general(store, base_version, load_base, config)
        for scorer in loaded:
            save_memo(store, base_version, scorer.model, scorer.memo)
    finally:
        _release({str(i): scorer for i, scorer in enumerate(loaded)})
    return general


def _ensure_general(
    store: Store, base_version: str, answerer: Callable[[], Answerer], config: EvalConfig
) -> GeneralSet:
    return ensure_general_set(
        store,
        base_version,
        answerer,
        max_questions=config.general_max_questions,
        seed=config.seed,
        max_new_tokens=config.answer_new_tokens,
        created_by={"component": COMPONENT},
    )


def score(
    store: Store,
    prepared: Prepared,
    *,
    baseline_version: str,
    candidate_version: str,
    config: EvalConfig,
    work_dir: str | os.PathLike[str],
    general_base: str | None = None,
    keep_copies: int | None = None,
) -> Scored:
    """Both models measured on the same inputs, with the general-knowledge set of
    ``general_base`` (default: the root of the baseline's lineage, :func:`root_version`).

    Each model is loaded once and both stay loaded until the latency step, which times them
    interleaved; then their memory is given back. A set not published yet is screened first:
    with the baseline itself when it is the base (the first night), else with the base loaded
    on its own beforehand."""
    base = general_base or root_version(store, baseline_version)
    general = read_general_set(store, base)
    if general is None and base != baseline_version:
        general = _general_set(store, base, config, work_dir, keep_copies)
    runs: dict[str, _ModelRun] = {}
    scorers: dict[str, Any] = {}
    try:
        for role, version_id in (("baseline", baseline_version), ("candidate", candidate_version)):
            began = time.perf_counter()
            path = download_cached(store, version_id, work_dir, keep=keep_copies)
            download_s = round(time.perf_counter() - began, 3)
            scorers[role], load_s = _load(path, config)
            scorers[role].memo = load_memo(store, version_id, scorers[role].model)
            if general is None:  # the baseline is the base: it screens its own set
                general = _ensure_general(
                    store, base, lambda s=scorers[role]: _answerer(s, config), config
                )
            run = _measure(
                scorers[role],
                version_id,
                load_s=load_s,
                items=prepared.items,
                new_texts=prepared.texts_new,
                old_texts=prepared.texts_old,
                pairs=prepared.pairs,
                config=config,
                controls=prepared.controls,
                facts=prepared.facts,
                general=general.questions,
            )
            run.timings = {"download_s": download_s, **run.timings}
            run.timings["reused_measurements"] = scorers[role].memo.hits
            save_memo(store, version_id, scorers[role].model, scorers[role].memo)
            runs[role] = run
        _measure_latency(scorers, runs, prepared.prompts, config)
    finally:
        _release(scorers)
    assert general is not None  # screened before the baseline was measured
    return Scored(runs, general)


# --- step 3: build the report -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BuiltReport:
    """A report ready to publish under ``prefix``: the JSON document and its other files."""

    prefix: str
    report: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    item_records: list[dict[str, Any]]
    chart: bytes
    page: str


def _question(context: str) -> str:
    match = FACT_QUESTION.match(context)
    return match.group("q") if match else context


def _unmeasured(
    prepared: Prepared, baseline_run: _ModelRun, general: GeneralSet | None = None
) -> dict[str, str]:
    """Metric -> why it could not be measured (nothing to measure it on)."""
    pools = prepared.pool_counts
    unmeasured = {}
    for key, count, why in (
        ("new_knowledge_acc", pools["new"], "no new-knowledge items"),
        ("retention_acc", pools["old"], "no retention items"),
        ("world_new_acc", pools["world_new"], "no new world-fact items"),
        ("world_old_acc", pools["world_old"], "no old world-fact items"),
        ("world_new_said_acc", pools["world_new"], "no new world-fact items"),
        ("world_old_said_acc", pools["world_old"], "no old world-fact items"),
        ("ppl_new", baseline_run.ppl_new.tokens, "no held-out new text"),
        ("ppl_old", baseline_run.ppl_old.tokens, "no held-out old text"),
        ("crows_stereo_share", len(prepared.pairs), "no CrowS-Pairs pairs"),
    ):
        if not count:
            unmeasured[key] = why
    if general is None:
        unmeasured["general_said_acc"] = "no general-knowledge set"
    elif not general.questions:
        unmeasured["general_said_acc"] = general.unmeasured_reason() or "empty set"
    return unmeasured


def _counts(
    prepared: Prepared, baseline_run: _ModelRun, general: GeneralSet | None = None
) -> dict[str, Any]:
    pools = prepared.pool_counts
    return {
        "new": pools["new"],
        "old": pools["old"],
        "world_new": pools["world_new"],
        "world_old": pools["world_old"],
        "world_stale": pools["world_stale"],
        "new_items_given": prepared.new_items_given,
        "old_items_given": prepared.old_items_given,
        "new_texts": len(prepared.texts_new),
        "new_tokens": baseline_run.ppl_new.tokens,
        "old_texts": len(prepared.texts_old),
        "old_tokens": baseline_run.ppl_old.tokens,
        "crows_pairs": len(prepared.pairs),
        "latency_prompts": len(prepared.prompts),
        "general": general.kept if general else 0,
        "general_screened": general.screened if general else 0,
        "unmeasured": _unmeasured(prepared, baseline_run, general),
    }


def _fact_rows(
    prepared: Prepared,
    by_id: Mapping[str, Mapping[str, ItemResult]],
    said: Mapping[str, Mapping[str, GeneratedAnswer]],
) -> list[dict[str, Any]]:
    """The world facts before (baseline) and after (candidate), for people: the choice each
    model ranked first and the answer it wrote itself."""
    rows = []
    for item in prepared.facts:
        b, c = by_id["baseline"][item.id], by_id["candidate"][item.id]
        b_said, c_said = said["baseline"].get(item.id), said["candidate"].get(item.id)
        rows.append(
            {
                "id": item.id,
                "group": item.group,
                "span_type": item.span_type,
                "question": _question(item.context),
                "context": item.context,
                "answer": item.choices[item.answer_index],
                "choices": list(item.choices),
                "baseline_answer": item.choices[b.chosen],
                "baseline_correct": b.correct,
                "candidate_answer": item.choices[c.chosen],
                "candidate_correct": c.correct,
                "baseline_said": b_said.text if b_said else None,
                "baseline_said_correct": b_said.correct if b_said else None,
                "candidate_said": c_said.text if c_said else None,
                "candidate_said_correct": c_said.correct if c_said else None,
            }
        )
    return rows


def _general_section(
    general: GeneralSet | None, runs: Mapping[str, _ModelRun]
) -> dict[str, Any] | None:
    """The report's ``general``: the set (size, screened, the base's own accuracy) and each
    question with both models' answers."""
    if general is None:
        return None
    rows = []
    for q in general.questions:
        b, c = runs["baseline"].general.get(q.id), runs["candidate"].general.get(q.id)
        rows.append(
            {
                "id": q.id,
                "topic": q.topic,
                "question": q.question,
                "answers": list(q.answers),
                "baseline_said": b.text if b else None,
                "baseline_correct": b.correct if b else None,
                "candidate_said": c.text if c else None,
                "candidate_correct": c.correct if c else None,
            }
        )
    return {**general.summary(), "rows": rows}


def _item_records(
    prepared: Prepared, by_id: Mapping[str, Mapping[str, ItemResult]]
) -> list[dict[str, Any]]:
    """One record per item with both models' results (``items.jsonl.gz``)."""
    return [
        {
            "id": item.id,
            "pool": pool,
            "kind": item.kind,
            "group": item.group,
            "span_type": item.span_type,
            "answer_index": item.answer_index,
            "baseline": by_id["baseline"][item.id].to_dict(),
            "candidate": by_id["candidate"][item.id].to_dict(),
        }
        for item, pool in zip(prepared.items, prepared.pool_of, strict=True)
    ]


def _compare(
    prepared: Prepared, pools: Mapping[str, Mapping[str, list[ItemResult]]], metrics: Mapping
) -> tuple[m.Forgetting, dict[str, Any], dict[str, Any]]:
    """``(forgetting, comparison, paired)``: forgetting counts retention over old cloze items
    plus old world facts, gains over new cloze items plus new world facts."""
    base, cand = pools["baseline"], pools["candidate"]
    forgot = m.forgetting(
        base["old"] + base["world_old"],
        cand["old"] + cand["world_old"],
        base["new"] + base["world_new"],
        cand["new"] + cand["world_new"],
    )
    comparison = m.compare(metrics["baseline"], metrics["candidate"], forgot)
    paired = {
        name: m.paired_comparison(base[name], cand[name]).to_dict()
        for name, count in prepared.pool_counts.items()
        if count
    }
    return forgot, comparison, paired


def _general_paired(runs: Mapping[str, _ModelRun]) -> dict[str, Any]:
    """``{"general": Paired}`` over the general-knowledge set (empty when the set is)."""
    base, cand = runs["baseline"].general, runs["candidate"].general
    if not base:
        return {}
    return {"general": m.paired_comparison(list(base.values()), list(cand.values())).to_dict()}


def _side(
    store: Store, run: _ModelRun, metrics: dict[str, Any], version: ModelVersion
) -> dict[str, Any]:
    return {
        "version_id": run.version_id,
        "metrics": metrics,
        "uri": store.uri_for(version_prefix(version.version_id)),
    }


def build_report(
    store: Store,
    prepared: Prepared,
    runs: Mapping[str, _ModelRun],
    *,
    versions: Mapping[str, ModelVersion],
    config: EvalConfig,
    history: Sequence[Mapping[str, Any]] | None,
    started: float,
    general: GeneralSet | None = None,
) -> BuiltReport:
    """The report of ``runs`` (see :mod:`freshlm.evaluation.report` for its schema), its chart,
    its page and its per-item records; ``versions`` are the two roles' model versions and
    ``general`` the general-knowledge set both were asked."""
    baseline_id, candidate_id = runs["baseline"].version_id, runs["candidate"].version_id
    prefix = report_prefix(candidate_id, baseline_id)
    uri = store.uri_for(prefix)
    pools = {role: _pools(prepared.pool_of, run.results) for role, run in runs.items()}
    metrics = {role: _model_metrics(runs[role], pools[role], prepared.facts) for role in runs}
    forgot, comparison, paired = _compare(prepared, pools, metrics)
    paired.update(_general_paired(runs))
    counts = _counts(prepared, runs["baseline"], general)
    for key, why in counts["unmeasured"].items():
        log.info("%s is not measured: %s", key, why)
    by_id = {role: {r.item_id: r for r in run.results} for role, run in runs.items()}
    entries = _history(
        store,
        history,
        (baseline_id, metrics["baseline"]),
        (candidate_id, metrics["candidate"]),
        uri,
    )
    timings: dict[str, Any] = {role: run.timings for role, run in runs.items()}
    timings["total_s"] = round(time.perf_counter() - started, 3)
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "candidate": _side(store, runs["candidate"], metrics["candidate"], versions["candidate"]),
        "baseline": _side(store, runs["baseline"], metrics["baseline"], versions["baseline"]),
        "comparison": comparison,
        "counts": counts,
        "config": config.to_dict(),
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "uri": uri,
        "facts": _fact_rows(prepared, by_id, {role: run.answers for role, run in runs.items()}),
        "general": _general_section(general, runs),
        "controls": {
            "world_new_wrong_question": {
                "items": len(prepared.controls),
                **{role: m.accuracy(run.controls) for role, run in runs.items()},
            }
        },
        "paired": paired,
        "forgetting": forgot.to_dict(),
        "groups": {role: m.accuracy_by_group(run.results) for role, run in runs.items()},
        "bias": {role: run.bias.to_dict() if run.bias else None for role, run in runs.items()},
        "latency": {
            role: run.latency.to_dict() if run.latency else None for role, run in runs.items()
        },
        "perplexity": {
            role: {
                "new": dataclasses.asdict(run.ppl_new),
                "old": dataclasses.asdict(run.ppl_old),
            }
            for role, run in runs.items()
        },
        "history": entries,
        "timings": timings,
        "files": {
            name: store.uri_for(f"{prefix}/{file}")
            for name, file in (
                ("json", REPORT_JSON),
                ("html", REPORT_HTML),
                ("png", CHART_PNG),
                ("items", ITEMS_JSONL),
            )
        },
    }
    chart = render_chart(
        entries,
        title=f"FreshLM: candidate {candidate_id[:8]} vs production {baseline_id[:8]}",
    )
    return BuiltReport(
        prefix=prefix,
        report=report,
        metrics=metrics,
        item_records=_item_records(prepared, by_id),
        chart=chart,
        page=render_html(report, chart_png=chart),
    )


# --- step 4: publish --------------------------------------------------------------------------


def publish_report(
    store: Store, built: BuiltReport, *, created_by: Mapping[str, Any] | None, started: float
) -> dict[str, Any]:
    """Publish the report atomically (kind ``eval-report``); the report. When a concurrent
    evaluation of the same pair published first, that report stands and is returned."""
    report = built.report
    candidate_id = report["candidate"]["version_id"]
    baseline_id = report["baseline"]["version_id"]
    actor = {"component": COMPONENT, **dict(created_by or {})}
    try:
        with store.publisher(built.prefix, kind=REPORT_KIND, created_by=actor) as pub:
            pub.write_jsonl(ITEMS_JSONL, built.item_records)
            pub.write_bytes(CHART_PNG, built.chart)
            pub.write_bytes(REPORT_HTML, built.page.encode("utf-8"))
            pub.write_bytes(
                REPORT_JSON,
                (json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n").encode(),
            )
            pub.set_manifest_fields(
                schema=REPORT_SCHEMA,
                candidate_version=candidate_id,
                baseline_version=baseline_id,
                metrics=built.metrics,
                comparison=report["comparison"],
                counts=report["counts"],
                footprint=report.get("footprint"),
            )
    except StoreError:
        existing = read_report(store, candidate_id, baseline_id)
        if existing is None:
            raise
        log.info("report %s was published concurrently; returning that one", report["uri"])
        return existing
    metrics, comparison = built.metrics, report["comparison"]
    log.info(
        "published %s in %.1fs: new %s -> %s, retention %s -> %s, general %s -> %s, FUAR %s "
        "(forgot %d, gained %d)",
        report["uri"],
        time.perf_counter() - started,
        metrics["baseline"]["new_knowledge_acc"],
        metrics["candidate"]["new_knowledge_acc"],
        metrics["baseline"]["retention_acc"],
        metrics["candidate"]["retention_acc"],
        metrics["baseline"].get("general_said_acc"),
        metrics["candidate"].get("general_said_acc"),
        comparison["fuar"],
        comparison["forgotten"],
        comparison["gained"],
    )
    return report


# --- the four steps together ------------------------------------------------------------------


def _published(
    store: Store, candidate_version: str, baseline_version: str, config: EvalConfig
) -> dict[str, Any] | None:
    """The report of this pair if it is already published (it stands as published)."""
    existing = read_report(store, candidate_version, baseline_version)
    if existing is None:
        return None
    uri = store.uri_for(report_prefix(candidate_version, baseline_version))
    if existing.get("config") != config.to_dict():
        log.warning(
            "report %s exists with another configuration (%s); returning it as published "
            "(delete it to re-evaluate)",
            uri,
            existing.get("config"),
        )
    log.info("report %s is already published; returning it", uri)
    return existing


def evaluate(
    store: Store,
    candidate_version: str,
    baseline_version: str,
    *,
    new_items: Sequence[Item],
    old_items: Sequence[Item],
    fact_items: Sequence[Item] = (),
    new_texts: Sequence[str] = (),
    old_texts: Sequence[str] = (),
    config: EvalConfig | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    keep_copies: int | None = None,
    created_by: Mapping[str, Any] | None = None,
    crows_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Evaluate ``candidate_version`` against ``baseline_version`` (normally production) and
    publish the report; return the report dict (see :mod:`freshlm.evaluation.report`).

    If the report of this pair is already published it is returned as is (nothing is loaded).
    ``history`` (``[{"version_id", "metrics"}]``, oldest first) feeds the chart's earlier
    versions; by default they are the baseline's ancestors with their metrics from earlier
    reports (:func:`lineage_history`). ``work_dir`` (default ``$FRESHLM_HOME/work/evaluation``)
    caches the downloaded models by version id; ``keep_copies`` bounds that cache to the most
    recently used copies (default: every copy is kept). ``crows_path`` replaces the bundled
    CrowS-Pairs file (tests use a small one).
    """
    config = config or EvalConfig()
    existing = _published(store, candidate_version, baseline_version, config)
    if existing is not None:
        return existing
    started = time.perf_counter()
    meter = Meter()
    versions = {  # fail fast, before any model loads
        "candidate": get_version(store, candidate_version),
        "baseline": get_version(store, baseline_version),
    }
    prepared = prepare(
        new_items=new_items,
        old_items=old_items,
        fact_items=fact_items,
        new_texts=new_texts,
        old_texts=old_texts,
        config=config,
        crows_path=crows_path,
    )
    log.info(
        "evaluate %s vs %s: %s items, %d + %d held-out texts, %d CrowS-Pairs pairs, "
        "%d latency prompts",
        candidate_version,
        baseline_version,
        prepared.pool_counts,
        len(prepared.texts_new),
        len(prepared.texts_old),
        len(prepared.pairs),
        len(prepared.prompts),
    )
    if work_dir is None:
        from freshlm.settings import get_settings

        work_dir = get_settings().home / "work" / "evaluation"
    scored = score(
        store,
        prepared,
        baseline_version=baseline_version,
        candidate_version=candidate_version,
        config=config,
        work_dir=work_dir,
        keep_copies=keep_copies,
    )
    built = build_report(
        store,
        prepared,
        scored.runs,
        versions=versions,
        config=config,
        history=history,
        started=started,
        general=scored.general,
    )
    built.report["footprint"] = meter.finish()  # the evaluation run's cost and energy
    return publish_report(store, built, created_by=created_by, started=started)
