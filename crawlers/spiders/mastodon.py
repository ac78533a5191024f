"""The ``mastodon`` spider: public and hashtag timelines of one instance, paged forward.

Run by hand::

    scrapy crawl mastodon -a instance=https://mastodon.example -a hashtags=a,b -O out.jsonl \\
        [-a timelines=public|local|none] [-a page_size=40] [-a access_token_env=VAR] \\
        [-a window_start=... -a window_end=...] [-a cursor='{...}'] [-a cursor_out=PATH]

Behaviour:

* Timelines: ``public`` (default; ``local`` for the local-only public timeline; ``none`` for
  hashtags only) plus ``/api/v1/timelines/tag/<tag>`` for each hashtag.
* Paging goes forward in time: ``min_id`` = the cursor's last id for that timeline (first run:
  an id derived from window_start, Mastodon ids being time-ordered snowflakes; no window: the
  newest page only), then the ``Link: rel="prev"`` page, until an empty page, or until a page
  holds posts created at/after window_end (they are left for the next run: the cursor never
  moves past them).
* ``X-RateLimit-Remaining`` of 0 delays the next page until ``X-RateLimit-Reset`` (capped by
  ``FRESHLM_RETRY_AFTER_MAX``); a 429 is retried after the reset by the middleware.
* Consent: posts of accounts with ``noindex: true`` or ``indexable: false`` are skipped and
  counted (``skipped/opted_out``), never stored nor quarantined. A boost is unwrapped to its
  original (kept once, judged by its author's consent; the booster is named in
  ``meta.boosted_by`` only if the booster has not opted out). Edited posts are kept in their
  current version with ``meta.edited_at``; deleted posts are simply no longer served.
* A post already emitted by another timeline in the same run is not emitted again.
* Only the instance itself is paged: a ``Link`` to another host, scheme or port is not
  followed (``skipped/offsite_link``). An access token (``access_token_env``) needs an
  ``https://`` instance and is sent to that instance only.

Cursor: ``{"timelines": {"public": {"last_id": "..."}, "tag:tessford": {"last_id": "..."}}}``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import scrapy
from scrapy.http import Response

from crawlers.middlewares import DEFAULT_MAX_WAIT_S, WAIT_META_KEY
from crawlers.parsers.mastodon import (
    MastodonFormatError,
    Post,
    link_param,
    parse_link_header,
    parse_rate_limit,
    parse_timeline,
)
from crawlers.spiders.base import FreshSpider, SpiderArgumentError, split_list
from freshlm.records import make_record

MAX_PAGE_SIZE = 40


def snowflake_floor(when: datetime) -> int:
    """The smallest Mastodon id a status created at ``when`` can have, minus one."""
    return (int(when.timestamp() * 1000) << 16) - 1


class MastodonSpider(FreshSpider):
    name = "mastodon"
    kind = "sns"

    def __init__(
        self,
        *args: Any,
        instance: str | None = None,
        hashtags: str | None = None,
        timelines: str | None = None,
        page_size: str | None = None,
        access_token_env: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not instance or not instance.startswith(("http://", "https://")):
            raise SpiderArgumentError(
                f"-a instance={instance!r}: the instance's base URL is required, "
                "e.g. https://mastodon.social"
            )
        self.instance = instance.rstrip("/")
        self.hashtags = [h.lstrip("#") for h in split_list("hashtags", hashtags)]
        chosen = split_list("timelines", timelines) or ["public"]
        unknown = set(chosen) - {"public", "local", "none"}
        if unknown:
            raise SpiderArgumentError(
                f"-a timelines={timelines!r}: accepts public, local or none; got {sorted(unknown)}"
            )
        self.timelines = [t for t in chosen if t != "none"]
        try:
            self.page_size = min(int(page_size), MAX_PAGE_SIZE) if page_size else MAX_PAGE_SIZE
        except ValueError:
            raise SpiderArgumentError(f"-a page_size={page_size!r}: expected an integer") from None
        self.token = None
        if access_token_env:
            self.token = os.environ.get(access_token_env)
            if not self.token:
                raise SpiderArgumentError(
                    f"-a access_token_env={access_token_env}: that variable is not set"
                )
            if not self.instance.startswith("https://"):
                raise SpiderArgumentError(
                    f"-a access_token_env={access_token_env}: the token is only sent over https, "
                    f"and -a instance={self.instance} is plain http"
                )
        self.origin = _origin(self.instance)
        stored = self.cursor.get("timelines")
        self.positions: dict[str, dict[str, str]] = {
            k: dict(v) for k, v in (stored or {}).items() if isinstance(v, dict)
        }
        self.next_cursor = {"timelines": {k: dict(v) for k, v in self.positions.items()}}
        self._emitted: set[str] = set()
        self._taken = 0

    # --- requests ------------------------------------------------------------------------------

    def _timeline_paths(self) -> list[tuple[str, str, dict[str, str]]]:
        paths = []
        for timeline in self.timelines:
            params = {"local": "true"} if timeline == "local" else {}
            paths.append((timeline, "/api/v1/timelines/public", params))
        for tag in self.hashtags:
            key = f"tag:{tag.lower()}"
            paths.append((key, f"/api/v1/timelines/tag/{quote(tag, safe='')}", {}))
        return paths

    async def start(self) -> AsyncIterator[Any]:
        for key, path, params in self._timeline_paths():
            query = {**params, "limit": str(self.page_size)}
            last_id = (self.positions.get(key) or {}).get("last_id")
            if last_id:
                query["min_id"] = last_id
            elif self.window_start is not None:
                query["min_id"] = str(snowflake_floor(self.window_start))
            url = f"{self.instance}{path}?{urlencode(query)}"
            yield self._request(url, key, page=1)

    def _request(self, url: str, timeline: str, page: int, wait: float = 0.0) -> scrapy.Request:
        headers = {"Accept": "application/json"}
        # The token goes to the instance itself, over https, and nowhere else.
        if self.token and _origin(url) == self.origin and url.startswith("https://"):
            headers["Authorization"] = f"Bearer {self.token}"
        meta: dict[str, Any] = {}
        if wait > 0:
            meta[WAIT_META_KEY] = wait
        return scrapy.Request(
            url,
            headers=headers,
            callback=self.parse_timeline,
            errback=self.on_error,
            cb_kwargs={"timeline": timeline, "page": page},
            meta=meta,
            dont_filter=True,
        )

    # --- responses -------------------------------------------------------------------------------

    def parse_timeline(self, response: Response, timeline: str, page: int) -> Iterator[Any]:
        self.response_ok()
        self.count("pages")
        try:
            posts, problems = parse_timeline(response.body, self.instance)
        except MastodonFormatError as exc:
            yield self.quarantine("bad_json", f"{response.url}: {exc}", response.url, response.body)
            return
        for problem in problems:
            yield self.quarantine(
                "bad_status",
                f"{response.url} item #{problem.index}: {problem.detail}",
                response.url,
                problem.raw,
            )
        if not posts:
            return
        reached_end = False
        newest_taken: int | None = None
        # Pages come newest first; walk oldest first so the cursor advances in order.
        for post in sorted(posts, key=_order_key):
            if self.window_end and post.created_at >= self.window_end:
                reached_end = True
                self.count("skipped/after_window")
                continue
            if self.max_items is not None and self._taken >= self.max_items:
                reached_end = True
                self.count("skipped/max_items")
                break
            newest_taken = _order_key(post)
            yield from self._keep(post, timeline)
        if newest_taken is not None:
            self._advance(timeline, newest_taken)
        if reached_end:
            return
        prev_url = parse_link_header(response.headers.get("Link", b"").decode("latin-1")).get(
            "prev"
        )
        if not prev_url or not link_param(prev_url, "min_id"):
            return
        if _origin(prev_url) != self.origin:
            self.count("skipped/offsite_link")
            self.logger.warning(
                "not following the next page %s: it is not on the instance %s",
                prev_url,
                self.instance,
            )
            return
        if self.window_start is None and not (self.positions.get(timeline) or {}).get("last_id"):
            return  # no window and no cursor: one page of the newest posts, no backlog walk
        wait = self._rate_limit_wait(response)
        yield self._request(prev_url, timeline, page + 1, wait=wait)

    def _keep(self, post: Post, timeline: str) -> Iterator[Any]:
        if post.author_opted_out:
            self.count("skipped/opted_out")
            return
        if post.uri in self._emitted:
            self.count("skipped/duplicate")
            return
        if not post.text:
            self.count("skipped/no_text")
            return
        if not post.url.startswith(("http://", "https://")):
            yield self.quarantine("no_url", f"status {post.id} has no http(s) URL", post.uri)
            return
        self._emitted.add(post.uri)
        self._taken += 1
        self.count("records")
        if post.boosted_by:
            self.count("boosts_unwrapped")
        yield make_record(
            source=self.source,
            kind=self.kind,
            native_id=post.uri,
            url=post.url,
            title=None,
            text=post.text,
            language=post.language,
            published_at=post.created_at,
            fetched_at=self.now(),
            author=post.author,
            meta={
                "instance": self.instance,
                "timeline": timeline,
                "status_id": post.id,
                "tags": list(post.tags),
                "edited_at": post.edited_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                if post.edited_at
                else None,
                "in_reply_to_id": post.in_reply_to_id,
                "spoiler_text": post.spoiler_text,
                "sensitive": post.sensitive,
                "replies_count": post.replies_count,
                "reblogs_count": post.reblogs_count,
                "favourites_count": post.favourites_count,
                "boosted_by": None if post.booster_opted_out else post.boosted_by,
            },
        )

    # --- cursor and rate limits ------------------------------------------------------------------

    def _advance(self, timeline: str, status_id: int) -> None:
        position = self.next_cursor["timelines"].setdefault(timeline, {})
        current = position.get("last_id")
        if current is None or int(current) < status_id:
            position["last_id"] = str(status_id)

    def _rate_limit_wait(self, response: Response) -> float:
        headers = {k.decode(): v[-1].decode("latin-1") for k, v in response.headers.items()}
        limits = parse_rate_limit(headers)
        if limits.remaining is None or limits.remaining > 0 or limits.reset is None:
            return 0.0
        cap = self.settings.getfloat("FRESHLM_RETRY_AFTER_MAX", DEFAULT_MAX_WAIT_S)
        wait = max((limits.reset - datetime.now(UTC)).total_seconds(), 0.0)
        self.count("rate_limit_waits")
        self.logger.info("rate-limit budget spent; waiting %.1fs for the reset", min(wait, cap))
        return min(wait, cap)


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, default ports filled in: what "the same server" means."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port or default


def _order_key(post: Post) -> int:
    """Paging order: the wrapper's id for a boost (that is what the timeline pages by)."""
    ident = post.boost_id or post.id
    return int(ident) if ident.isdigit() else 0
