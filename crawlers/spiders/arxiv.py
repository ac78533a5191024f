"""The ``arxiv`` spider: new submissions in some categories within a time window, metadata only.

Run by hand::

    scrapy crawl arxiv -a api_url=https://export.arxiv.org/api/query \\
        -a categories=cs.CL,cs.LG -a since=2026-11-02T00:00:00Z -a until=2026-11-03T00:00:00Z \\
        -O out.jsonl [-a page_size=100] [-a cursor='{...}'] [-a cursor_out=PATH]

``since``/``until`` default to ``window_start``/``window_end`` (the DAG run's data interval);
one of the two pairs is required. The query is
``(cat:A OR cat:B) AND submittedDate:[YYYYMMDDHHMM TO YYYYMMDDHHMM]`` sorted by submission
date, paged with ``start``/``max_results``. arXiv's bounds are inclusive and minute-grained,
so papers are kept only when ``published`` lies in [since, until): a paper submitted exactly
at ``until`` belongs to the next window.

Only titles, abstracts and bibliographic metadata are kept (CC0); full texts are never
fetched. Politeness per arXiv's terms: one request every 3 seconds on one connection
(``custom_settings``; a ``-s`` on the command line still overrides, for benchmarks).

Cursor: ``{"done": [{"since": ISO, "until": ISO}, ...]}`` — windows crawled completely (the
last 100). A window inside a done one is not fetched again.

Missed nights: with ``window_start`` (and no explicit ``since``) the crawl starts at the end of
the newest window the cursor says was fetched, when that lies before the window — at most 7
days back (:mod:`crawlers.spiders.arxiv_catch_up`) — so nights the scheduler skipped are fetched
with this one; ``self.folded`` names that stretch, and the done window covers it all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar
from urllib.parse import urlencode

import scrapy
from scrapy.http import Response

from crawlers.parsers.arxiv import ArxivApiError, Paper, parse_arxiv_feed
from crawlers.spiders.arxiv_catch_up import MAX_CATCH_UP, catch_up_start, last_fetched_end
from crawlers.spiders.base import FreshSpider, SpiderArgumentError, parse_iso_utc, split_list
from freshlm.records import iso_utc, make_record

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 2000
DONE_MAX = 100


class ArxivSpider(FreshSpider):
    name = "arxiv"
    kind = "paper"
    # arXiv's API terms: no more than one request every three seconds, one connection.
    custom_settings: ClassVar[dict[str, Any]] = {
        "DOWNLOAD_DELAY": 3.0,
        "DOWNLOAD_DELAY_JITTER": 0.0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "AUTOTHROTTLE_ENABLED": False,
    }

    def __init__(
        self,
        *args: Any,
        api_url: str | None = None,
        categories: str | None = None,
        since: str | None = None,
        until: str | None = None,
        page_size: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not api_url or not api_url.startswith(("http://", "https://")):
            raise SpiderArgumentError(
                f"-a api_url={api_url!r}: the API endpoint is required, "
                "e.g. https://export.arxiv.org/api/query"
            )
        self.api_url = api_url
        self.categories = split_list("categories", categories, required=True)
        done = self.cursor.get("done")
        self.done: list[dict[str, str]] = [
            d for d in (done if isinstance(done, list) else []) if isinstance(d, dict)
        ]
        self.since = parse_iso_utc("since", since) if since else self.window_start
        self.until = parse_iso_utc("until", until) if until else self.window_end
        # The missed nights before the run's window, fetched with it (see arxiv_catch_up).
        self.folded: dict[str, str] | None = None
        if not since and self.window_start is not None:
            self.since = catch_up_start(self.done, self.window_start)
            if self.since < self.window_start:
                self.folded = {"start": iso_utc(self.since), "end": iso_utc(self.window_start)}
        if self.since is None or self.until is None:
            raise SpiderArgumentError(
                "-a since=... -a until=... (or -a window_start/window_end) are required: "
                "the arXiv spider fetches one submission window"
            )
        if self.since >= self.until:
            raise SpiderArgumentError(f"-a since={since} is not before -a until={until}")
        try:
            size = int(page_size) if page_size else DEFAULT_PAGE_SIZE
        except ValueError:
            raise SpiderArgumentError(f"-a page_size={page_size!r}: expected an integer") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise SpiderArgumentError(f"-a page_size={size}: must be 1..{MAX_PAGE_SIZE}")
        self.page_size = size
        self.next_cursor = {"done": list(self.done)}
        self._failed = False
        self._complete = False
        self._taken = 0

    def search_query(self) -> str:
        cats = " OR ".join(f"cat:{c}" for c in self.categories)
        cats = f"({cats})" if len(self.categories) > 1 else cats
        # Minute-grained, inclusive bounds: fetch [since, until] and filter to [since, until).
        return f"{cats} AND submittedDate:[{self.since:%Y%m%d%H%M} TO {self.until:%Y%m%d%H%M}]"

    def page_url(self, start: int) -> str:
        query = {
            "search_query": self.search_query(),
            "start": str(start),
            "max_results": str(self.page_size),
            "sortBy": "submittedDate",
            "sortOrder": "ascending",
        }
        return f"{self.api_url}?{urlencode(query)}"

    def _covered(self) -> bool:
        for window in self.done:
            try:
                since = parse_iso_utc("done.since", window["since"])
                until = parse_iso_utc("done.until", window["until"])
            except (KeyError, SpiderArgumentError):
                continue
            if since <= self.since and self.until <= until:
                return True
        return False

    async def start(self) -> AsyncIterator[Any]:
        self._log_catch_up()
        if self._covered():
            self.count("skipped/window_already_crawled")
            self.logger.info(
                "window %s..%s was crawled completely before; nothing to fetch",
                iso_utc(self.since),
                iso_utc(self.until),
            )
            return
        yield self._request(0)

    def _log_catch_up(self) -> None:
        if self.folded is None or self.window_start is None:
            return
        self.logger.warning(
            "nights were missed: fetching from %s, where the last crawled window ended, "
            "through this window (%s..%s)",
            self.folded["start"],
            iso_utc(self.window_start),
            iso_utc(self.until),
        )
        last = last_fetched_end(self.done)
        if last is not None and last < self.since:
            self.logger.warning(
                "papers submitted %s..%s are not fetched: further back than the %d-day "
                "catch-up; crawl that stretch as its own window",
                iso_utc(last),
                iso_utc(self.since),
                MAX_CATCH_UP.days,
            )

    def _request(self, start: int) -> scrapy.Request:
        return scrapy.Request(
            self.page_url(start),
            callback=self.parse_page,
            errback=self.page_error,
            cb_kwargs={"start": start},
            # arXiv answers bad queries with HTTP 400 and an error feed that says why.
            meta={"handle_httpstatus_list": [400]},
            dont_filter=True,
        )

    def parse_page(self, response: Response, start: int) -> Iterator[Any]:
        try:
            page = parse_arxiv_feed(response.body)
        except ArxivApiError as exc:
            self._failed = True
            self.count("errors/api_error")
            self.last_error = f"{response.url}: {exc}"
            self.logger.error("%s", self.last_error)
            yield self.quarantine("api_error", str(exc), response.url, response.body)
            return
        if response.status != 200:
            self._failed = True
            self.count(f"errors/http_{response.status}")
            return
        self.response_ok()
        self.count("pages")
        for paper in page.papers:
            if self.max_items is not None and self._taken >= self.max_items:
                self.count("skipped/max_items")
                self._failed = True  # the window is not complete: do not mark it done
                return
            yield from self._keep(paper, response.url)
        fetched = start + len(page.papers)
        total = page.total_results or 0
        if page.papers and fetched < total:
            yield self._request(fetched)
        else:
            self._complete = True

    def _keep(self, paper: Paper, page_url: str) -> Iterator[Any]:
        published = paper.published
        if published is None:
            yield self.quarantine(
                "no_date", f"arXiv {paper.arxiv_id}: no <published> date", page_url, paper.title
            )
            return
        if not (self.since <= published < self.until):
            self.count("skipped/outside_window")
            return
        if not paper.abstract and not paper.title:
            yield self.quarantine(
                "no_text", f"arXiv {paper.arxiv_id}: no title or abstract", page_url
            )
            return
        self._taken += 1
        self.count("records")
        url = paper.url if paper.url.startswith(("http://", "https://")) else page_url
        yield make_record(
            source=self.source,
            kind=self.kind,
            native_id=paper.arxiv_id,
            url=url,
            title=paper.title or None,
            text=paper.abstract or paper.title,
            language=None,
            published_at=published,
            fetched_at=self.now(),
            author=", ".join(paper.authors)[:500] or None,
            meta={
                "arxiv_id": paper.arxiv_id,
                "version": paper.version,
                "authors": list(paper.authors),
                "categories": list(paper.categories),
                "primary_category": paper.primary_category,
                "updated": iso_utc(paper.updated) if paper.updated else None,
                "doi": paper.doi,
                "journal_ref": paper.journal_ref,
                "comment": paper.comment,
                "query": self.search_query(),
            },
        )

    def page_error(self, failure: Any) -> None:
        self._failed = True
        self.on_error(failure)

    def closed(self, reason: str) -> None:
        if self._complete and not self._failed:
            window = {"since": iso_utc(self.since), "until": iso_utc(self.until)}
            if window not in self.done:
                self.next_cursor = {"done": [*self.done, window][-DONE_MAX:]}
        super().closed(reason)
