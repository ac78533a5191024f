"""The ``news`` spider: RSS/Atom feeds, then each new item's article page, as raw records.

Run by hand::

    scrapy crawl news -a feeds=https://example.org/feed.rss[,URL...] -O out.jsonl \\
        [-a allowed_domains=cdn.example.org] [-a window_start=... -a window_end=...] \\
        [-a cursor='{...}'] [-a cursor_out=cursor.json] [-a max_items=N]

Behaviour:

* Each feed is fetched with the validators (ETag / Last-Modified) stored for it in the
  cursor; a 304 means nothing new and nothing else is fetched for that feed.
* A new entry (GUID not in the cursor's ``seen``) is taken when it falls in the window: on a
  feed's first run (the feed was never parsed before: a new source, a new feed, or one that
  was broken until now) only entries published in [window_start, window_end); later, any
  unseen entry published before window_end. Entries of the backlog are marked seen, not
  fetched; entries dated at/after window_end are left for the next run.
* The article page is fetched only on the feed's own hosts (plus ``allowed_domains``) and its
  main text extracted (:mod:`crawlers.parsers.articles`). Entries linking elsewhere, and pages
  without extractable text, fall back to the feed's own content/summary
  (``meta.text_source = "feed"``); with no text at all they are quarantined.
* Malformed feeds: what parses is used, the document is quarantined (``malformed_xml``); a
  body that is no feed at all is quarantined (``not_a_feed``); an oversized feed is counted
  (``errors/too_large``) and quarantined (``too_large``).
* A feed URL's query values (often a token) are masked wherever the feed is named in a record,
  a quarantine item or a log line (:mod:`crawlers.redaction`); only the cursor keeps the URL.

Cursor (``self.next_cursor``)::

    {"validators": {"<feed url>": {"etag": "...", "last_modified": "..."}},
     "seen": ["<guid>", ...],          # oldest first, at most SEEN_MAX
     "feeds": ["<feed url>", ...]}      # feeds parsed at least once (no backlog slurp)

A feed's validators are kept only when every entry it listed was dealt with; if an article
could not be fetched, the next run re-reads the feed (no 304) and tries again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response

from crawlers.parsers.articles import extract_article, warm_up
from crawlers.parsers.feeds import FeedEntry, FeedError, parse_feed
from crawlers.parsers.html_text import html_to_text
from crawlers.redaction import redact_url
from crawlers.spiders.base import FreshSpider, split_list
from freshlm.records import make_record

SEEN_MAX = 5000


class NewsSpider(FreshSpider):
    name = "news"
    kind = "news"

    def __init__(
        self,
        *args: Any,
        feeds: str | None = None,
        allowed_domains: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.feeds = split_list("feeds", feeds, required=True)
        warm_up()
        extra_hosts = {h.lower() for h in split_list("allowed_domains", allowed_domains)}
        self.article_hosts = {(urlsplit(f).hostname or "").lower() for f in self.feeds}
        self.article_hosts |= extra_hosts
        known = self.cursor.get("feeds")
        # Feeds parsed at least once before; for any other feed this is its first run.
        self.known_feeds: set[str] = (
            {f for f in known if isinstance(f, str)} if isinstance(known, list) else set()
        )
        validators = self.cursor.get("validators")
        self.validators: dict[str, dict[str, str]] = (
            dict(validators) if isinstance(validators, dict) else {}
        )
        seen = self.cursor.get("seen")
        self._seen_order: list[str] = (
            [s for s in seen if isinstance(s, str)] if isinstance(seen, list) else []
        )
        self._seen = set(self._seen_order)
        self._scheduled: set[str] = set()  # GUIDs taken in this run (feeds overlap)
        self._pending: dict[str, set[str]] = {}  # feed URL -> GUIDs not yet dealt with
        self._taken = 0
        self.next_cursor = {
            "validators": dict(self.validators),
            "seen": list(self._seen_order),
            "feeds": sorted(self.known_feeds),
        }

    # --- requests ------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for request in self._feed_requests():
            yield request

    def _feed_requests(self) -> Iterator[scrapy.Request]:
        for feed_url in self.feeds:
            headers = {}
            stored = self.validators.get(feed_url) or {}
            if stored.get("etag"):
                headers["If-None-Match"] = stored["etag"]
            if stored.get("last_modified"):
                headers["If-Modified-Since"] = stored["last_modified"]
            yield scrapy.Request(
                feed_url,
                headers=headers,
                callback=self.parse_feed,
                errback=self.feed_error,
                cb_kwargs={"feed_url": feed_url},
                # 304 must reach the callback (it means "nothing new", not an error).
                meta={"handle_httpstatus_list": [304]},
                dont_filter=True,
            )

    # --- feeds -----------------------------------------------------------------------------------

    def parse_feed(self, response: Response, feed_url: str) -> Iterator[Any]:
        self.response_ok()
        # The feed as records, quarantine and logs name it: its query may hold a token.
        shown = redact_url(feed_url)
        if response.status == 304:
            self.count("feeds/not_modified")
            self.logger.info("%s not modified since the last crawl", shown)
            return
        self.count("feeds/fetched")
        try:
            feed = parse_feed(response.body, base_url=response.url)
        except FeedError as exc:
            self._forget_validators(feed_url)
            yield self.quarantine("not_a_feed", f"{shown}: {exc}", shown, response.body)
            return
        for note in feed.notes:
            self.logger.info("%s: %s", shown, note)
            if "not UTF-8" in note:
                self.count("feeds/encoding_guessed")
        if feed.recovered:
            yield self.quarantine(
                "malformed_xml",
                f"{shown} is not well-formed XML ({feed.error}); "
                f"{len(feed.entries)} entries recovered",
                shown,
                response.body,
            )
        for problem in feed.problems:
            if problem.reason == "bad_date":
                self.count("feed_entries/bad_date")
                continue
            yield self.quarantine(
                f"feed_entry_{problem.reason}",
                f"{shown} entry #{problem.index}: {problem.detail}",
                shown,
                problem.raw,
            )
        self.count("feed_entries/parsed", len(feed.entries))
        pending = self._pending.setdefault(feed_url, set())
        complete = True
        first_run = feed_url not in self.known_feeds
        for entry in feed.entries:
            decision = self._decide(entry, first_run)
            if decision == "seen":
                continue
            if decision == "later":
                complete = False
                continue
            if decision == "backlog":
                self.count("skipped/before_window")
                self._mark_seen(entry.guid)
                continue
            if self.max_items is not None and self._taken >= self.max_items:
                self.count("skipped/max_items")
                complete = False
                continue
            self._taken += 1
            self._scheduled.add(entry.guid)
            pending.add(entry.guid)
            yield from self._follow(entry, feed_url, feed.language)
        if complete and not feed.recovered:
            self._remember_validators(feed_url, response)
        else:
            self._forget_validators(feed_url)
        if not feed.recovered:
            self.known_feeds.add(feed_url)

    def _decide(self, entry: FeedEntry, first_run: bool) -> str:
        """ "take", "seen" (already crawled), "backlog" (older than the window on the feed's
        first run) or "later" (dated at/after window_end: the next run takes it)."""
        if entry.guid in self._seen or entry.guid in self._scheduled:
            return "seen"
        if entry.published is not None:
            if self.window_end and entry.published >= self.window_end:
                self.count("skipped/after_window")
                return "later"
            if first_run and self.window_start and entry.published < self.window_start:
                return "backlog"
        return "take"

    def _follow(self, entry: FeedEntry, feed_url: str, feed_language: str | None):
        context = {"entry": entry, "feed_url": feed_url, "feed_language": feed_language}
        host = (urlsplit(entry.url or "").hostname or "").lower()
        if (
            entry.url
            and urlsplit(entry.url).scheme in ("http", "https")
            and host in self.article_hosts
        ):
            yield scrapy.Request(
                entry.url,
                callback=self.parse_article,
                errback=self.article_error,
                cb_kwargs=context,
            )
            return
        if entry.url:
            self.count("skipped/offsite_article")
            self.logger.info("not following %s: not on the feed's hosts", entry.url)
        yield from self._emit(entry, feed_url, feed_language, article=None)

    # --- articles --------------------------------------------------------------------------------

    def parse_article(
        self, response: Response, entry: FeedEntry, feed_url: str, feed_language: str | None
    ) -> Iterator[Any]:
        self.response_ok()
        self.count("articles/fetched")
        article = extract_article(response.body, url=response.url)
        yield from self._emit(entry, feed_url, feed_language, article=article, url=response.url)

    def _emit(self, entry, feed_url, feed_language, article, url=None) -> Iterator[Any]:
        text, source = "", "feed"
        if article is not None and article.text:
            text, source = article.text, "article"
            self.count(f"articles/extractor/{article.extractor}")
        if not text:
            text = html_to_text(entry.content_html) if entry.content_html else ""
            text = text or entry.summary or ""
        published = entry.published or (article.published if article else None)
        self._done(entry.guid, feed_url)
        where = entry.url or entry.guid
        if not text:
            yield self.quarantine("no_text", f"no text for {where} (page or feed)", where)
            return
        if published is None:
            yield self.quarantine("no_date", f"no publication date for {where}", where, text)
            return
        if self.window_end and published >= self.window_end:
            self.count("skipped/after_window")  # the page's date is later than the feed's
            return
        record_url = entry.url if (entry.url or "").startswith(("http://", "https://")) else url
        if not record_url:
            yield self.quarantine("no_url", f"entry {entry.guid} has no http(s) URL", where, text)
            return
        self.count("records")
        yield make_record(
            source=self.source,
            kind=self.kind,
            native_id=entry.guid,
            url=record_url,
            title=entry.title or (article.title if article else None),
            text=text,
            language=entry.language or (article.language if article else None) or feed_language,
            published_at=published,
            fetched_at=self.now(),
            author=entry.author or (article.author if article else None),
            meta={
                "feed": redact_url(feed_url),
                "guid": entry.guid,
                "categories": list(entry.categories),
                "text_source": source,
                "extractor": article.extractor if article else None,
            },
        )

    # --- errors ----------------------------------------------------------------------------------

    def feed_error(self, failure: Any) -> Iterator[Any]:
        self.on_error(failure)
        feed_url = failure.request.cb_kwargs.get("feed_url", failure.request.url)
        self._forget_validators(feed_url)
        if self.error_kind(failure) == "too_large":
            yield self.quarantine(
                "too_large",
                f"{redact_url(feed_url)}: response larger than DOWNLOAD_MAXSIZE "
                f"({self.settings.getint('DOWNLOAD_MAXSIZE')} bytes); not parsed",
                redact_url(feed_url),
            )

    def article_error(self, failure: Any) -> None:
        # The entry stays unseen and its feed's validators are dropped: the next run retries.
        self.on_error(failure)
        self.count("articles/failed")

    # --- cursor ----------------------------------------------------------------------------------

    def _mark_seen(self, guid: str) -> None:
        if guid not in self._seen:
            self._seen.add(guid)
            self._seen_order.append(guid)

    def _done(self, guid: str, feed_url: str) -> None:
        self._mark_seen(guid)
        self._pending.get(feed_url, set()).discard(guid)

    def _remember_validators(self, feed_url: str, response: Response) -> None:
        stored = {}
        etag = response.headers.get("ETag")
        modified = response.headers.get("Last-Modified")
        if etag:
            stored["etag"] = etag.decode("latin-1")
        if modified:
            stored["last_modified"] = modified.decode("latin-1")
        if stored:
            self.validators[feed_url] = stored
        else:
            self.validators.pop(feed_url, None)

    def _forget_validators(self, feed_url: str) -> None:
        self.validators.pop(feed_url, None)

    def closed(self, reason: str) -> None:
        for feed_url, pending in self._pending.items():
            if pending:
                self._forget_validators(feed_url)
        self.next_cursor = {
            "validators": dict(sorted(self.validators.items())),
            "seen": self._seen_order[-SEEN_MAX:],
            "feeds": sorted(self.known_feeds),
        }
        super().closed(reason)
