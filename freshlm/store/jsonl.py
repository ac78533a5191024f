"""Streaming JSON Lines over binary streams, gzip-compressed when the key ends with ``.gz``.

Records go through in bounded batches, so files far larger than memory can be written and read.
Compressed output is deterministic (no timestamp or file name in the gzip header), so the same
records always produce the same bytes and the same sha256: re-running a task re-publishes
identical artifacts (DESIGN invariant 1).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from freshlm.store.errors import StoreError

# Lines are joined into batches of about this many bytes before each write: large enough to keep
# per-call overhead (hashing, zlib, S3 spooling) low, small enough to stay out of memory's way.
_BATCH_BYTES = 256 * 1024
_COMPRESS_LEVEL = 6  # zlib's default speed/size trade-off; 9 is several times slower for ~2%


def is_gzip_key(key: str) -> bool:
    return key.endswith(".gz")


def encode_record(record: Mapping[str, Any], index: int) -> bytes:
    """One JSON object as a UTF-8 line; ``TypeError`` naming the record if it is not JSON."""
    if not isinstance(record, Mapping):
        raise TypeError(f"record {index} is a {type(record).__name__}, expected a dict")
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"record {index} is not JSON-serializable: {exc}") from None
    return text.encode("utf-8") + b"\n"


def write_records(sink: BinaryIO, records: Iterable[Mapping[str, Any]], *, compress: bool) -> int:
    """Write ``records`` to ``sink`` as JSON Lines; return how many were written.

    ``sink`` is not closed (its owner decides whether the write commits).
    """
    out: Any = (
        gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=_COMPRESS_LEVEL, mtime=0, filename="")
        if compress
        else sink
    )
    count = 0
    batch: list[bytes] = []
    batched = 0
    for count, record in enumerate(records, start=1):
        line = encode_record(record, count - 1)
        batch.append(line)
        batched += len(line)
        if batched >= _BATCH_BYTES:
            out.write(b"".join(batch))
            batch, batched = [], 0
    if batch:
        out.write(b"".join(batch))
    if compress:
        out.close()  # writes the gzip trailer; GzipFile leaves a passed-in fileobj open
    return count


def read_records(source: BinaryIO, *, compressed: bool, uri: str) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of ``source`` one by one; closes ``source`` when done.

    Blank lines are skipped. A line that is not a JSON object, or a corrupt gzip stream,
    raises :class:`StoreError` naming ``uri`` and the line number.
    """
    try:
        stream: Any = gzip.GzipFile(fileobj=source, mode="rb") if compressed else source
        number = 0
        try:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise StoreError(uri, f"line {number} is not valid JSON ({exc})") from None
                if not isinstance(record, dict):
                    raise StoreError(
                        uri, f"line {number} is a JSON {type(record).__name__}, expected an object"
                    )
                yield record
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise StoreError(
                uri, f"not a valid gzip stream after line {number} ({exc or 'truncated'})"
            ) from None
    finally:
        source.close()
