"""What every FreshLM spider shares: arguments, the cursor, counters, quarantine, errors.

A spider is run either by hand (``scrapy crawl news -a feeds=URL -O out.jsonl``) or by the
``freshlm_crawl`` DAG through :mod:`crawlers.run`, which passes the same ``-a`` arguments plus
``source``, ``cursor`` (JSON), ``window_start`` and ``window_end`` (ISO 8601 UTC).

Contract with the runner:

* ``self.cursor`` is the cursor loaded from the store (``{}`` on the first run); the spider
  never mutates it. It records progress in ``self.next_cursor`` as it goes (a JSON-able dict);
  the runner saves ``next_cursor`` only after the shard is published, so a crashed crawl
  re-fetches rather than skips.
* Counters go to Scrapy's stats under ``freshlm/...`` (``self.count(name)``); the runner copies
  them into the shard manifest (errors by kind, skipped by reason, ...).
* Anything fetched but unusable is yielded as ``self.quarantine(...)``; it lands in the shard's
  quarantine file with its reason.
* ``self.fatal_error`` is set when the source could not be reached at all (every request failed
  after retries); the runner then fails the task with that message, after publishing nothing.
* ``-a cursor_out=PATH`` (hand runs) writes ``next_cursor`` as JSON to PATH when the crawl
  closes, so a second hand run can pass it back with ``-a cursor="$(cat PATH)"``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import (
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
    TimeoutError,
)

from crawlers.address_guard import AddressRefused
from freshlm.records import QuarantineItem, parse_utc


class SpiderArgumentError(ValueError):
    """A ``-a`` argument is missing or malformed; the message names it and what it accepts."""


def parse_iso_utc(name: str, value: str) -> datetime:
    """Parse a ``-a`` datetime argument; naive values are taken as UTC."""
    return parse_utc(f"-a {name}", value, SpiderArgumentError)


def split_list(name: str, value: str | None, *, required: bool = False) -> list[str]:
    """A comma-separated ``-a`` argument as a list (empty items dropped)."""
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    if required and not items:
        raise SpiderArgumentError(f"-a {name}=...: at least one value is required")
    return items


class FreshSpider(scrapy.Spider):
    """Base class: parses the common arguments and keeps the crawl's bookkeeping."""

    kind: str = ""  # "news" | "sns" | "paper", set by subclasses

    def __init__(
        self,
        *args: Any,
        source: str | None = None,
        cursor: str | None = None,
        window_start: str | None = None,
        window_end: str | None = None,
        max_items: str | None = None,
        cursor_out: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.cursor_out = cursor_out
        self.source = source or self.name
        try:
            self.cursor: dict[str, Any] = json.loads(cursor) if cursor else {}
        except json.JSONDecodeError as exc:
            raise SpiderArgumentError(f"-a cursor=...: not valid JSON ({exc})") from None
        if not isinstance(self.cursor, dict):
            raise SpiderArgumentError("-a cursor=...: must be a JSON object")
        self.next_cursor: dict[str, Any] = json.loads(json.dumps(self.cursor))
        self.window_start = parse_iso_utc("window_start", window_start) if window_start else None
        self.window_end = parse_iso_utc("window_end", window_end) if window_end else None
        if self.window_start and self.window_end and self.window_start >= self.window_end:
            raise SpiderArgumentError(
                f"-a window_start={window_start} is not before -a window_end={window_end}"
            )
        try:
            self.max_items = int(max_items) if max_items else None
        except ValueError:
            raise SpiderArgumentError(f"-a max_items={max_items!r}: expected an integer") from None
        self.fatal_error: str | None = None
        self.responses_ok = 0
        self.last_error: str | None = None

    # --- bookkeeping ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC)

    def count(self, name: str, n: int = 1) -> None:
        """Increment the ``freshlm/<name>`` counter (copied into the shard manifest)."""
        if self.crawler is not None:
            self.crawler.stats.inc_value(f"freshlm/{name}", n)

    def quarantine(
        self, reason: str, detail: str, url: str, raw: str | bytes = ""
    ) -> QuarantineItem:
        """A quarantine item to yield; counted under ``freshlm/quarantined/<reason>``."""
        self.count(f"quarantined/{reason}")
        self.logger.warning("quarantined %s (%s): %s", url, reason, detail)
        return QuarantineItem.of(reason=reason, detail=detail, url=url, source=self.source, raw=raw)

    def in_window(self, when: datetime) -> bool:
        """Whether ``when`` falls in [window_start, window_end) (open ends when unset)."""
        if self.window_start and when < self.window_start:
            return False
        return not (self.window_end and when >= self.window_end)

    def response_ok(self) -> None:
        self.responses_ok += 1

    def error_kind(self, failure: Any) -> str | None:
        """The ``errors/<kind>`` a failure counts as; None when it is no error (robots.txt)."""
        if failure.check(AddressRefused):
            return "address_refused"
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            return None
        if failure.check(HttpError):
            return f"http_{failure.value.response.status}"
        if failure.check(DNSLookupError, CannotResolveHostError):
            return "dns"
        if failure.check(ConnectionRefusedError, DownloadConnectionRefusedError):
            return "connection_refused"
        if failure.check(TimeoutError, TCPTimedOutError, DownloadTimeoutError):
            return "timeout"
        if failure.check(DownloadCancelledError) and "max size" in str(failure.value):
            return "too_large"
        if failure.check(DownloadFailedError, ResponseDataLossError, ConnectionLost):
            return "connection_lost"
        return "other"

    def on_error(self, failure: Any) -> None:
        """Errback for every request: count the error by kind and remember the last one.

        A request refused by robots.txt is no error: it is counted as ``skipped/robots_txt``.
        Scrapy 2.19 wraps Twisted's errors in its own (``DownloadTimeoutError``...); both are
        recognised. An oversized response (``DOWNLOAD_MAXSIZE``) counts as ``too_large``.
        """
        request = failure.request
        kind = self.error_kind(failure)
        if kind is None:
            self.count("skipped/robots_txt")
            self.logger.info("robots.txt forbids %s; not fetched", request.url)
            return
        if failure.check(HttpError):
            status = failure.value.response.status
            kind = f"http_{status}"
            message = f"HTTP {status} from {request.url}"
        elif kind == "dns":
            message = f"DNS lookup failed for {request.url}"
        elif kind == "connection_refused":
            message = f"connection refused by {request.url}"
        elif kind == "address_refused":
            message = str(failure.value)
        elif kind == "timeout":
            message = f"timed out fetching {request.url}"
        elif kind == "too_large":
            message = f"response from {request.url} is larger than DOWNLOAD_MAXSIZE; dropped"
        else:
            message = f"{failure.type.__name__} fetching {request.url}: {failure.value}"
        self.count(f"errors/{kind}")
        self.last_error = message
        self.logger.error("%s", message)

    def closed(self, reason: str) -> None:
        """After the crawl: a source with only failures is unreachable (fatal)."""
        errors = 0
        if self.crawler is not None:
            errors = sum(
                v
                for k, v in self.crawler.stats.get_stats().items()
                if k.startswith("freshlm/errors/")
            )
        if self.responses_ok == 0 and errors:
            self.fatal_error = (
                f"source {self.source!r} unreachable: no request succeeded "
                f"({errors} failed after retries; last: {self.last_error})"
            )
            self.logger.error(self.fatal_error)
        if self.cursor_out:
            with open(self.cursor_out, "w", encoding="utf-8") as out:
                json.dump(self.next_cursor, out, ensure_ascii=False, sort_keys=True)
