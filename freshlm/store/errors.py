"""The store's one exception family.

Every failure of the store, whatever the backend, surfaces as :class:`StoreError` whose message
reads ``"<uri>: <cause>"``: the URI says *what* could not be read or written, the cause says
*why* in words an operator can act on. Two subclasses let callers branch on the cases they
handle on purpose: :class:`KeyNotFound` (the object is absent) and :class:`PreconditionFailed`
(a conditional write lost a race). Messages never contain credentials.
"""

from __future__ import annotations


class StoreError(Exception):
    """An artifact-store operation failed.

    ``uri`` is the object or prefix involved, ``cause`` a short human explanation (for S3 it
    ends with the service's error code in parentheses, e.g. ``(NoSuchBucket)``).
    """

    def __init__(self, uri: str, cause: str) -> None:
        super().__init__(f"{uri}: {cause}")
        self.uri = uri
        self.cause = cause

    def __reduce__(self):  # keep the two-argument constructor picklable (Airflow, subprocesses)
        return (type(self), (self.uri, self.cause))


class KeyNotFound(StoreError):
    """The object does not exist (the bucket or root does; that would be a plain StoreError)."""


class PreconditionFailed(StoreError):
    """A conditional write was refused: the object changed (``if_match``) or already exists
    (``if_none_match``). Re-read the object and decide again."""
