"""The registry's exceptions: each message says what was asked, what was found, and what to do."""

from __future__ import annotations


class RegistryError(RuntimeError):
    """A registry operation cannot be done as asked (invalid name, corrupt record, …)."""


class VersionNotFound(RegistryError):
    """No model version with that id is published under ``models/``."""


class PromotionConflict(RegistryError):
    """Another writer moved the alias first; nothing was written by this call.

    ``alias`` is the alias, ``expected`` the version this caller believed it pointed at (None:
    absent), ``actual`` the version it points at now. Re-read, re-decide (e.g. re-evaluate the
    candidate against the new production), then try again.
    """

    def __init__(self, alias: str, expected: str | None, actual: str | None, detail: str) -> None:
        super().__init__(detail)
        self.alias = alias
        self.expected = expected
        self.actual = actual

    def __reduce__(self):  # picklable with its fields (Airflow, subprocesses)
        return (type(self), (self.alias, self.expected, self.actual, str(self)))
