"""The registry's "trained on forgotten data" mark on model versions.

When data a version was trained on is forgotten on request (``freshlm_forget``), the version
cannot be untrained: it is marked instead, in two places that say the same thing:

* ``registry/forgotten/<version_id>/<request_id>.json`` — one immutable record per request
  (who asked, when, why), written ``if_none_match``: the registry's own record;
* the version's manifest field ``forgotten_data`` and its model card, which gains a notice
  under its title. The version is republished at its own prefix with the new card (its id
  does not cover the card; the weights are reused, not re-uploaded), the manifest swapped in
  one compare-and-swap, so readers see the old card or the new one, never neither.

Marking again with the same request changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from freshlm.registry.model_card import with_forgotten_banner
from freshlm.registry.versions import CARD_NAME, MODEL_KIND, get_version, version_prefix
from freshlm.store import PreconditionFailed, Store

log = logging.getLogger(__name__)

FORGOTTEN_PREFIX = "registry/forgotten"
_FIELDS = ("request_id", "requested_at", "actor", "reason")
_CHUNK = 1 << 20


def _record_key(version_id: str, request_id: str) -> str:
    return f"{FORGOTTEN_PREFIX}/{version_id}/{request_id}.json"


def forgotten_marks(store: Store, version_id: str) -> list[dict[str, Any]]:
    """The forget requests whose data ``version_id`` was trained on, oldest first."""
    prefix = f"{FORGOTTEN_PREFIX}/{version_prefix(version_id).split('/')[-1]}/"
    marks = [store.read_json(key) for key in store.list(prefix) if key.endswith(".json")]
    return sorted(marks, key=lambda m: (m.get("requested_at") or "", m.get("request_id") or ""))


def mark_trained_on_forgotten_data(
    store: Store, version_id: str, request: Mapping[str, Any]
) -> bool:
    """Mark ``version_id`` as trained on the data of forget ``request`` (its ``request_id``,
    ``requested_at``, ``actor`` and ``reason``); True when this call changed the version."""
    missing = [k for k in _FIELDS if not request.get(k)]
    if missing:
        raise ValueError(f"a forget request needs {', '.join(missing)} to mark a version")
    version = get_version(store, version_id)  # VersionNotFound names the id
    record = {k: request[k] for k in _FIELDS}
    record["version_id"] = version_id
    # Already there: recorded by an earlier attempt; the card below may still need its notice.
    with contextlib.suppress(PreconditionFailed):
        store.write_json(_record_key(version_id, record["request_id"]), record, if_none_match=True)
    marks = forgotten_marks(store, version_id)
    listed = version.manifest.fields.get("forgotten_data") or []
    if [m["request_id"] for m in listed] == [m["request_id"] for m in marks]:
        return False
    _republish_with_card(store, version, marks)
    log.info(
        "model version %s marked: trained on data forgotten by %d request(s)",
        version_id,
        len(marks),
    )
    return True


def _republish_with_card(store: Store, version: Any, marks: list[dict[str, Any]]) -> None:
    manifest = version.manifest
    card = store.read_bytes(manifest.key(CARD_NAME)).decode("utf-8")
    created_by = {**dict(manifest.created_by), "marked_by": "freshlm.registry.forgotten"}
    with store.publisher(
        manifest.prefix, kind=MODEL_KIND, created_by=created_by, replace=True
    ) as pub:
        for entry in manifest.files:
            if entry.name == CARD_NAME:
                continue
            # Identical bytes: the publisher keeps the stored object instead of uploading.
            with store.open_read(manifest.key(entry.name)) as src, pub.open_write(entry.name) as w:
                while chunk := src.read(_CHUNK):
                    w.write(chunk)
        pub.write_bytes(CARD_NAME, with_forgotten_banner(card, marks).encode("utf-8"))
        fields = json.loads(json.dumps(dict(manifest.fields)))
        fields["forgotten_data"] = [{k: m[k] for k in _FIELDS} for m in marks]
        pub.set_manifest_fields(**fields)
