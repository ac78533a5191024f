"""robots.txt ``Crawl-delay`` honoured: the host's download slot waits at least that long.

Scrapy's robots.txt middleware parses the file (Protego) but only uses it to allow or forbid
URLs. This extension listens for ``robots_parsed``, asks the parser for the crawl delay that
applies to our user agent, and keeps it as a floor on the delay of that host's download slot:

* applied when the robots.txt is parsed, again for every request that reaches the downloader
  (a slot dropped when idle is recreated with the default delay) and after every response
  (AutoThrottle lowers slot delays as latency falls; this handler is connected after it);
* the slot's jitter is switched off, since a randomised delay would go below the floor half the
  time;
* a delay above ``FRESHLM_ROBOTS_MAX_CRAWL_DELAY`` (seconds, default 60) is capped there and the
  log says so: a robots.txt asking for hours between requests would otherwise hold the crawl
  until ``CLOSESPIDER_TIMEOUT``. Counted as ``freshlm/robots/crawl_delay``.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request, signals
from scrapy.http import Response

log = logging.getLogger(__name__)
DEFAULT_MAX_CRAWL_DELAY_S = 60.0


class RobotsCrawlDelay:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.user_agent = settings.get("ROBOTSTXT_USER_AGENT") or settings.get("USER_AGENT")
        self.max_delay_s = settings.getfloat(
            "FRESHLM_ROBOTS_MAX_CRAWL_DELAY", DEFAULT_MAX_CRAWL_DELAY_S
        )
        self.floors: dict[str, float] = {}  # download slot key (host) -> seconds

    @classmethod
    def from_crawler(cls, crawler: Any) -> RobotsCrawlDelay:
        ext = cls(crawler)
        crawler.signals.connect(ext.robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(ext.request_reached, signal=signals.request_reached_downloader)
        crawler.signals.connect(ext.response_downloaded, signal=signals.response_downloaded)
        return ext

    def robots_parsed(self, robotparser: Any, request: Request) -> None:
        asked = robotparser.crawl_delay(self.user_agent) if robotparser is not None else None
        if asked is None or asked <= 0:
            return
        delay = min(float(asked), self.max_delay_s)
        key = self._downloader().get_slot_key(request)
        self.floors[key] = delay
        self.crawler.stats.inc_value("freshlm/robots/crawl_delay")
        if delay < asked:
            log.warning(
                "robots.txt of %s asks for Crawl-delay %gs; waiting %gs between requests"
                " (FRESHLM_ROBOTS_MAX_CRAWL_DELAY)",
                key,
                asked,
                delay,
            )
        else:
            log.info("robots.txt of %s asks for Crawl-delay %gs; honoured", key, delay)
        self._apply(key)

    def request_reached(self, request: Request, spider: Any = None) -> None:
        self._apply(request.meta.get("download_slot"))

    def response_downloaded(self, response: Response, request: Request, spider: Any) -> None:
        self._apply(request.meta.get("download_slot"))

    def _apply(self, key: str | None) -> None:
        floor = self.floors.get(key) if key is not None else None
        if floor is None:
            return
        slot = self._downloader().slots.get(key)
        if slot is None:
            return
        slot.jitter = 0.0
        if slot.delay < floor:
            slot.delay = floor

    def _downloader(self) -> Any:
        return self.crawler.engine.downloader
