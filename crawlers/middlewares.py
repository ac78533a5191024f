"""Downloader middleware: honour ``Retry-After`` (and Mastodon's rate-limit reset) before retrying.

Scrapy's ``RetryMiddleware`` (priority 550) retries 429/503 at once; a server that said
"Retry-After: 30" gets hammered. :class:`RetryAfterMiddleware` makes the retried request wait:

1. On every downloaded response (the ``response_downloaded`` signal, which fires before any
   ``process_response``, so this works whatever this middleware's priority relative to
   ``RetryMiddleware``), a 429 or 503 carrying ``Retry-After`` (seconds or an HTTP date) — or,
   for a 429 without it, ``X-RateLimit-Reset`` (Mastodon) — stores the wait in the request's
   ``meta["freshlm_wait_s"]``, capped at ``FRESHLM_RETRY_AFTER_MAX`` seconds (default 60), and
   counts ``freshlm/retry_after``. ``RetryMiddleware`` then copies the request, meta included.
2. ``process_request`` (a coroutine, as Scrapy 2.13+ supports) pops ``freshlm_wait_s`` and
   sleeps that long on the reactor (``deferLater``): nothing blocks, other requests go on.

The number of retries stays bounded by ``RETRY_TIMES``: this middleware never creates
requests. Spiders may set ``meta["freshlm_wait_s"]`` themselves to delay a request (the
Mastodon spider does when ``X-RateLimit-Remaining`` reaches 0).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import signals
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future

WAIT_META_KEY = "freshlm_wait_s"
DEFAULT_MAX_WAIT_S = 60.0
_STATUSES = (429, 503)

log = logging.getLogger(__name__)


def parse_retry_after(value: str | bytes | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date); None if bad."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is no delay
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _reset_wait(value: bytes | None, now: datetime) -> float | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.decode("latin-1").strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


class RetryAfterMiddleware:
    """Delay the retry of a 429/503 by the server's ``Retry-After``; see the module docstring."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.max_wait_s = crawler.settings.getfloat("FRESHLM_RETRY_AFTER_MAX", DEFAULT_MAX_WAIT_S)

    @classmethod
    def from_crawler(cls, crawler: Any) -> RetryAfterMiddleware:
        middleware = cls(crawler)
        crawler.signals.connect(middleware.response_downloaded, signal=signals.response_downloaded)
        return middleware

    def response_downloaded(self, response: Response, request: Request, spider: Any) -> None:
        if response.status not in _STATUSES or request.meta.get("dont_retry"):
            return
        now = datetime.now(UTC)
        wait = parse_retry_after(response.headers.get("Retry-After"), now)
        if wait is None and response.status == 429:
            wait = _reset_wait(response.headers.get("X-RateLimit-Reset"), now)
        if wait is None:
            return
        capped = min(wait, self.max_wait_s)
        request.meta[WAIT_META_KEY] = capped
        self.crawler.stats.inc_value("freshlm/retry_after")
        if capped < wait:
            self.crawler.stats.inc_value("freshlm/retry_after_capped")
        log.info(
            "HTTP %d from %s asks to wait %.1fs; the retry waits %.1fs",
            response.status,
            request.url,
            wait,
            capped,
        )

    async def process_request(self, request: Request) -> None:
        wait = request.meta.pop(WAIT_META_KEY, None)
        if not wait or wait <= 0:
            return None
        from twisted.internet import reactor, task

        await maybe_deferred_to_future(task.deferLater(reactor, float(wait), lambda: None))
        return None
