"""Scrapy settings for FreshLM's spiders: polite by default, bounded, and reading FreshLM's config.

Per-source politeness (delay, concurrency) from the sources file is applied on top of these by
:mod:`crawlers.run`; values here are the defaults for hand-run ``scrapy crawl``.
"""

from __future__ import annotations

from freshlm.settings import get_settings

_settings = get_settings()

BOT_NAME = "freshlm"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

USER_AGENT = _settings.user_agent
ROBOTSTXT_OBEY = True

# Politeness: one connection per domain by default; AutoThrottle adapts the delay to the
# server's latency and never goes below DOWNLOAD_DELAY.
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1.0
# Delays vary by ±50% so requests don't fall into a fixed rhythm.
DOWNLOAD_DELAY_JITTER = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# Bounded work: a hostile or broken server cannot make a crawl hang or fill the disk.
DOWNLOAD_TIMEOUT = int(_settings.http_timeout_s)
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
# A crawl that runs too long closes itself (finish reason "closespider_timeout"); crawlers.run
# then publishes nothing and the task fails, so the retry fetches the window again.
CLOSESPIDER_TIMEOUT = _settings.crawl_timeout_s
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
# 429 and 503 with Retry-After are honoured by this middleware before the standard retry.
DOWNLOADER_MIDDLEWARES = {
    # First in line: a request to a non-public address is refused before anything else runs.
    "crawlers.address_guard.PublicAddressMiddleware": 50,
    "crawlers.middlewares.RetryAfterMiddleware": 540,
}
# robots.txt Crawl-delay as a floor on the host's delay; after AutoThrottle (0) so it has the
# last word on every response.
EXTENSIONS = {"crawlers.robots_delay.RobotsCrawlDelay": 500}
# Non-public places the crawl may still reach (the sandbox world); see crawlers.address_guard.
FRESHLM_CRAWL_ALLOW_PRIVATE = str(_settings.crawl_allow_private or "none")

# Cache nothing: conditional GET state lives in the cursor, in the store.
HTTPCACHE_ENABLED = False
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

ITEM_PIPELINES = {
    "crawlers.pipelines.ValidateRecordPipeline": 100,
    # What was forgotten on request (freshlm_forget) is never collected again.
    "crawlers.pipelines.DenyListPipeline": 200,
    # crawlers.run adds ShardFilesPipeline at 800 when a DAG task runs the spider.
    "crawlers.pipelines.QuarantineSinkPipeline": 900,
}
# Hand-run crawls: where quarantined items go (-s FRESHLM_QUARANTINE_PATH=q.jsonl); unset: log.
FRESHLM_QUARANTINE_PATH = None

FEED_EXPORT_ENCODING = "utf-8"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
LOG_LEVEL = "INFO"
