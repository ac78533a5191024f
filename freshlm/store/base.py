"""The abstract artifact store: one interface over the local and S3 backends.

A :class:`Store` holds objects under a root URI (``file:///abs/path`` or ``s3://bucket/prefix``),
addressed by ``/``-separated keys relative to that root (see :mod:`freshlm.store.keys`). Every
stage of FreshLM reads and writes through this interface only, so the same code runs embedded on
a laptop and against S3 at scale; only the root URI differs (DESIGN invariant 6).

Guarantees, on both backends:

* **Writes are atomic per object.** A writer's bytes become visible under the key only when it
  is closed without error; an exception (or a crashed process) leaves the previous object, or
  nothing, in place. Nothing ever reads a half-written object.
* **Streaming.** :meth:`Store.open_read`, :meth:`Store.open_write`, :meth:`Store.read_jsonl` and
  :meth:`Store.write_jsonl` never hold a whole object in memory.
* **Conditional writes** (:meth:`Store.write_bytes` with ``if_match`` / ``if_none_match``) are
  compare-and-swap on the object's ETag: the building block for moving registry aliases.
* **Errors** are :class:`~freshlm.store.errors.StoreError` naming the URI and the cause.

Artifacts (a folder of files plus a manifest written last) are built on top of these in
:mod:`freshlm.store.publish`.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from freshlm.store import jsonl
from freshlm.store.errors import StoreError
from freshlm.store.keys import key_problem, prefix_problem
from freshlm.store.publish import (
    Manifest,
    Publisher,
    delete_artifact,
    list_published,
    open_verified,
    read_manifest,
)


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object without reading it."""

    key: str
    size: int
    etag: str  # opaque; pass it back as ``if_match`` to replace exactly this version


class ObjectWriter(io.RawIOBase):
    """A binary stream that becomes the object ``key`` when closed, and nothing otherwise.

    Use it as a context manager: a clean exit commits, an exception discards. ``close()``
    commits too; a writer that is garbage-collected while open is discarded, never committed.
    While bytes go through, their size and sha256 are counted, so callers (the publisher) know
    both without reading the object back.

    ``before_commit``, if set, is called with the writer just before the bytes are made visible;
    it may raise to refuse the commit (the writer is then discarded) or return False to skip it
    (the bytes are dropped as redundant, e.g. an identical object is already there).
    ``after_close``, if set, is called once the writer is done, whatever the outcome; ``state``
    then says which: ``"committed"``, ``"skipped"`` or ``"discarded"``.
    """

    def __init__(self, uri: str, key: str) -> None:
        super().__init__()
        self.uri = uri
        self.key = key
        self.size = 0
        self.before_commit: Callable[[ObjectWriter], bool] | None = None
        self.after_close: Callable[[ObjectWriter], None] | None = None
        self._hash = hashlib.sha256()
        self._state = "open"  # -> "committed" | "skipped" | "discarded"

    @property
    def state(self) -> str:
        """``"open"``, then ``"committed"``, ``"skipped"`` or ``"discarded"``."""
        return self._state

    @property
    def sha256(self) -> str:
        """Hex sha256 of the bytes written so far."""
        return self._hash.hexdigest()

    # --- what backends implement --------------------------------------------------------------

    @abc.abstractmethod
    def _sink_write(self, data: memoryview) -> None:
        """Append bytes to the backend's private staging area."""

    @abc.abstractmethod
    def _commit_sink(self) -> None:
        """Make the staged bytes visible under ``key`` in one atomic step."""

    @abc.abstractmethod
    def _discard_sink(self) -> None:
        """Drop the staged bytes; must not raise."""

    # --- the stream ---------------------------------------------------------------------------

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._state != "open":
            raise ValueError(f"write to a closed writer for {self.uri}")
        view = memoryview(data).cast("B")
        self._sink_write(view)
        self._hash.update(view)
        self.size += len(view)
        return len(view)

    def close(self) -> None:
        """Commit: make the bytes visible under the key (or skip, see ``before_commit``)."""
        if self._state != "open":
            super().close()
            return
        try:
            if self.before_commit is not None and self.before_commit(self) is False:
                self._discard_sink()
                self._state = "skipped"
            else:
                self._commit_sink()
                self._state = "committed"
        except BaseException:
            self.discard()
            raise
        self._closed()

    def discard(self) -> None:
        """Abandon the write: the object under the key is left as it was."""
        if self._state == "open":
            self._state = "discarded"
            self._discard_sink()
            self._closed()
        super().close()

    def _closed(self) -> None:
        super().close()
        if self.after_close is not None:
            self.after_close(self)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __del__(self) -> None:
        # io.IOBase's finalizer would call close(), i.e. commit a possibly partial object.
        if getattr(self, "_state", None) == "open":
            self.discard()


class Store(abc.ABC):
    """Objects under one root URI. Construct with :func:`freshlm.store.open_store`."""

    #: The root URI, without a trailing slash.
    root_uri: str

    def uri_for(self, key: str) -> str:
        """The full URI of ``key`` (for logs, manifests and Airflow Assets)."""
        return f"{self.root_uri}/{key}"

    def prefix_for(self, uri_or_prefix: str) -> str:
        """The key prefix of an artifact given as a full URI of this store (the inverse of
        :meth:`uri_for`) or already as a prefix; a URI of another store is an error."""
        uri = uri_or_prefix.rstrip("/")
        root = self.root_uri.rstrip("/") + "/"
        if uri.startswith(root):
            return uri[len(root) :]
        if "://" in uri:
            from freshlm.store.errors import StoreError

            raise StoreError(uri, f"not in the store {self.root_uri}")
        return uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root_uri!r})"

    # --- backend primitives: keys arrive validated ---------------------------------------------

    @abc.abstractmethod
    def _open_read(self, key: str) -> BinaryIO: ...

    @abc.abstractmethod
    def _new_writer(self, key: str) -> ObjectWriter: ...

    @abc.abstractmethod
    def _read_bytes_with_etag(self, key: str) -> tuple[bytes, str]: ...

    @abc.abstractmethod
    def _write_bytes(
        self, key: str, data: bytes, if_match: str | None, if_none_match: bool
    ) -> str: ...

    @abc.abstractmethod
    def _stat(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    def _size(self, key: str) -> int | None:
        """The object's size, or None if absent; cheaper than :meth:`_stat` (no ETag)."""

    @abc.abstractmethod
    def _list(self, prefix: str) -> list[str]: ...

    @abc.abstractmethod
    def _delete(self, key: str) -> None: ...

    # --- validation ----------------------------------------------------------------------------

    def _check_key(self, key: str) -> str:
        problem = key_problem(key)
        if problem:
            raise StoreError(f"{self.root_uri}/{key}", f"invalid key {key!r}: {problem}")
        return key

    # --- objects -------------------------------------------------------------------------------

    def open_read(self, key: str) -> BinaryIO:
        """A buffered binary stream of the object; :class:`KeyNotFound` if absent."""
        return self._open_read(self._check_key(key))

    def open_write(self, key: str) -> ObjectWriter:
        """A writer whose bytes replace the object atomically when closed (see ObjectWriter)."""
        return self._new_writer(self._check_key(key))

    def read_bytes(self, key: str) -> bytes:
        """The whole object; for small objects (manifests, cursors, aliases)."""
        return self.read_bytes_with_etag(key)[0]

    def read_bytes_with_etag(self, key: str) -> tuple[bytes, str]:
        """The object and the ETag of exactly that version, read in one request.

        Use it for read-modify-write: pass the ETag back as ``write_bytes(..., if_match=etag)``.
        """
        return self._read_bytes_with_etag(self._check_key(key))

    def write_bytes(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Store ``data`` under ``key`` atomically; return the new object's ETag.

        ``if_match=etag`` writes only if the object currently has that ETag;
        ``if_none_match=True`` writes only if no object exists under the key. Either way the
        check and the write are one atomic step (S3: a conditional PUT; local: under a lock),
        and a refused write raises :class:`PreconditionFailed`. An ``if_match`` on a missing
        object is refused too. As on S3, an unconditional write to the same key is not held
        back by conditional ones: give keys that need compare-and-swap only conditional writers.
        """
        if if_match is not None and if_none_match:
            raise ValueError("pass if_match or if_none_match, not both")
        return self._write_bytes(self._check_key(key), bytes(data), if_match, if_none_match)

    def read_json(self, key: str) -> Any:
        """A small JSON document (cursor, alias); :class:`StoreError` if it is not JSON."""
        data = self.read_bytes(key)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StoreError(self.uri_for(key), f"not valid JSON ({exc})") from None

    def write_json(
        self,
        key: str,
        value: Any,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        """Write ``value`` as canonical JSON (sorted keys) with :meth:`write_bytes` semantics."""
        data = (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
        return self.write_bytes(key, data, if_match=if_match, if_none_match=if_none_match)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under exactly ``key`` (a folder is not an object)."""
        return self._size(self._check_key(key)) is not None

    def stat(self, key: str) -> ObjectInfo | None:
        """Size and ETag of the object, or None if absent.

        The local backend computes the ETag by hashing the file, so this reads it whole.
        """
        return self._stat(self._check_key(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys of all objects whose key starts with ``prefix``, sorted by code point.

        ``prefix`` is a plain string prefix, as in S3: ``"runs/1"`` matches ``runs/1/a`` and
        ``runs/10/a``; use ``"runs/1/"`` for one folder. The listing is taken when called.
        """
        problem = prefix_problem(prefix)
        if problem:
            raise StoreError(f"{self.root_uri}/{prefix}", f"invalid prefix {prefix!r}: {problem}")
        return iter(sorted(self._list(prefix)))

    def delete(self, key: str) -> None:
        """Remove the object; deleting an absent object is not an error."""
        self._delete(self._check_key(key))

    # --- JSON Lines ----------------------------------------------------------------------------

    def write_jsonl(self, key: str, records: Iterable[Mapping[str, Any]]) -> int:
        """Stream ``records`` (dicts) into ``key`` as JSON Lines, gzip if it ends with ``.gz``.

        Returns the record count. Atomic: if ``records`` raises, nothing is written.
        """
        with self.open_write(key) as writer:
            return jsonl.write_records(writer, records, compress=jsonl.is_gzip_key(key))

    def read_artifact_jsonl(self, manifest: Manifest, name: str) -> Iterator[dict[str, Any]]:
        """Stream the records of an artifact's data file, checked against the manifest's size
        and sha256 as they are read: a damaged or swapped file raises :class:`StoreError` by
        its end, so nothing built from it gets published."""
        source = open_verified(self, manifest, name)
        uri = self.uri_for(manifest.key(name))
        return jsonl.read_records(source, compressed=jsonl.is_gzip_key(name), uri=uri)

    def open_artifact_file(self, manifest: Manifest, name: str) -> BinaryIO:
        """A stream of an artifact's data file, checked against the manifest's size and sha256
        as it is read: reading to the end raises :class:`StoreError` naming the file when its
        bytes are not the ones published, so a copy of it is never taken for complete."""
        return open_verified(self, manifest, name)

    def read_jsonl(self, key: str) -> Iterator[dict[str, Any]]:
        """Stream the records of a JSON Lines object (gunzipped if the key ends with ``.gz``).

        Opens the object now (so :class:`KeyNotFound` is raised here), reads it lazily.
        """
        source = self.open_read(key)
        return jsonl.read_records(source, compressed=jsonl.is_gzip_key(key), uri=self.uri_for(key))

    # --- artifacts (see freshlm.store.publish) -------------------------------------------------

    def publisher(
        self,
        prefix: str,
        *,
        kind: str,
        created_by: Mapping[str, Any] | None = None,
        replace: bool = False,
        attempt_names: bool = False,
        keep_together: bool = False,
    ) -> Publisher:
        """Start an atomic publish of the artifact at ``prefix``; use as a context manager.

        ``replace=True`` replaces a published artifact without ever deleting it first;
        ``attempt_names=True`` keeps each attempt's files apart; ``keep_together=True`` keeps
        a replacement's files in one folder (see :class:`Publisher`).
        """
        return Publisher(
            self,
            prefix,
            kind=kind,
            created_by=created_by,
            replace=replace,
            attempt_names=attempt_names,
            keep_together=keep_together,
        )

    def read_manifest(self, prefix: str, *, verify: bool = False) -> Manifest | None:
        """The artifact's manifest, or None if it is not published.

        With ``verify=True`` every file is read back and checked against the manifest's size
        and sha256; a mismatch or missing file raises :class:`StoreError` naming the file.
        """
        return read_manifest(self, prefix, verify=verify)

    def list_published(self, prefix: str = "") -> Iterator[str]:
        """Prefixes of the published artifacts (those with a manifest) under ``prefix``."""
        return list_published(self, prefix)

    def delete_artifact(self, prefix: str) -> None:
        """Unpublish (manifest first, so readers never see a manifest with missing files),
        then delete every object under ``prefix/``, nested artifacts included."""
        delete_artifact(self, prefix)
