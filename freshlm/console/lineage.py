"""Lineage: a model version → its training set → the datasets trained on → their raw shards →
the crawl windows and sources, and up the chain of versions it was fine-tuned from.

Built from the manifests' lineage fields: the version's ``lineage`` and ``trainset`` (the mix
of new and replayed datasets), :func:`freshlm.lineage_index.datasets_used` for every dataset a
version was built on, and each dataset's ``shards``. Route: ``lineage_url``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request

from freshlm.artifacts import DATASETS
from freshlm.console.auth import Reader
from freshlm.console.context import store_of
from freshlm.console.models import version_or_404
from freshlm.console.rendering import render
from freshlm.lineage_index import datasets_used
from freshlm.registry import ModelVersion, VersionNotFound, get_version
from freshlm.store import Store

#: How far up the fine-tuning chain the page follows.
MAX_ANCESTORS = 50

router = APIRouter()


@dataclasses.dataclass(frozen=True)
class DatasetNode:
    """A dataset a version was built on: its role in the mix, window and raw shards."""

    dataset_id: str
    role: str | None
    fields: dict[str, Any] | None  # None: no longer published (forgotten or expired)

    @property
    def window(self) -> dict[str, str]:
        return (self.fields or {}).get("window") or {}

    @property
    def shards(self) -> list[dict[str, Any]]:
        return list((self.fields or {}).get("shards") or [])


@dataclasses.dataclass(frozen=True)
class VersionNode:
    version: ModelVersion
    trainset: dict[str, Any] | None
    datasets: list[DatasetNode]

    @property
    def sources(self) -> list[str]:
        return sorted({str(s.get("source")) for d in self.datasets for s in d.shards})

    @property
    def crawl_windows(self) -> list[dict[str, Any]]:
        return [dict(w) for w in self.version.lineage.crawl_windows]


def version_node(store: Store, version: ModelVersion) -> VersionNode:
    trainset = version.manifest.fields.get("trainset")
    roles = {str(m["dataset_id"]): m.get("role") for m in (trainset or {}).get("mix") or []}
    nodes = []
    for dataset_id in sorted(set(datasets_used(version.manifest)) | set(roles)):
        manifest = store.read_manifest(f"{DATASETS}/{dataset_id}")
        fields = dict(manifest.fields) if manifest is not None else None
        nodes.append(DatasetNode(dataset_id, roles.get(dataset_id), fields))
    # The night's new data first, then replay, each oldest window first.
    nodes.sort(key=lambda d: (d.role != "new", d.window.get("start", ""), d.dataset_id))
    return VersionNode(version, trainset, nodes)


def ancestors(store: Store, version: ModelVersion) -> list[ModelVersion | str]:
    """The versions ``version`` was fine-tuned from, nearest first; an id that is no longer
    in the registry ends the chain as a string."""
    chain: list[ModelVersion | str] = []
    parent = version.lineage.parent_version
    while parent and len(chain) < MAX_ANCESTORS:
        try:
            found = get_version(store, parent)
        except VersionNotFound:
            chain.append(parent)
            break
        chain.append(found)
        parent = found.lineage.parent_version
    return chain


@router.get("/lineage/{version_id}", name="lineage")
def lineage_page(request: Request, version_id: str, caller: Reader):
    store = store_of(request)
    version = version_or_404(store, version_id)
    return render(
        request,
        "lineage.html.j2",
        caller=caller,
        node=version_node(store, version),
        ancestors=ancestors(store, version),
    )
