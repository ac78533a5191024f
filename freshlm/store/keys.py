"""Object keys: the ``/``-separated names of objects under a store's root.

A key names the same object on every backend, so it must mean the same thing as a relative file
path and as an S3 key: no empty, ``.`` or ``..`` segments, no leading or trailing ``/``, no
backslashes or control characters. Names starting with :data:`RESERVED_PREFIX` belong to the
store itself (the local backend's in-flight temporary files) and are never valid keys.
"""

from __future__ import annotations

RESERVED_PREFIX = ".freshlm-"


def key_problem(key: object) -> str | None:
    """Why ``key`` is not a valid object key, or None when it is."""
    if not isinstance(key, str) or not key:
        return "a key must be a non-empty string"
    if key.startswith("/") or key.endswith("/"):
        return "a key must not start or end with '/'"
    if "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        return "a key must not contain backslashes or control characters"
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            return "a key must not contain empty, '.' or '..' segments"
        if segment.startswith(RESERVED_PREFIX):
            return f"key segments starting with {RESERVED_PREFIX!r} are reserved for the store"
    return None


def prefix_problem(prefix: object) -> str | None:
    """Why ``prefix`` is not a valid listing prefix, or None.

    A prefix is matched as a plain string, like S3 does: ``"a/b"`` matches ``a/b/c`` and
    ``a/bc``. It may be empty (everything) or end with ``/`` (one folder).
    """
    if not isinstance(prefix, str):
        return "a prefix must be a string"
    if prefix == "":
        return None
    return key_problem(prefix.rstrip("/") or "/")
