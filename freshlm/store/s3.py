"""The at-scale backend: objects in ``s3://bucket/prefix`` via boto3.

Works with AWS and with S3-compatible servers (SeaweedFS, MinIO) through ``endpoint_url``, which
also switches to path-style addressing. Each request is retried by botocore's ``standard`` retry
mode (exponential backoff with jitter, on throttling, 5xx and connection errors) up to
``max_attempts`` times before the error surfaces as :class:`StoreError`.

Writers spool to a temporary file on local disk and upload it on close with boto3's transfer
manager, which switches to a threaded multipart upload at the multipart
threshold; the object appears only when the upload completes, so a failed or killed upload
publishes nothing. (A process killed mid multipart upload leaves an incomplete upload that is
invisible to readers; an ``AbortIncompleteMultipartUpload`` lifecycle rule on the bucket reclaims
its space.)

Conditional writes are single PUTs with ``If-Match`` / ``If-None-Match: *`` (supported by AWS
since 2024 and by SeaweedFS 4.x), so they suit small objects (aliases, cursors).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

import boto3
import boto3.s3.transfer
import botocore.config
from botocore.exceptions import BotoCoreError, ClientError

from freshlm.store.base import ObjectInfo, ObjectWriter, Store
from freshlm.store.errors import KeyNotFound, PreconditionFailed, StoreError
from freshlm.store.s3_errors import NO_BUCKET_CODES, NOT_FOUND_CODES, error_code, to_store_error

S3_MIN_PART_BYTES = 5 * 1024 * 1024  # S3 refuses smaller parts (except the last one)
_READ_BUFFER = 1 << 20
_S3_ERRORS = (BotoCoreError, ClientError, OSError)

T = TypeVar("T")


class _S3Reader(io.RawIOBase):
    """A GetObject body as a raw stream whose failures are StoreErrors."""

    def __init__(self, body: Any, fail: Callable[[BaseException], StoreError]) -> None:
        super().__init__()
        self._body = body
        self._fail = fail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            chunk = self._body.read(len(view))
        except _S3_ERRORS as exc:
            raise self._fail(exc) from exc
        view[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _S3Writer(ObjectWriter):
    def __init__(self, store: S3Store, key: str) -> None:
        # A named file on disk: the transfer manager then streams each part from it with bounded
        # memory, whereas uploading from a file object buffers whole parts in memory.
        self._spool = tempfile.NamedTemporaryFile(prefix="freshlm-s3-upload-")  # noqa: SIM115
        super().__init__(store.uri_for(key), key)
        self._store = store

    def _sink_write(self, data: memoryview) -> None:
        try:
            self._spool.write(data)
        except OSError as exc:
            raise StoreError(self.uri, f"cannot spool the upload locally: {exc}") from None

    def _commit_sink(self) -> None:
        store = self._store
        self._spool.flush()
        store._call(
            self.key,
            lambda: store.upload_file(self._spool.name, self.key),
        )
        self._spool.close()

    def _discard_sink(self) -> None:
        with contextlib.suppress(OSError):
            self._spool.close()


class S3Store(Store):
    """Objects under ``s3://bucket/prefix``. The boto3 client is created on first use.

    Credentials come from boto3's usual chain (environment, profile, instance role); they are
    never passed through FreshLM's settings. ``session`` lets a caller supply them explicitly
    (e.g. from an Airflow connection).
    """

    def __init__(
        self,
        root_uri: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        max_attempts: int = 5,
        multipart_threshold_bytes: int = 8 * 1024 * 1024,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        session: boto3.session.Session | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(root_uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(root_uri, "not an s3://bucket[/prefix] URI")
        self.root_uri = root_uri.rstrip("/")
        self.bucket = parsed.netloc
        path = parsed.path.strip("/")
        self.key_prefix = f"{path}/" if path else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.max_attempts = max_attempts
        self.multipart_threshold_bytes = multipart_threshold_bytes
        self.transfer_config = boto3.s3.transfer.TransferConfig(
            multipart_threshold=multipart_threshold_bytes,
            multipart_chunksize=max(multipart_threshold_bytes, S3_MIN_PART_BYTES),
            max_concurrency=4,
            preferred_transfer_client="classic",  # s3transfer, whatever else is installed
        )
        self._client_config = botocore.config.Config(
            region_name=region,
            # total_max_attempts counts the first try; botocore's "max_attempts" would not.
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            # The transfer manager's threads each need a connection.
            max_pool_connections=16,
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        self._session = session
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._bucket_seen = False

    @property
    def client(self) -> Any:
        """The boto3 S3 client (thread-safe; exposed for instrumentation via its events)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    session = self._session or boto3.session.Session()
                    self._client = session.client(
                        "s3", endpoint_url=self.endpoint_url, config=self._client_config
                    )
        return self._client

    @property
    def _endpoint_name(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region})"

    def _s3_key(self, key: str) -> str:
        return self.key_prefix + key

    def upload_file(self, path: str, key: str) -> None:
        """Upload a local file to ``key``: one PUT below the multipart threshold, else a
        threaded multipart upload. Raises botocore's exceptions (callers translate them).

        The transfer manager is used directly because ``client.upload_file`` flattens
        ClientErrors into S3UploadFailedError, losing the error code.
        """
        with boto3.s3.transfer.create_transfer_manager(self.client, self.transfer_config) as tm:
            tm.upload(path, self.bucket, self._s3_key(key)).result()

    # --- error handling --------------------------------------------------------------------------

    def _error(self, exc: BaseException, key: str) -> StoreError:
        uri = self.uri_for(key) if key else self.root_uri
        code = error_code(exc)
        # A missing bucket shows up as a bare 404 on HEAD, and SeaweedFS answers AccessDenied to a
        # PUT into one; ask the bucket itself before blaming the object or the credentials.
        if code in NOT_FOUND_CODES | {"403", "AccessDenied"} and not self._bucket_seen:
            try:
                self.client.head_bucket(Bucket=self.bucket)
                self._bucket_seen = True
            except ClientError as bucket_exc:
                if error_code(bucket_exc) in NOT_FOUND_CODES | NO_BUCKET_CODES:
                    return StoreError(uri, "bucket does not exist (NoSuchBucket)")
            except _S3_ERRORS:
                pass
        return to_store_error(exc, uri, self._endpoint_name)

    def _call(self, key: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except StoreError:
            raise
        except _S3_ERRORS as exc:
            raise self._error(exc, key) from exc

    # --- primitives ----------------------------------------------------------------------------

    def _open_read(self, key: str) -> BinaryIO:
        response = self._call(
            key, lambda: self.client.get_object(Bucket=self.bucket, Key=self._s3_key(key))
        )
        raw = _S3Reader(response["Body"], lambda exc: self._error(exc, key))
        return io.BufferedReader(raw, buffer_size=_READ_BUFFER)  # type: ignore[return-value]

    def _new_writer(self, key: str) -> ObjectWriter:
        return _S3Writer(self, key)

    def _read_bytes_with_etag(self, key: str) -> tuple[bytes, str]:
        def get() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=self.bucket, Key=self._s3_key(key))
            with response["Body"] as body:
                return body.read(), response["ETag"]

        return self._call(key, get)

    def _write_bytes(self, key: str, data: bytes, if_match: str | None, if_none_match: bool) -> str:
        conditional = if_match is not None or if_none_match
        if not conditional and len(data) >= self.multipart_threshold_bytes:
            with self._new_writer(key) as writer:
                writer.write(data)
            info = self._stat(key)
            return info.etag if info else ""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._s3_key(key), "Body": data}
        if if_match is not None:
            args["IfMatch"] = if_match
        if if_none_match:
            args["IfNoneMatch"] = "*"
        try:
            return self.client.put_object(**args)["ETag"]
        except _S3_ERRORS as exc:
            # AWS answers a missing object under If-Match with 404, SeaweedFS with 412; the
            # contract is the same either way: the condition did not hold.
            if if_match is not None and error_code(exc) in NOT_FOUND_CODES:
                raise PreconditionFailed(
                    self.uri_for(key), "object does not exist (if_match)"
                ) from exc
            error = self._error(exc, key)
            retried = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {})
            if (
                conditional
                and isinstance(error, PreconditionFailed)
                and retried.get("RetryAttempts", 0) > 0
            ):
                # botocore retries a PUT whose response was lost; the retry then fails its own
                # precondition because the first attempt succeeded. If the object holds exactly
                # these bytes, the write happened: report success, not a false conflict. Only
                # after a retry: on a first attempt, equal bytes are another writer's, and
                # taking them for ours would lose that writer's update.
                etag = self._etag_if_holds(key, data)
                if etag is not None:
                    return etag
            raise error from exc

    def _etag_if_holds(self, key: str, data: bytes) -> str | None:
        """The object's ETag if it holds exactly ``data``; None otherwise (or if absent)."""
        try:
            current, etag = self._read_bytes_with_etag(key)
        except KeyNotFound:
            return None
        return etag if current == data else None

    def _stat(self, key: str) -> ObjectInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._s3_key(key))
        except _S3_ERRORS as exc:
            error = self._error(exc, key)
            if isinstance(error, KeyNotFound):
                return None
            raise error from exc
        self._bucket_seen = True
        return ObjectInfo(key=key, size=head["ContentLength"], etag=head["ETag"])

    def _size(self, key: str) -> int | None:
        info = self._stat(key)
        return None if info is None else info.size

    def _list(self, prefix: str) -> list[str]:
        def collect() -> list[str]:
            paginator = self.client.get_paginator("list_objects_v2")
            keys = []
            start = len(self.key_prefix)
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._s3_key(prefix)):
                # Some S3-compatible servers list folder markers ("a/"); they are not objects.
                keys.extend(
                    item["Key"][start:]
                    for item in page.get("Contents", ())
                    if not item["Key"].endswith("/")
                )
            return keys

        return self._call(prefix, collect)

    def _delete(self, key: str) -> None:
        self._call(
            key, lambda: self.client.delete_object(Bucket=self.bucket, Key=self._s3_key(key))
        )
