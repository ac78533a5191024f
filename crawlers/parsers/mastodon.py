"""Mastodon API JSON (statuses, timelines, accounts) and headers to plain values.

Contracts:

* :func:`parse_status` turns one Status entity into a :class:`Post` — HTML content to text
  (paragraphs and line breaks kept, link text kept), the author as ``@user@host`` (local
  accounts get the instance's host), ``language``, ``edited_at``, and whether the author
  opted out of indexing. A boost (``reblog`` set) is unwrapped: the post is the *original*,
  with ``boosted_by`` naming the booster, so the same text is never kept twice under two ids.
* :func:`opted_out` is the consent rule: an account with ``noindex: true``,
  ``indexable: false``, ``discoverable: false`` or ``#nobot``/``#noai`` in its bio is not
  crawled. A missing field (older servers, Pleroma) is no opt-out: that server's default.
* :func:`parse_timeline` parses a timeline response body (a JSON array of statuses); a
  non-array body raises :class:`MastodonFormatError`, an entry that is not a usable status
  is reported in ``problems`` rather than dropped silently.
* :func:`parse_link_header` and :func:`parse_rate_limit` read the paging and budget headers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawlers.parsers.html_text import html_to_text


class MastodonFormatError(ValueError):
    """The body is not what the Mastodon API returns for this endpoint."""


@dataclasses.dataclass(frozen=True)
class Post:
    """A status as FreshLM keeps it (for a boost: the original, see ``boosted_by``)."""

    id: str
    uri: str
    url: str
    created_at: datetime
    text: str
    language: str | None
    author: str  # @user@host
    author_opted_out: bool
    edited_at: datetime | None
    spoiler_text: str
    sensitive: bool
    in_reply_to_id: str | None
    tags: tuple[str, ...]
    replies_count: int
    reblogs_count: int
    favourites_count: int
    boosted_by: str | None = None  # @user@host of the booster when this came in as a boost
    boost_id: str | None = None  # the wrapper status's id (for paging)
    booster_opted_out: bool = False


@dataclasses.dataclass(frozen=True)
class TimelineProblem:
    index: int
    reason: str
    detail: str
    raw: str


@dataclasses.dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    reset: datetime | None


_NO_CRAWL_TAG = re.compile(r"(?<![\w#])#(nobot|noai)\b", re.IGNORECASE)


def opted_out(account: dict[str, Any] | None) -> bool:
    """Whether the account asked not to be crawled: ``noindex: true``, ``indexable: false``,
    ``discoverable: false``, or ``#nobot`` / ``#noai`` in its bio (``note``, HTML).

    A field the server does not send (older Mastodon, Pleroma, GoToSocial) is no opt-out: on
    those servers a public post is public, which is their default; a bio tag still counts.
    """
    if not isinstance(account, dict):
        return False
    if account.get("noindex") is True or account.get("indexable") is False:
        return True
    if account.get("discoverable") is False:
        return True
    note = account.get("note")
    return isinstance(note, str) and bool(_NO_CRAWL_TAG.search(html_to_text(note)))


def account_handle(account: dict[str, Any], instance_url: str) -> str:
    """``@user@host``: remote accounts' ``acct`` has the host; local ones get the instance's."""
    acct = str(account.get("acct") or account.get("username") or "").lstrip("@")
    if "@" in acct:
        return "@" + acct
    host = urlsplit(instance_url).hostname or ""
    return f"@{acct}@{host}" if host else f"@{acct}"


def parse_status(status: dict[str, Any], instance_url: str) -> Post:
    """One Status entity to a :class:`Post`; raises MastodonFormatError if it is not one."""
    if not isinstance(status, dict) or not status.get("id") or "account" not in status:
        raise MastodonFormatError("not a status: it needs an id and an account")
    reblog = status.get("reblog")
    if isinstance(reblog, dict):
        original = parse_status(reblog, instance_url)
        booster = status.get("account") or {}
        return dataclasses.replace(
            original,
            boosted_by=account_handle(booster, instance_url),
            boost_id=str(status["id"]),
            booster_opted_out=opted_out(booster),
        )
    account = status.get("account") or {}
    # A DELETE response carries the source ``text`` instead of rendered ``content``.
    content = status.get("content")
    text = html_to_text(content) if content is not None else str(status.get("text") or "").strip()
    created = _datetime(status.get("created_at"))
    if created is None:
        raise MastodonFormatError(f"status {status['id']}: created_at missing or unreadable")
    tags = tuple(
        str(t.get("name"))
        for t in status.get("tags") or []
        if isinstance(t, dict) and t.get("name")
    )
    uri = str(status.get("uri") or status.get("url") or "")
    return Post(
        id=str(status["id"]),
        uri=uri,
        url=str(status.get("url") or uri),
        created_at=created,
        text=text,
        language=_language(status.get("language")),
        author=account_handle(account, instance_url),
        author_opted_out=opted_out(account),
        edited_at=_datetime(status.get("edited_at")),
        spoiler_text=str(status.get("spoiler_text") or ""),
        sensitive=bool(status.get("sensitive")),
        in_reply_to_id=str(status["in_reply_to_id"]) if status.get("in_reply_to_id") else None,
        tags=tags,
        replies_count=int(status.get("replies_count") or 0),
        reblogs_count=int(status.get("reblogs_count") or 0),
        favourites_count=int(status.get("favourites_count") or 0),
    )


def parse_timeline(
    body: bytes | str, instance_url: str
) -> tuple[list[Post], list[TimelineProblem]]:
    """A timeline body (JSON array of statuses) to posts, newest first as served."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MastodonFormatError(f"timeline is not JSON: {exc}") from None
    except RecursionError:
        raise MastodonFormatError(
            "timeline JSON is nested too deeply to parse (a hostile or broken server)"
        ) from None
    if isinstance(data, dict) and "error" in data:
        raise MastodonFormatError(f"the server answered an error: {data['error']}")
    if not isinstance(data, list):
        raise MastodonFormatError(f"timeline must be a JSON array, got {type(data).__name__}")
    posts, problems = [], []
    for index, item in enumerate(data):
        try:
            posts.append(parse_status(item, instance_url))
        except (MastodonFormatError, TypeError, ValueError) as exc:
            raw = json.dumps(item, ensure_ascii=False)[:4096]
            problems.append(TimelineProblem(index, "bad_status", str(exc), raw))
    return posts, problems


_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def parse_link_header(value: str | None) -> dict[str, str]:
    """``Link`` header to ``{rel: url}`` (RFC 8288; quoted or bare rel values)."""
    links: dict[str, str] = {}
    for match in _LINK.finditer(value or ""):
        url, params = match.group(1).strip(), match.group(2)
        rel = re.search(r"""rel\s*=\s*"?([^";]+)"?""", params)
        if rel:
            for name in rel.group(1).split():
                links.setdefault(name.lower(), url)
    return links


def link_param(url: str, name: str) -> str | None:
    """A query parameter of a Link URL (e.g. the ``min_id`` of ``rel="prev"``)."""
    values = parse_qs(urlsplit(url).query).get(name)
    return values[-1] if values else None


def parse_rate_limit(headers: dict[str, str]) -> RateLimit:
    """``X-RateLimit-Limit/-Remaining/-Reset`` (names case-insensitive); missing parts None."""
    lowered = {k.lower(): v for k, v in headers.items()}

    def number(name: str) -> int | None:
        try:
            return int(float(lowered[name]))
        except (KeyError, ValueError):
            return None

    return RateLimit(
        limit=number("x-ratelimit-limit"),
        remaining=number("x-ratelimit-remaining"),
        reset=_datetime(lowered.get("x-ratelimit-reset")),
    )


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _language(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    match = re.match(r"^([A-Za-z]{2,3})(?:[-_]|$)", value.strip())
    return match.group(1).lower() if match else None
