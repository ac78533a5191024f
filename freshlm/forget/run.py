"""Forget one item everywhere: what a ``freshlm_forget`` run does, in this order.

1. The request goes to the audit log (``audit/forget/<request>/request.json``: who, when,
   why, what) and the item to the deny list, so a crawl that starts now already skips it.
2. The lineage index is refreshed and asked which raw shards, candidates (curation's kept and
   quarantined documents) and datasets hold the item.
3. Each of those gets a new version without it (:mod:`freshlm.forget.rewrite`).
4. What was built on the old datasets: training sets (packed tokens of the item) are deleted,
   so new ones are built from the new datasets; model versions cannot be untrained, so each is
   marked "trained on forgotten data" in the registry (its card says so) and the checkpoints of
   its run are deleted.
5. The audit log gets what was touched (``done.json``), and the result says how production
   would be retrained without the item: from its newest unmarked ancestor, on the new versions
   of every dataset the marked chain was trained on.

Every step is idempotent: a rerun after a crash finds what is left and finishes it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from freshlm import lineage_index
from freshlm.artifacts import DATASET_KIND, FORGET_AUDIT, delete_run
from freshlm.deny_list import add_to_deny_list
from freshlm.forget.request import ForgetRequest
from freshlm.forget.rewrite import replace_without, republish_dataset
from freshlm.registry import PRODUCTION, get_version, read_alias
from freshlm.registry.errors import RegistryError
from freshlm.registry.forgotten import mark_trained_on_forgotten_data
from freshlm.store import PreconditionFailed, Store

log = logging.getLogger("freshlm.forget")


def audit_key(request_id: str, step: str) -> str:
    return f"{FORGET_AUDIT}/{request_id}/{step}.json"


def _audit(store: Store, request: ForgetRequest, step: str, record: dict[str, Any]) -> None:
    with contextlib.suppress(PreconditionFailed):  # written by an earlier attempt
        store.write_json(
            audit_key(request.request_id, step),
            {**request.to_dict(), "step": step, **record},
            if_none_match=True,
        )


def read_forget_audit(store: Store) -> list[dict[str, Any]]:
    """Every forget request's audit records, oldest request first."""
    records = [store.read_json(k) for k in store.list(FORGET_AUDIT + "/") if k.endswith(".json")]
    order = {"request": 0, "done": 1}
    return sorted(
        records, key=lambda r: (r["requested_at"], r["request_id"], order.get(r["step"], 2))
    )


def _retrain_plan(store: Store, marked: set[str], replaced: dict[str, str | None]) -> dict | None:
    """How to retrain production without the item (None when production is not marked): from
    its newest unmarked ancestor (None: the chain has none) on the new versions of the datasets
    the marked versions between them were trained on, oldest first."""
    alias = read_alias(store, PRODUCTION)
    if alias is None or alias.version_id not in marked:
        return None
    chain = [get_version(store, alias.version_id)]
    base = None
    while chain[-1].lineage.parent_version is not None:
        try:
            parent = get_version(store, chain[-1].lineage.parent_version)
        except RegistryError:
            break
        if parent.version_id not in marked and not parent.trained_on_forgotten_data:
            base = parent.version_id
            break
        chain.append(parent)
    datasets: list[str] = []
    for version in reversed(chain):
        for dataset_id in version.lineage.dataset_ids:
            new = replaced.get(dataset_id, dataset_id)
            if new is not None and new not in datasets:
                datasets.append(new)
    return {"production": alias.version_id, "base_version": base, "datasets": datasets}


def forget(store: Store, request: ForgetRequest) -> dict[str, Any]:
    """Forget ``request``'s item everywhere (see the module doc); what was touched."""
    target = request.target
    _audit(store, request, "request", {})
    add_to_deny_list(store, [target], request.request_id)
    lineage_index.refresh(store)
    touched: dict[str, Any] = {"raw_shards": [], "candidates": [], "datasets": []}
    replaced: dict[str, str | None] = {}
    for entry, files in lineage_index.holding(store, target):
        manifest = store.read_manifest(entry.prefix)
        if manifest is None or manifest.content_sha256 != entry.content_sha256:
            continue  # changed since the refresh: the next run finds it again
        if entry.kind == DATASET_KIND:
            result = republish_dataset(store, manifest, target, request.request_id)
            replaced[result["old"]] = result["new"]
            touched["datasets"].append(result)
        else:
            removed = replace_without(store, manifest, files, target, request.request_id)
            kind = "raw_shards" if entry.prefix.startswith("raw/") else "candidates"
            touched[kind].append({"prefix": entry.prefix, "removed": removed})
    # Datasets replaced by an earlier attempt of this request still count for what follows.
    for entry in lineage_index.entries(store, [DATASET_KIND]):
        manifest = store.read_manifest(entry.prefix)
        if manifest is not None and any(
            f.get("request_id") == request.request_id for f in manifest.fields.get("forgotten", [])
        ):
            replaced.setdefault(str(manifest.fields["supersedes"]), manifest.artifact_id)
    lineage_index.refresh(store)
    touched.update(trainsets_deleted=[], models_marked=[], checkpoint_runs_deleted=[])
    marked: set[str] = set()
    for entry in lineage_index.built_on(store, replaced):
        if entry.kind == "model":
            version_id = entry.prefix.rsplit("/", 1)[-1]
            mark_trained_on_forgotten_data(store, version_id, request.to_dict())
            marked.add(version_id)
            touched["models_marked"].append(version_id)
            run_key = (get_version(store, version_id).lineage.extra or {}).get("run_key")
            if run_key and delete_run(store, str(run_key))[0]:
                touched["checkpoint_runs_deleted"].append(run_key)
        else:
            store.delete_artifact(entry.prefix)
            touched["trainsets_deleted"].append(entry.prefix)
    lineage_index.refresh(store)
    retrain = _retrain_plan(store, marked, replaced)
    summary = {"touched": touched, "retrain": retrain}
    _audit(store, request, "done", summary)
    log.info(
        "forgot %s:%s (request %s): %d raw shard(s), %d candidate(s), %d dataset(s) rewritten; "
        "%d training set(s) deleted; %d model version(s) marked%s",
        target.kind,
        target.value,
        request.request_id,
        len(touched["raw_shards"]),
        len(touched["candidates"]),
        len(touched["datasets"]),
        len(touched["trainsets_deleted"]),
        len(touched["models_marked"]),
        "; production is among them" if retrain else "",
    )
    return {**request.to_dict(), **summary}
