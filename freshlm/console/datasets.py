"""Datasets: every published dataset and quarantined batch, its gate verdict with the failed
expectations (observed vs expected), its Data Docs, quarantine reasons with counts, and the
Accept batch action (``freshlm_curate`` with ``accept_batch`` and a required reason).

A batch is named by its candidate's id, which is also the id of the dataset it publishes.
Routes: :func:`freshlm.alerts.links.datasets_url`, ``batch_url``, ``accept_batch_url``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request

from freshlm.artifacts import (
    DATASETS,
    QUARANTINED_BATCH_KIND,
    QUARANTINED_BATCHES,
    ArtifactNotFound,
    published_datasets,
    read_gate_report,
)
from freshlm.console.auth import Reader, triggering
from freshlm.console.context import check_artifact_id, store_of, trigger_of
from freshlm.console.rendering import PageError, render
from freshlm.store import Store, StoreError

CURATE_DAG = "freshlm_curate"
#: ``freshlm_curate``'s Param ``accept_reason``: at most this long.
REASON_MAX = 2000
#: A quarantined batch's record (``quarantine/batches/<id>/batch.json``).
BATCH_RECORD = "batch.json"

router = APIRouter()
#: The caller of this page's action: allowed to trigger ``freshlm_curate``.
AcceptCaller = triggering(CURATE_DAG)


@dataclasses.dataclass(frozen=True)
class Batch:
    """A curated batch after the gate: published as a dataset, or quarantined (or both, once
    an operator accepted it), with the gate's verdict when its report is readable."""

    batch_id: str
    dataset: dict[str, Any] | None  # the dataset manifest's fields
    quarantine: dict[str, Any] | None  # batch.json
    gate: dict[str, Any] | None  # gate.json
    gate_report_key: str | None

    @property
    def window(self) -> dict[str, str]:
        return (self.dataset or self.quarantine or {}).get("window") or {}

    @property
    def published(self) -> bool:
        return self.dataset is not None

    @property
    def failures(self) -> list[dict[str, Any]]:
        if self.gate is not None:
            return list(self.gate.get("failures") or [])
        source = self.quarantine or (self.dataset or {}).get("gate") or {}
        return list(source.get("failures") or [])

    @property
    def quarantine_reasons(self) -> dict[str, int]:
        """Documents curation dropped, by reason."""
        if self.gate is not None:
            reasons = (self.gate.get("statistics") or {}).get("quarantined_by_reason")
        elif self.quarantine is not None:
            reasons = self.quarantine.get("quarantined_by_curation")
        else:
            reasons = ((self.dataset or {}).get("counts") or {}).get("by_reason")
        return dict(sorted((reasons or {}).items(), key=lambda kv: (-int(kv[1]), kv[0])))

    @property
    def data_docs_uri(self) -> str | None:
        if self.gate is not None and self.gate.get("data_docs_index"):
            return str(self.gate["data_docs_index"])
        source = self.quarantine or (self.dataset or {}).get("gate") or {}
        return source.get("data_docs")

    @property
    def shards(self) -> list[str]:
        if self.quarantine is not None:
            return list(self.quarantine.get("shards") or [])
        return [s["uri"] for s in (self.dataset or {}).get("shards") or []]


def quarantined_batches(store: Store) -> list[dict[str, Any]]:
    """Every quarantined batch's manifest fields with its id, oldest window first."""
    found = []
    for prefix in store.list_published(QUARANTINED_BATCHES + "/"):
        manifest = store.read_manifest(prefix)
        if manifest is not None and manifest.kind == QUARANTINED_BATCH_KIND:
            found.append({"batch_id": manifest.artifact_id, **manifest.fields})
    return sorted(found, key=lambda b: ((b.get("window") or {}).get("start", ""), b["batch_id"]))


def read_batch(store: Store, batch_id: str) -> Batch:
    """The batch ``batch_id``; a 404 naming it when nothing was published or quarantined."""
    check_artifact_id(batch_id, "batch")
    dataset_manifest = store.read_manifest(f"{DATASETS}/{batch_id}")
    quarantine_manifest = store.read_manifest(f"{QUARANTINED_BATCHES}/{batch_id}")
    if dataset_manifest is None and quarantine_manifest is None:
        raise PageError(
            404,
            "No such batch",
            f"No published dataset or quarantined batch {batch_id!r} is in the store.",
        )
    dataset = dict(dataset_manifest.fields) if dataset_manifest is not None else None
    quarantine = None
    if quarantine_manifest is not None:
        quarantine = store.read_json(quarantine_manifest.key(BATCH_RECORD))
    report_uri = ((dataset or {}).get("gate") or {}).get("report") or (quarantine or {}).get(
        "report"
    )
    gate, report_key = None, None
    if report_uri:
        try:
            gate = read_gate_report(store, report_uri)
            report_key = store.prefix_for(report_uri)
        except (ArtifactNotFound, StoreError):
            gate = None  # the verdict's summary in the manifest still shows
    return Batch(batch_id, dataset, quarantine, gate, report_key)


def store_key(store: Store, uri: str | None) -> str | None:
    """The store key of a URI of this store (for the stored-files route), or None."""
    if not uri:
        return None
    try:
        return store.prefix_for(uri)
    except StoreError:
        return None


@router.get("/datasets", name="datasets")
def datasets_page(request: Request, caller: Reader):
    store = store_of(request)
    return render(
        request,
        "datasets.html.j2",
        caller=caller,
        datasets=list(reversed(published_datasets(store))),
        quarantined=list(reversed(quarantined_batches(store))),
    )


@router.get("/datasets/{batch_id}", name="batch")
def batch_page(request: Request, batch_id: str, caller: Reader):
    store = store_of(request)
    batch = read_batch(store, batch_id)
    return render(
        request,
        "batch.html.j2",
        caller=caller,
        batch=batch,
        data_docs_key=store_key(store, batch.data_docs_uri),
    )


def _acceptable(store: Store, batch_id: str) -> Batch:
    batch = read_batch(store, batch_id)
    if batch.quarantine is None:
        raise PageError(
            409, "Not quarantined", f"Batch {batch_id} passed the gate and is published already."
        )
    if batch.published:
        raise PageError(
            409, "Already accepted", f"Batch {batch_id} was accepted and is published already."
        )
    return batch


@router.get("/datasets/{batch_id}/accept", name="accept_form")
def accept_form(request: Request, batch_id: str, caller: AcceptCaller):
    store = store_of(request)
    batch = _acceptable(store, batch_id)
    return render(
        request,
        "accept.html.j2",
        caller=caller,
        batch=batch,
        data_docs_key=store_key(store, batch.data_docs_uri),
    )


@router.post("/datasets/{batch_id}/accept", name="accept")
def accept(
    request: Request,
    batch_id: str,
    caller: AcceptCaller,
    accept_reason: Annotated[str, Form()] = "",
):
    """Rerun ``freshlm_curate`` on the batch's shards and window with ``accept_batch`` and the
    caller's reason, as the caller: the run publishes it and records who accepted it, why."""
    store = store_of(request)
    batch = _acceptable(store, batch_id)
    reason = accept_reason.strip()
    if not reason:
        raise PageError(
            400,
            "A reason is required",
            "accept_reason is empty: say why the batch is safe to publish; it is recorded with "
            "the dataset.",
        )
    if len(reason) > REASON_MAX:
        raise PageError(
            400, "Reason too long", f"accept_reason has {len(reason)} characters; at most 2000."
        )
    conf = {
        "shards": batch.shards,
        "window_start": batch.window.get("start"),
        "window_end": batch.window.get("end"),
        "accept_batch": True,
        "accept_reason": reason,
    }
    run = trigger_of(request)(
        CURATE_DAG, conf, token=caller.token, note=f"Accept batch {batch_id}: {reason}"
    )
    return render(
        request,
        "triggered.html.j2",
        caller=caller,
        title=f"Accepting batch {batch_id}",
        dag_id=CURATE_DAG,
        run=run,
        conf=conf,
    )
