"""The request and response values the world's emulated services exchange with the server.

The services (news site, Mastodon, arXiv, Slack sink) are plain functions from a
:class:`Request` to a :class:`Response`; only :mod:`sandbox.server` speaks HTTP. That keeps
each wire format testable without sockets and keeps HTTP plumbing (conditional GET, faults,
logging) in one place.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclasses.dataclass(frozen=True)
class Request:
    """One parsed HTTP request. ``query`` keeps every value of repeated parameters."""

    method: str
    path: str  # percent-decoded path, without the query string
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes = b""
    client: str = "127.0.0.1"  # the peer's address, for per-client budgets

    @classmethod
    def from_target(
        cls,
        method: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        client: str = "127.0.0.1",
    ) -> Request:
        """Build a request from a request-target such as ``/api/query?start=0``."""
        parts = urlsplit(target)
        return cls(
            method=method.upper(),
            path=unquote(parts.path) or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in (headers or {}).items()},
            body=body,
            client=client,
        )

    def param(self, name: str) -> str | None:
        """The last value of query parameter ``name`` (as Rails and Flask resolve repeats)."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclasses.dataclass
class Response:
    """A response before HTTP serialisation.

    ``last_modified`` set (or an ``ETag`` header present) makes the server answer conditional
    GETs with 304 on this response.
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    last_modified: datetime | None = None

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None):
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return cls(status, body, "application/json; charset=utf-8", dict(headers or {}))

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8"):
        return cls(status, text.encode(), content_type)


def http_date(when: datetime) -> str:
    """RFC 9110 IMF-fixdate, e.g. ``Sat, 01 Aug 2026 13:55:49 GMT``."""
    return format_datetime(when.astimezone(UTC).replace(microsecond=0), usegmt=True)


def rfc822_date(when: datetime) -> str:
    """The RSS 2.0 date form (RFC 822 with a numeric zone), e.g. ``Mon, 02 Nov 2026 ... +0000``."""
    return format_datetime(when.astimezone(UTC).replace(microsecond=0))


def iso_seconds(when: datetime) -> str:
    """``2026-11-02T07:30:00Z``: the form Atom feeds and the arXiv API use."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(when: datetime) -> str:
    """``2026-11-02T07:30:00.000Z``: the form Mastodon uses for ``created_at``."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    return datetime.now(UTC)
