"""Rows a model writes once per (model, dataset) before training, published as one JSON-lines
file under their own prefix and read back on every later run (:mod:`training.context_answers`,
:mod:`training.written_questions`), so a night pays for the generation once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)


class Row(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Row)


def read_rows(
    store: Any, prefix: str, kind: str, file_name: str, parse: Callable[[Any, str], R]
) -> list[R] | None:
    """The rows published under ``prefix`` (an artifact of ``kind``), each read by
    ``parse(doc, where)`` (``where`` names the file and row for its error); None when none are
    published yet."""
    from freshlm.artifacts import read_manifest_of_kind

    manifest = read_manifest_of_kind(store, prefix, kind)
    if manifest is None:
        return None
    where = f"{store.uri_for(prefix)}/{file_name}"
    return [
        parse(doc, f"{where} row {n}")
        for n, doc in enumerate(store.read_artifact_jsonl(manifest, file_name), start=1)
    ]


def publish_rows_once(
    store: Any,
    prefix: str,
    kind: str,
    file_name: str,
    parse: Callable[[Any, str], R],
    make: Callable[[], tuple[list[R], Mapping[str, Any]]],
    created_by: Mapping[str, Any],
) -> list[R]:
    """The published rows, else ``make()``'s (the rows and the manifest's fields) published
    now. When another process publishes the same prefix first, its rows win (they were made
    from the same inputs)."""
    from freshlm.store import StoreError

    existing = read_rows(store, prefix, kind, file_name, parse)
    if existing is not None:
        log.info("%s: %d rows, published", store.uri_for(prefix), len(existing))
        return existing
    rows, fields = make()
    try:
        with store.publisher(prefix, kind=kind, created_by=dict(created_by)) as pub:
            pub.write_jsonl(file_name, [r.to_dict() for r in rows])
            pub.set_manifest_fields(**fields)
    except StoreError:
        published = read_rows(store, prefix, kind, file_name, parse)
        if published is None:
            raise
        return published
    return rows
