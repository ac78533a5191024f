"""The artifact store: one interface over ``file://`` (embedded) and ``s3://`` (at scale).

Usage::

    from freshlm.store import open_store
    store = open_store()                      # settings.store_uri
    store.write_jsonl("raw/rss/2024-05-01/part-0000.jsonl.gz", records)
    with store.publisher("datasets/3f9a…", kind="dataset") as pub:
        pub.write_jsonl("part-0000.jsonl.gz", records)
    store.read_manifest("datasets/3f9a…", verify=True)

See :mod:`freshlm.store.base` for the object contract, :mod:`freshlm.store.publish` for atomic
publish and manifests. Importing this package is cheap: boto3 is imported only when an ``s3://``
store is opened, so DAG files may import it (DESIGN invariant 5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from freshlm.store.base import ObjectInfo, ObjectWriter, Store
from freshlm.store.errors import KeyNotFound, PreconditionFailed, StoreError
from freshlm.store.publish import MANIFEST_NAME, FileEntry, Manifest, Publisher, matches_entry

if TYPE_CHECKING:
    from freshlm.settings import Settings

__all__ = [
    "MANIFEST_NAME",
    "FileEntry",
    "KeyNotFound",
    "Manifest",
    "ObjectInfo",
    "ObjectWriter",
    "PreconditionFailed",
    "Publisher",
    "Store",
    "StoreError",
    "matches_entry",
    "open_store",
]


def open_store(uri: str | None = None, settings: Settings | None = None) -> Store:
    """The store at ``uri`` (default: ``settings.store_uri``), configured from ``settings``
    (default: :func:`freshlm.settings.get_settings`). Opening does no I/O.

    ``file:///abs/path`` gives the local backend, ``s3://bucket[/prefix]`` the S3 backend with
    the endpoint, region, retry and multipart settings. Anything else raises StoreError.
    """
    if settings is None:
        from freshlm.settings import get_settings

        settings = get_settings()
    uri = (uri or settings.store_uri).rstrip("/")
    if uri.startswith("file://"):
        from freshlm.store.local import LocalStore

        return LocalStore(uri)
    if uri.startswith("s3://"):
        from freshlm.store.s3 import S3Store

        return S3Store(
            uri,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            max_attempts=settings.s3_max_attempts,
            multipart_threshold_bytes=settings.s3_multipart_threshold_mb * 1024 * 1024,
        )
    raise StoreError(uri, "unsupported store URI; expected file:///absolute/path or s3://bucket")
