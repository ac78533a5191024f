"""Items forgotten on request, and the deny list that keeps crawls from collecting them again.

An item is named the way a person asking to be forgotten names it (:class:`Target`):

* ``url`` — the document's address (``https://…``); scheme and host case, a trailing ``/`` and
  a ``#fragment`` do not matter;
* ``document_id`` — FreshLM's stable id of the document (32 hex, :func:`freshlm.records.record_id`);
* ``author`` — an author handle or byline: ``@mira@tessford.social`` (the leading ``@`` and the
  case do not matter) or ``Dana Whitfield``; every document by that author matches.

:meth:`Target.matches` decides for a raw record, a curated document or a crawler quarantine
item (which has a ``url`` and the raw bytes: an author handle in them matches too).

The deny list is one JSON object in the store (``forget/deny-list.json``), changed only by
compare-and-swap so two forget requests never drop each other's entry. The crawlers read it
once per crawl (:func:`read_deny_list`) and skip what it names.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from freshlm.artifacts import DENY_LIST
from freshlm.store import KeyNotFound, PreconditionFailed, Store, StoreError

KINDS = ("url", "document_id", "author")
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_HANDLE_RE = re.compile(r"@?[A-Za-z0-9_.]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_CAS_ATTEMPTS = 20


class TargetError(ValueError):
    """What to forget is not named in a form FreshLM knows; the message says what is."""


def normalize_url(url: str) -> str:
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or ""
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def normalize_author(author: str) -> str:
    return " ".join(author.strip().lstrip("@").split()).casefold()


@dataclasses.dataclass(frozen=True)
class Target:
    """One item to forget: ``kind`` (url, document_id, author) and its normalized ``value``."""

    kind: str
    value: str

    @classmethod
    def parse(cls, value: object, kind: str = "auto") -> Target:
        """The target named by ``value``; ``kind`` ``auto`` tells it from the value's form.
        :class:`TargetError` says what was wrong and what is accepted."""
        if not isinstance(value, str) or not value.strip():
            raise TargetError(
                "item: give a URL (https://…), a document id (32 hex) or an author handle "
                "(@user@instance or a byline); it was empty"
            )
        if len(value) > 2000:
            raise TargetError(f"item: {len(value)} characters; at most 2000")
        value = value.strip()
        if kind == "auto":
            if value.lower().startswith(("http://", "https://")):
                kind = "url"
            elif _ID_RE.match(value.lower()):
                kind = "document_id"
            else:
                kind = "author"
        if kind == "url":
            parts = urlsplit(value)
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise TargetError(f"item {value!r}: not an http(s) URL with a host")
            return cls("url", normalize_url(value))
        if kind == "document_id":
            if not _ID_RE.match(value.lower()):
                raise TargetError(
                    f"item {value!r}: a document id is 32 hexadecimal characters (the `id` "
                    "of a raw record or curated document)"
                )
            return cls("document_id", value.lower())
        if kind == "author":
            if "://" in value:
                raise TargetError(f"item {value!r}: looks like a URL; forget it with item_kind url")
            return cls("author", normalize_author(value))
        raise TargetError(f"item_kind {kind!r}: expected one of auto, {', '.join(KINDS)}")

    @property
    def key(self) -> str:
        """The lineage index key this target is found under (see :func:`record_keys`)."""
        return f"{self.kind}:{self.value}"

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether a raw record, curated document or crawler quarantine item is this item."""
        return self.key in record_keys(record)

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value}


def record_keys(record: Mapping[str, Any]) -> set[str]:
    """Every ``kind:value`` a record can be forgotten by: its id, URL and author, and for a
    crawler quarantine item (no id) the handles in its raw bytes."""
    keys = set()
    if isinstance(record.get("id"), str):
        keys.add(f"document_id:{record['id'].lower()}")
    if isinstance(record.get("url"), str) and record["url"]:
        keys.add(f"url:{normalize_url(record['url'])}")
    if isinstance(record.get("author"), str) and record["author"].strip():
        keys.add(f"author:{normalize_author(record['author'])}")
    if isinstance(record.get("raw"), str):
        keys.update(f"author:{normalize_author(h)}" for h in _HANDLE_RE.findall(record["raw"]))
    return keys


@dataclasses.dataclass(frozen=True)
class DenyList:
    """The forgotten items; :meth:`denies` tells whether a record is one of them."""

    entries: tuple[Mapping[str, Any], ...] = ()

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(f"{e['kind']}:{e['value']}" for e in self.entries)

    def denies(self, record: Mapping[str, Any]) -> bool:
        keys = self.keys
        return bool(keys) and not keys.isdisjoint(record_keys(record))

    def __len__(self) -> int:
        return len(self.entries)


def _parse(data: bytes, uri: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(data)
        entries = [dict(e) for e in doc["entries"]]
        for entry in entries:
            if entry["kind"] not in KINDS or not isinstance(entry["value"], str):
                raise ValueError(f"bad entry {entry!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            uri, f"not a valid deny list ({exc}); restore it from audit/forget/"
        ) from None
    return entries


def read_deny_list(store: Store) -> DenyList:
    """The deny list (empty when nothing was ever forgotten)."""
    try:
        data = store.read_bytes(DENY_LIST)
    except KeyNotFound:
        return DenyList()
    return DenyList(tuple(_parse(data, store.uri_for(DENY_LIST))))


def add_to_deny_list(store: Store, targets: Iterable[Target], request_id: str) -> DenyList:
    """Add ``targets`` (idempotent), by compare-and-swap; the deny list after the change."""
    wanted = list(targets)
    for _ in range(_CAS_ATTEMPTS):
        try:
            data, etag = store.read_bytes_with_etag(DENY_LIST)
            entries = _parse(data, store.uri_for(DENY_LIST))
        except KeyNotFound:
            entries, etag = [], None
        present = {f"{e['kind']}:{e['value']}" for e in entries}
        added = [{**t.to_dict(), "request_id": request_id} for t in wanted if t.key not in present]
        if not added:
            return DenyList(tuple(entries))
        entries += added
        body = (json.dumps({"entries": entries}, indent=2, sort_keys=True) + "\n").encode()
        try:
            if etag is None:
                store.write_bytes(DENY_LIST, body, if_none_match=True)
            else:
                store.write_bytes(DENY_LIST, body, if_match=etag)
        except PreconditionFailed:
            continue  # another request changed it first: re-read and merge
        return DenyList(tuple(entries))
    raise StoreError(store.uri_for(DENY_LIST), "changed by others on every attempt; try again")
