"""What a ``freshlm_evaluate`` run evaluates, and the evaluation itself with its inputs gathered.

:func:`resolve_evaluation` turns the run's Params and its triggering
``freshlm://models/candidates`` events into a checked pair (candidate, baseline) and the
candidate's datasets; :func:`run_evaluation` gathers the items and texts for that pair and calls
:func:`freshlm.evaluation.evaluate.evaluate`:

* new-knowledge probes: cloze items of the newest dataset the candidate was trained on;
* retention probes: those of every earlier published dataset, carried forward; the base
  model's own corpus is one of them when it is published (``role: base-corpus``, see
  :func:`freshlm.artifacts.base_corpus`). With no earlier dataset there is nothing old to
  probe, and retention goes unmeasured (the report says so);
* the sandbox world's fact probes (over HTTP), when the world is reachable: the new facts that
  the crawl windows up to the candidate's newest one could have taught, and the old facts,
  those from before :func:`~freshlm.evaluation.world_facts.old_fact_cutoff` (the end of the
  base corpus's window);
* perplexity text: the newest dataset's held-out documents (new) and the earlier datasets'
  (old).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from freshlm.evaluation.config import EvalConfig, EvalConfigError
from freshlm.registry import PRODUCTION, get_version, read_alias
from freshlm.registry.errors import RegistryError
from freshlm.settings import Settings, get_settings
from freshlm.store import Store

log = logging.getLogger("freshlm.evaluation")


class EvaluationRequestError(ValueError):
    """A ``freshlm_evaluate`` Param or event is invalid; the message names it."""


def _version(store: Store, version_id: str, param: str) -> Any:
    try:
        return get_version(store, version_id)
    except RegistryError as exc:  # VersionNotFound lists the known versions; bad ids say so
        raise EvaluationRequestError(f"{param}: {exc}") from None


def resolve_evaluation(
    params: Mapping[str, Any], events: Sequence[Mapping[str, Any]], *, store: Store
) -> dict[str, Any]:
    """``{candidate, baseline, dataset_ids, windows, trigger}`` for this run.

    The candidate is the Param's, else the newest triggering event's. The baseline is the
    Param's, else the production version the candidate's training planned against (so the
    promotion's compare-and-swap guards exactly what was compared), else production now.
    """
    event = dict(events[-1]) if events else {}
    candidate = params.get("candidate") or event.get("version_id")
    if not candidate:
        raise EvaluationRequestError(
            "candidate: none given and the run was not triggered by a candidate-model event; "
            "trigger it with the Param candidate (a model version id)"
        )
    trigger = "manual" if params.get("candidate") else "asset"
    baseline = params.get("baseline")
    if not baseline and trigger == "asset":
        baseline = event.get("baseline_version")
    if not baseline:
        production = read_alias(store, PRODUCTION)
        if production is None:
            raise EvaluationRequestError(
                "baseline: none given and production is not set; bootstrap the base model first"
            )
        baseline = production.version_id
    if baseline == candidate:
        raise EvaluationRequestError(
            f"baseline: {baseline} is the candidate itself; name the version to compare with"
        )
    cand_version = _version(store, candidate, "candidate")
    _version(store, baseline, "baseline")
    dataset_ids = list(cand_version.lineage.dataset_ids or [])
    if not dataset_ids:
        raise EvaluationRequestError(
            f"candidate: {candidate} names no training datasets in its lineage, so there is "
            "no new knowledge to probe (is it a bootstrapped base model?)"
        )
    windows = [w for w in (cand_version.lineage.crawl_windows or []) if w]
    return {
        "candidate": candidate,
        "baseline": baseline,
        "dataset_ids": dataset_ids,
        "windows": windows,
        "trigger": trigger,
    }


def world_fact_items(
    world_url: str,
    *,
    old_cutoff: str | None,
    newest_window_end: str | None,
    timeout_s: float,
) -> list:
    """The world's new facts learnable from ``old_cutoff`` up to ``newest_window_end`` and
    its old facts (available before ``old_cutoff``, or keyed ``old-``); empty (with a
    warning) when the world cannot be reached — a deployment on real sources has none."""
    import requests

    from freshlm.evaluation.world_facts import fact_items, fetch_world_probes, learnable_facts

    try:
        doc = fetch_world_probes(world_url, timeout=timeout_s)
    except requests.RequestException as exc:
        log.warning("world fact probes skipped: %s is not reachable (%s)", world_url, exc)
        return []
    if old_cutoff and newest_window_end:
        span = [(old_cutoff, newest_window_end)]
        new = learnable_facts(doc, span, old_cutoff=old_cutoff)
    else:
        log.warning("no new world facts: no crawl window or no published dataset to date them")
        new = []
    old = [item for item in fact_items(doc, old_cutoff=old_cutoff) if item.group == "old"]
    log.info(
        "world fact probes: %d new, %d old (old before %s, from %s)",
        len(new),
        len(old),
        old_cutoff,
        world_url,
    )
    return new + old


def configured_eval(settings: Settings) -> EvalConfig:
    """The evaluation of ``settings.eval_config`` (``FRESHLM_EVAL_CONFIG``): the defaults with
    its fields; a wrong field raises :class:`EvalConfigError` naming the variable and field."""
    if settings.eval_config is None:
        return EvalConfig()
    try:
        return EvalConfig.from_dict(settings.eval_config.as_dict())
    except EvalConfigError as exc:
        raise EvalConfigError(f"FRESHLM_EVAL_CONFIG: {exc}") from None


def run_evaluation(
    store: Store,
    request: Mapping[str, Any],
    *,
    config: EvalConfig | None = None,
    settings: Settings | None = None,
    created_by: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate the request's candidate against its baseline; the published report."""
    from freshlm.evaluation.evaluate import evaluate, heldout_texts
    from freshlm.evaluation.probes import earlier_datasets, probe_sets_for
    from freshlm.evaluation.world_facts import old_fact_cutoff

    settings = settings or get_settings()
    config = config or configured_eval(settings)
    dataset_ids = list(request["dataset_ids"])
    newest = dataset_ids[-1]
    new_items, old_items = probe_sets_for(
        store,
        dataset_ids,
        seed=config.seed,
        max_new=config.max_new_items,
        max_old=config.max_old_items,
    )
    windows = request.get("windows") or []
    newest_end = max((w["end"] for w in windows if w.get("end")), default=None)
    facts = world_fact_items(
        settings.world_url,
        old_cutoff=old_fact_cutoff(store),
        newest_window_end=newest_end,
        timeout_s=settings.http_timeout_s,
    )
    earlier = earlier_datasets(store, dataset_ids)
    if not earlier:
        log.warning(
            "no retention probes or old text: no dataset is published before %s (no base "
            "corpus either), so retention goes unmeasured",
            newest,
        )
    new_texts = heldout_texts(store, [newest], limit=config.heldout_max_docs, seed=config.seed)
    old_texts = heldout_texts(store, earlier, limit=config.heldout_max_docs, seed=config.seed)
    log.info(
        "evaluating %s against %s: %d new and %d retention probes, %d fact probes, "
        "%d new and %d old held-out documents",
        request["candidate"],
        request["baseline"],
        len(new_items),
        len(old_items),
        len(facts),
        len(new_texts),
        len(old_texts),
    )
    return evaluate(
        store,
        request["candidate"],
        request["baseline"],
        new_items=new_items,
        old_items=old_items,
        fact_items=facts,
        new_texts=new_texts,
        old_texts=old_texts,
        config=config,
        work_dir=settings.home / "work" / "evaluation",
        keep_copies=settings.model_copies_keep,
        created_by=created_by,
    )


SUMMARY_KEYS = (
    "schema",
    "candidate",
    "baseline",
    "comparison",
    "counts",
    "controls",
    "uri",
    "created_at",
)


def report_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report without its per-item rows: what travels through XCom to the decision (the
    whole report stays in the store, where :func:`freshlm.artifacts.read_report` finds it
    again)."""
    return {k: report[k] for k in SUMMARY_KEYS if k in report}
