"""Atomic publish: an artifact is a folder of data files plus ``_MANIFEST.json``, written last.

Readers trust only manifests (DESIGN invariant 2). A publish writes every data file first, each
atomically, and the manifest only after all of them succeeded; a crash or exception anywhere
before that leaves no manifest, so nothing is published. Files of a failed attempt stay behind
unreferenced and are overwritten by the next attempt; they are deliberately not deleted, since a
concurrent publisher of the same artifact may already be counting on them.

Published artifacts are immutable. Publishing the same artifact again with identical files is
idempotent: identical files are not re-uploaded and the manifest comes out byte-identical, so a
re-run task produces the same artifact (DESIGN invariant 1; nothing in a manifest depends on the
clock). A re-publish whose files differ is refused with :class:`StoreError` before the differing
file replaces the published one; to replace it on purpose, publish with ``replace=True``: the
new files are written beside the old ones and the manifest is swapped in one step, so the
artifact is never missing, and a replacement that fails leaves the old one as it was.

Usage::

    with store.publisher("datasets/3f9a…", kind="dataset", created_by={"dag_id": …}) as pub:
        pub.write_jsonl("part-0000.jsonl.gz", records)
        pub.set_manifest_fields(counts={"documents": 1200})
    pub.manifest.files            # what was published

    manifest = store.read_manifest("datasets/3f9a…", verify=True)
    for record in store.read_jsonl(manifest.key("part-0000.jsonl.gz")): …
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from freshlm.store import jsonl
from freshlm.store.errors import KeyNotFound, PreconditionFailed, StoreError
from freshlm.store.keys import key_problem

if TYPE_CHECKING:
    from freshlm.store.base import ObjectWriter, Store

MANIFEST_NAME = "_MANIFEST.json"
# Files of a replacement, or of an attempt-named publish, live under _attempts/<attempt id>/.
ATTEMPTS_DIR = "_attempts"
SCHEMA_VERSION = 1
_HASH_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One data file of an artifact: its name relative to the artifact, size and sha256.

    ``stored`` is where its bytes live relative to the artifact when that is not ``name``
    (files of a replacement or of an attempt-named publish live under ``_attempts/<id>/``).
    """

    name: str
    size: int
    sha256: str
    stored: str | None = None

    @property
    def object_name(self) -> str:
        return self.stored or self.name

    def same_content(self, other: FileEntry) -> bool:
        return (self.name, self.size, self.sha256) == (other.name, other.size, other.sha256)


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The record that makes an artifact published.

    ``prefix`` is the artifact's key prefix in the store, ``artifact_id`` its last segment,
    ``kind`` what it is ("dataset", "raw-shard", "model", …). ``content_sha256`` hashes the
    sorted (name, size, sha256) list, so it identifies the data independently of metadata.
    ``created_by`` and ``fields`` are the caller's JSON metadata (lineage, counts, …).
    """

    prefix: str
    kind: str
    files: tuple[FileEntry, ...]
    created_by: Mapping[str, Any]
    fields: Mapping[str, Any]
    schema_version: int = SCHEMA_VERSION

    @property
    def artifact_id(self) -> str:
        return self.prefix.rsplit("/", 1)[-1]

    @property
    def content_sha256(self) -> str:
        return content_sha256(self.files)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def key(self, name: str) -> str:
        """The store key of the data file ``name`` (for ``store.open_read`` & co.)."""
        return f"{self.prefix}/{self.file(name).object_name}"

    def file(self, name: str) -> FileEntry:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise KeyError(f"{self.prefix} has no file {name!r}")

    def to_json_bytes(self) -> bytes:
        """Canonical JSON: sorted keys, so equal manifests are byte-identical."""
        document = {
            "schema_version": self.schema_version,
            "kind": self.kind,
            "artifact_id": self.artifact_id,
            "prefix": self.prefix,
            "files": [_entry_json(f) for f in self.files],
            "file_count": len(self.files),
            "total_size": self.total_size,
            "content_sha256": self.content_sha256,
            "created_by": dict(self.created_by),
            "fields": dict(self.fields),
        }
        return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_json_bytes(cls, data: bytes, uri: str) -> Manifest:
        """Parse a manifest; :class:`StoreError` naming ``uri`` if it is not a valid one."""
        try:
            doc = json.loads(data)
            version = doc["schema_version"]
            if version != SCHEMA_VERSION:
                raise StoreError(
                    uri,
                    f"manifest schema_version {version!r} is not supported "
                    f"(this FreshLM reads {SCHEMA_VERSION})",
                )
            manifest = cls(
                prefix=str(doc["prefix"]),
                kind=str(doc["kind"]),
                files=tuple(
                    FileEntry(
                        name=str(f["name"]),
                        size=int(f["size"]),
                        sha256=str(f["sha256"]),
                        stored=str(f["stored"]) if f.get("stored") is not None else None,
                    )
                    for f in doc["files"]
                ),
                created_by=dict(doc["created_by"]),
                fields=dict(doc["fields"]),
            )
        except StoreError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(uri, f"not a valid manifest ({type(exc).__name__}: {exc})") from None
        if doc.get("content_sha256") != manifest.content_sha256:
            raise StoreError(uri, "manifest content_sha256 does not match its file list")
        _check_names(manifest, uri)
        return manifest


def _entry_json(entry: FileEntry) -> dict[str, Any]:
    data = {"name": entry.name, "size": entry.size, "sha256": entry.sha256}
    if entry.stored is not None:
        data["stored"] = entry.stored
    return data


def _check_names(manifest: Manifest, uri: str) -> None:
    """Every name in a manifest obeys the key rules, before any reader builds a path from it:
    a manifest from a tampered store must not make a download write outside its folder."""
    problem = key_problem(manifest.prefix)
    if problem:
        raise StoreError(uri, f"manifest prefix {manifest.prefix!r} is not a valid key: {problem}")
    seen: set[str] = set()
    for entry in manifest.files:
        for what, name in (("file name", entry.name), ("stored name", entry.stored)):
            if name is None:
                continue
            problem = key_problem(name) or (
                "reserved for the manifest" if name == MANIFEST_NAME else None
            )
            if problem:
                raise StoreError(uri, f"manifest {what} {name!r} is not valid: {problem}")
        if entry.name in seen:
            raise StoreError(uri, f"manifest lists the file {entry.name!r} twice")
        seen.add(entry.name)


def content_sha256(files: Iterable[FileEntry]) -> str:
    """Hash of the (name, size, sha256) triples in name order: the artifact's content id."""
    canonical = json.dumps(
        [[f.name, f.size, f.sha256] for f in sorted(files, key=lambda f: f.name)],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def manifest_key(prefix: str) -> str:
    return f"{prefix}/{MANIFEST_NAME}"


def _check_json(value: Any, what: str) -> dict[str, Any]:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable: {exc}") from None
    return dict(value)


class Publisher:
    """Writes one artifact's data files, then its manifest. Use via ``store.publisher(...)``.

    Inside the ``with`` block write files with :meth:`open_write`, :meth:`write_bytes` or
    :meth:`write_jsonl` and add manifest metadata with :meth:`set_manifest_fields`. A clean
    exit writes the manifest and sets :attr:`manifest`; an exception writes no manifest.

    The first manifest is written only if none exists (``If-None-Match``): of two publishers
    of one prefix, one wins, and the other succeeds only if it published the same files.
    ``attempt_names=True`` stores each attempt's files under ``_attempts/<id>/`` (readers find
    them through the manifest), so a concurrent publisher can never overwrite the bytes a
    published manifest names. ``replace=True`` replaces a published artifact without a moment
    where it is missing: the new files go under a new attempt folder, the manifest is swapped
    in one compare-and-swap on the old one, and only then are the old files deleted.
    A replacement reuses published files whose content is unchanged, unless ``keep_together``:
    then every file lives in the new attempt's folder, so files that link to each other by
    relative paths (a Data Docs site) stay side by side; :meth:`stored_key` says where.
    """

    def __init__(
        self,
        store: Store,
        prefix: str,
        *,
        kind: str,
        created_by: Mapping[str, Any] | None = None,
        replace: bool = False,
        attempt_names: bool = False,
        keep_together: bool = False,
    ) -> None:
        problem = key_problem(prefix)
        if problem:
            raise StoreError(f"{store.root_uri}/{prefix}", f"invalid artifact prefix: {problem}")
        if not isinstance(kind, str) or not kind:
            raise ValueError("kind must be a non-empty string such as 'dataset' or 'model'")
        self.store = store
        self.prefix = prefix
        self.kind = kind
        self.created_by = _check_json(created_by or {}, "created_by")
        self.manifest: Manifest | None = None
        self._fields: dict[str, Any] = {}
        self._files: dict[str, FileEntry] = {}
        self._pending: set[str] = set()
        self._published: Manifest | None = None
        self._published_etag: str | None = None
        self._stored: dict[str, str | None] = {}
        self.replace = replace
        self.attempt_names = attempt_names
        self.keep_together = keep_together
        self._attempt = uuid.uuid4().hex[:16]
        self._entered = False

    @property
    def uri(self) -> str:
        return self.store.uri_for(self.prefix)

    def __enter__(self) -> Publisher:
        self._published, self._published_etag = _read_manifest_with_etag(self.store, self.prefix)
        self._entered = True
        return self

    def _object_name(self, name: str) -> str | None:
        """Where a new file's bytes go, relative to the artifact (None: under its own name)."""
        if self.attempt_names or (self.replace and self._published is not None):
            return f"{ATTEMPTS_DIR}/{self._attempt}/{name}"
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        self._entered = False
        if exc_type is None:
            self.manifest = self._write_manifest()

    # --- data files ----------------------------------------------------------------------------

    def open_write(self, name: str) -> ObjectWriter:
        """A writer for the data file ``name`` (relative to the artifact, may contain ``/``)."""
        if not self._entered:
            raise RuntimeError("use the publisher as a context manager: with store.publisher(…)")
        problem = key_problem(name)
        if problem or name == MANIFEST_NAME:
            raise StoreError(
                self.store.uri_for(f"{self.prefix}/{name}"),
                f"invalid file name {name!r}: {problem or 'reserved for the manifest'}",
            )
        if name in self._files or name in self._pending:
            raise StoreError(self.store.uri_for(f"{self.prefix}/{name}"), "written twice")
        self._pending.add(name)
        stored = self._object_name(name)
        self._stored[name] = stored
        writer = self.store.open_write(f"{self.prefix}/{stored or name}")
        writer.before_commit = lambda w: self._before_commit(name, w)
        writer.after_close = lambda w: self._after_close(name, w)
        return writer

    def write_bytes(self, name: str, data: bytes) -> FileEntry:
        with self.open_write(name) as writer:
            writer.write(data)
        return self._files[name]

    def write_jsonl(self, name: str, records: Iterable[Mapping[str, Any]]) -> int:
        """Stream records into ``name`` (gzip if it ends with ``.gz``); return the count."""
        with self.open_write(name) as writer:
            return jsonl.write_records(writer, records, compress=jsonl.is_gzip_key(name))

    def stored_key(self, name: str) -> str:
        """The store key holding the bytes of the data file ``name`` this publisher wrote (in
        the attempt's folder when it replaces an artifact), for links written into the artifact
        before its manifest exists."""
        entry = self._files.get(name)
        if entry is None:
            raise StoreError(
                self.store.uri_for(f"{self.prefix}/{name}"), "not written by this publisher yet"
            )
        return f"{self.prefix}/{entry.object_name}"

    def set_manifest_fields(self, **fields: Any) -> None:
        """Add JSON metadata (counts, lineage, …) to the manifest's ``fields``; later wins."""
        self._fields.update(_check_json(fields, "manifest fields"))

    def _before_commit(self, name: str, writer: ObjectWriter) -> bool:
        if self._published is None:
            return True
        entry = FileEntry(name=name, size=writer.size, sha256=writer.sha256)
        old = next((f for f in self._published.files if f.name == name), None)
        if old is not None and old.same_content(entry) and not self.keep_together:
            # Identical content is already published: reuse it (no re-upload) if it is there.
            if self.store._size(f"{self.prefix}/{old.object_name}") == entry.size:
                self._stored[name] = old.stored
                return False
            return True
        if self.replace:
            return True
        why = "without this file" if old is None else "with different content for this file"
        raise StoreError(
            writer.uri,
            f"artifact {self.prefix!r} is already published {why}; published artifacts "
            "are immutable (publish under a new id, or replace=True)",
        )

    def _after_close(self, name: str, writer: ObjectWriter) -> None:
        # Only files that are really in the store may enter the manifest; a discarded one may
        # be written again (e.g. the caller caught the error and retried).
        self._pending.discard(name)
        if writer.state in ("committed", "skipped"):
            self._files[name] = FileEntry(
                name=name, size=writer.size, sha256=writer.sha256, stored=self._stored.get(name)
            )

    def _write_manifest(self) -> Manifest:
        if self._pending:
            raise StoreError(
                self.uri, f"files still open at publish: {sorted(self._pending)}; close them first"
            )
        manifest = Manifest(
            prefix=self.prefix,
            kind=self.kind,
            files=tuple(sorted(self._files.values(), key=lambda f: f.name)),
            created_by=self.created_by,
            fields=self._fields,
        )
        key = manifest_key(self.prefix)
        if self._published is None:
            # The single step that publishes: everything above is invisible to readers until
            # now. Conditional, so a publisher that raced this one is never overwritten.
            try:
                self.store.write_bytes(key, manifest.to_json_bytes(), if_none_match=True)
            except PreconditionFailed:
                winner = read_manifest(self.store, self.prefix)
                if winner is not None and _same_files(winner, manifest):
                    return winner  # the same artifact, published by the other attempt
                raise StoreError(
                    self.uri,
                    "another publisher published this artifact at the same time with different "
                    "files; published artifacts are immutable (this attempt's files are unused)",
                ) from None
            return manifest
        if self._published.to_json_bytes() == manifest.to_json_bytes():
            return manifest  # fully idempotent: nothing to write
        if self.replace:
            return self._swap(manifest)
        if not _same_files(self._published, manifest):
            raise StoreError(
                self.uri,
                "already published with a different file set; published artifacts are "
                "immutable (publish under a new id, or replace=True)",
            )
        self.store.write_bytes(key, manifest.to_json_bytes())
        return manifest

    def _swap(self, manifest: Manifest) -> Manifest:
        """Replace the published manifest by ``manifest`` in one compare-and-swap, then delete
        the old files no longer named: the artifact is never missing nor half old, half new."""
        assert self._published is not None
        try:
            self.store.write_bytes(
                manifest_key(self.prefix), manifest.to_json_bytes(), if_match=self._published_etag
            )
        except PreconditionFailed:
            raise StoreError(
                self.uri, "changed by another publisher while being replaced; nothing replaced"
            ) from None
        kept = {f.object_name for f in manifest.files}
        for old in self._published.files:
            if old.object_name not in kept:
                self.store.delete(f"{self.prefix}/{old.object_name}")
        return manifest


def _same_files(a: Manifest, b: Manifest) -> bool:
    """Whether two manifests name the same contents (where the bytes are stored aside)."""
    return [(f.name, f.size, f.sha256) for f in a.files] == [
        (f.name, f.size, f.sha256) for f in b.files
    ]


def _read_manifest_with_etag(store: Store, prefix: str) -> tuple[Manifest | None, str | None]:
    key = manifest_key(prefix)
    try:
        data, etag = store.read_bytes_with_etag(key)
    except KeyNotFound:
        return None, None
    manifest = Manifest.from_json_bytes(data, store.uri_for(key))
    if manifest.prefix != prefix:
        raise StoreError(
            store.uri_for(key), f"manifest names prefix {manifest.prefix!r}, not {prefix!r}"
        )
    return manifest, etag


def read_manifest(store: Store, prefix: str, *, verify: bool = False) -> Manifest | None:
    """See :meth:`Store.read_manifest`."""
    key = manifest_key(prefix)
    try:
        data = store.read_bytes(key)
    except KeyNotFound:
        return None
    manifest = Manifest.from_json_bytes(data, store.uri_for(key))
    if manifest.prefix != prefix:
        raise StoreError(
            store.uri_for(key), f"manifest names prefix {manifest.prefix!r}, not {prefix!r}"
        )
    if verify:
        for entry in manifest.files:
            _verify_file(store, f"{prefix}/{entry.object_name}", entry)
    return manifest


class VerifyingReader(io.RawIOBase):
    """A data file's stream that checks size and sha256 against the manifest as it is read:
    reading to the end raises :class:`StoreError` naming the file if the bytes are not the ones
    the manifest published (a file replaced, truncated or damaged in the store)."""

    def __init__(self, source: BinaryIO, entry: FileEntry, uri: str) -> None:
        super().__init__()
        self._source = source
        self._entry = entry
        self._uri = uri
        self._digest = hashlib.sha256()
        self._size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self._source.read(len(view))
        if not chunk:
            self._check()
            return 0
        view[: len(chunk)] = chunk
        self._digest.update(chunk)
        self._size += len(chunk)
        return len(chunk)

    def _check(self) -> None:
        if self._size != self._entry.size or self._digest.hexdigest() != self._entry.sha256:
            raise StoreError(
                self._uri,
                f"does not match the manifest (manifest: {self._entry.size} bytes sha256 "
                f"{self._entry.sha256}; stored: {self._size} bytes sha256 "
                f"{self._digest.hexdigest()})",
            )

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


def open_verified(store: Store, manifest: Manifest, name: str) -> BinaryIO:
    """A buffered stream of the data file ``name`` that is verified as it is read."""
    entry = manifest.file(name)
    key = manifest.key(name)
    raw = VerifyingReader(store.open_read(key), entry, store.uri_for(key))
    return io.BufferedReader(raw, buffer_size=_HASH_CHUNK)  # type: ignore[return-value]


def _size_and_sha256(stream: BinaryIO) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def matches_entry(stream: BinaryIO, entry: FileEntry) -> bool:
    """Whether ``stream``, read to its end, holds the bytes ``entry`` published (size and
    sha256): for copies kept outside the store, such as a training job's local downloads."""
    return _size_and_sha256(stream) == (entry.size, entry.sha256)


def _verify_file(store: Store, key: str, entry: FileEntry) -> None:
    try:
        with store.open_read(key) as stream:
            size, sha256 = _size_and_sha256(stream)
    except KeyNotFound:
        raise StoreError(store.uri_for(key), "listed in the manifest but missing") from None
    if (size, sha256) != (entry.size, entry.sha256):
        raise StoreError(
            store.uri_for(key),
            f"does not match the manifest (manifest: {entry.size} bytes sha256 {entry.sha256}; "
            f"stored: {size} bytes sha256 {sha256})",
        )


def list_published(store: Store, prefix: str = "") -> Iterator[str]:
    """See :meth:`Store.list_published`."""
    suffix = "/" + MANIFEST_NAME
    return iter([key[: -len(suffix)] for key in store.list(prefix) if key.endswith(suffix)])


def delete_artifact(store: Store, prefix: str) -> None:
    """See :meth:`Store.delete_artifact`."""
    store.delete(manifest_key(prefix))
    for key in store.list(prefix + "/"):
        store.delete(key)
