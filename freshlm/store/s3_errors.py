"""Turn botocore / s3transfer exceptions into :class:`StoreError` an operator can act on.

The message names the cause in words and keeps the service's error code in parentheses, e.g.
``"s3://b/x: bucket does not exist (NoSuchBucket)"``. botocore exception texts never contain
secret keys, and neither do these messages.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from freshlm.store.errors import KeyNotFound, PreconditionFailed, StoreError

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
NO_BUCKET_CODES = frozenset({"NoSuchBucket"})
PRECONDITION_CODES = frozenset({"412", "PreconditionFailed", "ConditionalRequestConflict"})
_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden"})
_BAD_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a ClientError (``"NoSuchBucket"``, ``"404"``, …), else None."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or None
    return None


def _attempts(exc: ClientError) -> str:
    retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    return f" after {retries + 1} attempts" if retries else ""


def _connection_reason(exc: BaseException) -> str:
    # EndpointConnectionError's own text is generic; the socket error is in kwargs["error"].
    text = f"{exc} {getattr(exc, 'kwargs', {}).get('error', '')}".lower()
    if "refused" in text:
        return "connection refused"
    if isinstance(exc, ConnectTimeoutError) or "timed out" in text:
        return "connection timed out"
    if isinstance(exc, ConnectionClosedError) or "closed" in text or "reset" in text:
        return "connection closed by the server"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "host name does not resolve"
    return type(exc).__name__


def to_store_error(exc: BaseException, uri: str, endpoint: str) -> StoreError:
    """The StoreError for ``exc`` raised while working on ``uri`` against ``endpoint``."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StoreError(
            uri,
            "no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile)",
        )
    if isinstance(exc, ResponseStreamingError):
        return StoreError(uri, f"connection to S3 endpoint {endpoint} broke while reading")
    if isinstance(exc, ReadTimeoutError):
        return StoreError(uri, f"S3 endpoint {endpoint} did not answer in time (read timeout)")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError | ConnectTimeoutError):
        return StoreError(uri, f"cannot reach S3 endpoint {endpoint} ({_connection_reason(exc)})")
    if isinstance(exc, ClientError):
        code = error_code(exc) or "unknown"
        message = exc.response.get("Error", {}).get("Message") or ""
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in NO_BUCKET_CODES:
            return StoreError(uri, f"bucket does not exist ({code})")
        if code in NOT_FOUND_CODES:
            return KeyNotFound(uri, f"object does not exist ({code})")
        if code in PRECONDITION_CODES:
            return PreconditionFailed(uri, f"the write's precondition did not hold ({code})")
        if code in _BAD_CREDENTIAL_CODES:
            return StoreError(uri, f"S3 rejected the credentials ({code})")
        if code in _DENIED_CODES:
            return StoreError(
                uri, f"access denied; check the credentials and the bucket policy ({code})"
            )
        detail = f"{message} " if message and message != code else ""
        shown_status = f"HTTP {status}, " if status and str(status) != code else ""
        return StoreError(uri, f"S3 request failed{_attempts(exc)}: {detail}({shown_status}{code})")
    if isinstance(exc, BotoCoreError):
        return StoreError(uri, f"S3 client error: {exc}")
    # e.g. an OSError from the local spool file of an upload
    return StoreError(uri, f"{type(exc).__name__}: {exc}")
