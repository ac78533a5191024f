"""The embedded backend: objects are files under a local directory (``file:///abs/path``).

Atomicity comes from the filesystem: a writer stages bytes in a hidden temporary file in the
target's folder (named with :data:`~freshlm.store.keys.RESERVED_PREFIX`, never listed) and
``os.replace``-s it over the final name on commit, which POSIX makes atomic. A process killed
mid-write leaves only that hidden file behind. Conditional writes hold an exclusive ``flock`` on
the folder while they compare and replace, so they are atomic between processes of one machine
(not over NFS).

ETags are the quoted hex MD5 of the content, as S3 reports for single-part uploads; computing one
reads the file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import BinaryIO

from freshlm.store.base import ObjectInfo, ObjectWriter, Store
from freshlm.store.errors import KeyNotFound, PreconditionFailed, StoreError
from freshlm.store.keys import RESERVED_PREFIX

_TEMP_PREFIX = RESERVED_PREFIX + "tmp."
_READ_BUFFER = 1 << 20


def _os_cause(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return f"{exc.strerror or exc} ({name})"


def _md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def _normalize_etag(etag: str) -> str:
    return etag.strip().strip('"')


class _LocalWriter(ObjectWriter):
    def __init__(self, uri: str, key: str, final: Path) -> None:
        # Stage first: if this fails there is no half-built writer for __del__ to discard.
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=final.parent)
        except OSError as exc:
            raise StoreError(uri, f"cannot create the file: {_os_cause(exc)}") from None
        self._final = final
        self._temp = Path(temp)
        self._file = os.fdopen(fd, "wb")
        super().__init__(uri, key)

    def _sink_write(self, data: memoryview) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise StoreError(self.uri, f"write failed: {_os_cause(exc)}") from None

    def _commit_sink(self) -> None:
        try:
            self._file.flush()
            os.fchmod(self._file.fileno(), 0o644)  # mkstemp's 0600 would hide it from readers
            # The bytes must be durable before the name points at them.
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temp, self._final)
            _fsync_dir(self._final.parent)
        except OSError as exc:
            raise StoreError(self.uri, f"commit failed: {_os_cause(exc)}") from None

    def _discard_sink(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self._temp.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore(Store):
    """Objects as files under ``root_uri`` (``file:///abs/path``); the folder is created lazily."""

    def __init__(self, root_uri: str) -> None:
        parsed = urllib.parse.urlsplit(root_uri)
        path = urllib.parse.unquote(parsed.path)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost") or not path:
            raise StoreError(root_uri, "not a file:///absolute/path URI")
        if not path.startswith("/"):
            raise StoreError(root_uri, "a file:// store needs an absolute path")
        self.root_uri = root_uri.rstrip("/")
        self.root = Path(path)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _open_read(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb", buffering=_READ_BUFFER)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFound(self.uri_for(key), "object does not exist") from None
        except OSError as exc:
            raise StoreError(self.uri_for(key), f"cannot read: {_os_cause(exc)}") from None

    def _new_writer(self, key: str) -> ObjectWriter:
        return _LocalWriter(self.uri_for(key), key, self._path(key))

    def _read_bytes_with_etag(self, key: str) -> tuple[bytes, str]:
        with self._open_read(key) as stream:
            try:
                data = stream.read()
            except OSError as exc:
                raise StoreError(self.uri_for(key), f"cannot read: {_os_cause(exc)}") from None
        return data, _md5_etag(data)

    def _write_bytes(self, key: str, data: bytes, if_match: str | None, if_none_match: bool) -> str:
        if if_match is None and not if_none_match:
            with self._new_writer(key) as writer:
                writer.write(data)
            return _md5_etag(data)
        uri = self.uri_for(key)
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise StoreError(uri, f"cannot create the folder: {_os_cause(exc)}") from None
        try:
            # One lock per folder: every conditional writer in it queues here, so the
            # compare and the replace below happen as one step for all of them.
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            current = self._stat(key)
            if if_none_match and current is not None:
                raise PreconditionFailed(uri, "object already exists (if_none_match)")
            if if_match is not None:
                if current is None:
                    raise PreconditionFailed(uri, "object does not exist (if_match)")
                if _normalize_etag(current.etag) != _normalize_etag(if_match):
                    raise PreconditionFailed(
                        uri, f"object changed: ETag is {current.etag}, not {if_match} (if_match)"
                    )
            with self._new_writer(key) as writer:
                writer.write(data)
            return _md5_etag(data)
        finally:
            os.close(lock_fd)  # closing the descriptor releases the flock

    def _stat(self, key: str) -> ObjectInfo | None:
        try:
            stream = self._open_read(key)
        except KeyNotFound:
            return None
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        with stream:
            while chunk := stream.read(_READ_BUFFER):
                digest.update(chunk)
                size += len(chunk)
        return ObjectInfo(key=key, size=size, etag=f'"{digest.hexdigest()}"')

    def _size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StoreError(self.uri_for(key), f"cannot stat: {_os_cause(exc)}") from None
        return st.st_size if path.is_file() else None

    def _list(self, prefix: str) -> list[str]:
        folder = prefix.rpartition("/")[0]
        base = self._path(folder) if folder else self.root
        keys = []

        def fail(exc: OSError) -> None:
            if not isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise StoreError(self.uri_for(prefix), f"cannot list: {_os_cause(exc)}")

        for dirpath, dirnames, filenames in os.walk(base, onerror=fail):
            dirnames[:] = [d for d in dirnames if not d.startswith(RESERVED_PREFIX)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(RESERVED_PREFIX):
                    continue  # in-flight or abandoned temporary files are not objects
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return keys

    def _delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        except OSError as exc:
            raise StoreError(self.uri_for(key), f"cannot delete: {_os_cause(exc)}") from None
