"""Console pages for what alerts point at, from the store URIs the stages hand over.

A stage knows its artifacts by store URI (``file://…`` or ``s3://…``), which nobody can click
in Slack; an alert links the console's copy instead (:func:`freshlm.alerts.links.
store_file_url`), served over http(s) whatever the backend. No I/O: opening the store object
only parses the configured root.
"""

from __future__ import annotations

import logging

from freshlm.alerts.links import store_file_url

log = logging.getLogger(__name__)


def stored_file_page(uri: str | None, base_url: str | None = None) -> str | None:
    """The console URL serving the stored file at ``uri``; ``uri`` itself when it is already
    an http(s) address; None when there is nothing to link or the file lies outside the
    configured store (an unclickable store URI never reaches Slack)."""
    if not uri:
        return None
    if uri.startswith(("https://", "http://")):
        return uri
    key = store_key(uri)
    return store_file_url(key, base_url) if key else None


def store_key(uri: str) -> str | None:
    """The store key of ``uri`` in the configured store, or None when it is not in it."""
    from freshlm.store import StoreError, open_store

    try:
        key = open_store().prefix_for(uri)
    except StoreError:
        log.warning("%s is outside the configured store; the alert leaves its link out", uri)
        return None
    return None if "://" in key or key.startswith("/") else key
