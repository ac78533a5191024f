"""Stored files: a published artifact's file served from the store over HTTP(S), so Data Docs,
evaluation reports and model cards are links a person can open on any backend (S3 or local).

``files/<key>`` serves the object ``key`` only when it is a data file of a published artifact
(one with a manifest) under one of :data:`SERVED_ROOTS`, named either by its name in the
artifact or by where it is stored (``_attempts/<id>/…``); its bytes are checked against the
manifest before they are sent. Anything else — a key that is not a valid store key (``..``,
``//``), an unpublished object, a manifest itself, model weights — is a 404 naming the key.

Stored HTML runs in a sandbox (``Content-Security-Policy: sandbox``): a Data Docs page's
scripts get an opaque origin, so they cannot act as the logged-in user on Airflow's site.
Route: :func:`freshlm.alerts.links.store_file_url`.
"""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import Response

from freshlm.artifacts import DATASETS, GATE_REPORTS, MODELS, QUARANTINED_BATCHES, REPORTS
from freshlm.console.auth import Reader
from freshlm.console.context import store_of
from freshlm.console.rendering import PageError
from freshlm.registry.versions import WEIGHT_SUFFIXES
from freshlm.store import FileEntry, Manifest, Store, StoreError
from freshlm.store.keys import key_problem
from freshlm.store.publish import open_verified

#: Store prefixes whose published artifacts' files are served.
SERVED_ROOTS = (GATE_REPORTS, REPORTS, MODELS, DATASETS, QUARANTINED_BATCHES)
#: Larger files are not served through the API server (datasets' documents, weights).
MAX_BYTES = 64 * 1024 * 1024
_TYPES = {".jsonl": "application/x-ndjson", ".gz": "application/gzip", ".md": "text/markdown"}

router = APIRouter()


def _not_found(key: str, why: str) -> PageError:
    return PageError(404, "No such stored file", f"{key!r}: {why}.")


def find_published_file(store: Store, key: str) -> tuple[Manifest, FileEntry]:
    """The published artifact holding ``key`` and the file's manifest entry; a 404 naming
    the key and why otherwise."""
    problem = key_problem(key)
    if problem is not None:
        raise _not_found(key, problem)
    segments = key.split("/")
    if not any(key.startswith(root + "/") for root in SERVED_ROOTS):
        raise _not_found(key, f"only files under {', '.join(SERVED_ROOTS)} are served")
    for cut in range(len(segments) - 1, 0, -1):
        prefix, rest = "/".join(segments[:cut]), "/".join(segments[cut:])
        try:
            manifest = store.read_manifest(prefix)
        except StoreError:
            continue
        if manifest is None:
            continue
        for entry in manifest.files:
            if rest in (entry.name, entry.object_name):
                return manifest, entry
        raise _not_found(key, f"the published artifact {prefix} has no such file")
    raise _not_found(key, "no published artifact holds it")


def content_type(name: str) -> str:
    for suffix, kind in _TYPES.items():
        if name.endswith(suffix):
            return kind
    guessed, _ = mimetypes.guess_type(name)
    if guessed and (guessed.startswith("text/") or guessed.endswith(("json", "javascript"))):
        return f"{guessed}; charset=utf-8"
    return guessed or "application/octet-stream"


@router.get("/files/{key:path}", name="store_file")
def stored_file(request: Request, key: str, caller: Reader):
    store = store_of(request)
    manifest, entry = find_published_file(store, key)
    if manifest.kind == "model" and entry.name.endswith(WEIGHT_SUFFIXES):
        raise _not_found(key, "model weights are not served here; download the version instead")
    if entry.size > MAX_BYTES:
        raise _not_found(key, f"{entry.size} bytes is over the {MAX_BYTES}-byte limit")
    try:
        with open_verified(store, manifest, entry.name) as stream:
            data = stream.read()
    except StoreError as exc:
        raise PageError(502, "Stored file damaged", str(exc)) from None
    return Response(
        data,
        media_type=content_type(entry.name),
        headers={
            "Content-Security-Policy": "sandbox allow-scripts allow-popups",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=300",
        },
    )
