"""A Mastodon 4.x API subset over the scenario's accounts and posts, as an anonymous client sees it.

Endpoints (all ``GET``, no token needed, as on a public instance):

* ``/api/v1/timelines/public`` — ``local``, ``remote``, ``only_media``, ``limit`` (default 20,
  max 40), ``max_id``, ``since_id``, ``min_id``;
* ``/api/v1/timelines/tag/:hashtag`` — the same parameters, posts carrying the tag;
* ``/api/v1/accounts/:id/statuses`` — an account's posts *and boosts* (``exclude_reblogs``,
  ``exclude_replies``, paging as above);
* ``/api/v1/accounts/:id``, ``/api/v1/accounts/lookup?acct=``, ``/api/v1/statuses/:id``.

Fidelity notes, each matching Mastodon 4.x (recorded in ``shared/fixtures/mastodon``):

* Entities carry exactly the keys an anonymous request gets (no ``favourited``/``muted``...),
  with Mastodon's value types and nulls, and content rendered as Mastodon's HTML (``<p>``,
  ``h-card`` mentions, ``mention hashtag`` links, shortened links with ``invisible`` spans).
* Public and hashtag timelines do not show boosts (Mastodon's ``PublicFeed`` filters reblogs);
  boosts appear on account timelines, as a wrapper status whose ``reblog`` holds the original.
* ``min_id`` returns the page immediately newer than ``min_id``, still newest first;
  ``since_id`` the newest page above it; ``max_id`` the page below it.
* ``Link`` carries ``rel="next"`` (``max_id`` = the page's oldest id) and ``rel="prev"``
  (``min_id`` = its newest id) with the request's other paging parameters, keys sorted.
* Every response under ``/api/v1/`` carries ``X-RateLimit-Limit``/``-Remaining``/``-Reset``
  from a fixed-window budget per client (token, else address); past it: 429
  ``{"error": "Too many requests"}``.
* Consent fields (``discoverable``, ``indexable``, ``noindex``) are served as the scenario
  says; posts of opted-out accounts still appear, as on Mastodon: honouring them is the
  crawler's job.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from sandbox.http_messages import Request, Response, iso_millis
from sandbox.model import Account, Post, Scenario

DEFAULT_LIMIT = 20
MAX_LIMIT = 40


class ApiParamError(ValueError):
    """A query parameter is invalid; the message names it and what it accepts."""


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """A fixed-window request budget per client: ``limit`` requests per ``period_s`` seconds.

    Mastodon's default for API calls is 300 per 5 minutes.
    """

    limit: int = 300
    period_s: float = 300.0

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"RateLimit.limit must be >= 1, got {self.limit}")
        if not self.period_s > 0:
            raise ValueError(f"RateLimit.period_s must be > 0, got {self.period_s}")


class RateLimiter:
    """Counts requests per client in windows aligned to the period (as Rack::Attack does).

    Uses wall-clock time, not the world clock: the budget is about how fast a client calls,
    which moving the scenario's clock does not change.
    """

    def __init__(self, config: RateLimit, wall_clock: Callable[[], float] = time.time):
        self.config = config
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._counts: dict[str, int] = {}

    def hit(self, client: str) -> tuple[bool, int, datetime]:
        """Count one request; return (allowed, remaining, reset time)."""
        now = self._wall_clock()
        period = self.config.period_s
        window_start = (now // period) * period
        with self._lock:
            if window_start != self._window_start:
                self._window_start = window_start
                self._counts.clear()
            used = self._counts.get(client, 0) + 1
            self._counts[client] = used
        remaining = max(self.config.limit - used, 0)
        reset = datetime.fromtimestamp(window_start + period, UTC)
        return used <= self.config.limit, remaining, reset

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


# --- Mastodon's HTML rendering of plain text ---------------------------------------------------

# URLs first, so that a '#' or '@' inside a URL is not taken for a hashtag or a mention.
_TOKEN = re.compile(
    r"(?P<url>https?://[^\s<>\"]+)"
    r"|(?<![\w/@])@(?P<user>[A-Za-z0-9_]+)(?:@(?P<host>[A-Za-z0-9.-]+[A-Za-z0-9]))?"
    r"|(?<![\w/&#])#(?P<tag>\w*[^\W\d_]\w*)"
)
_URL_TRAILING = ".,;:!?)'\""
_LINK_DISPLAY_MAX = 30  # Mastodon shortens displayed URLs to 30 characters


def escape_html(text: str) -> str:
    """Escape like Rails' ``html_escape`` (``'`` becomes ``&#39;``, as in real statuses)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _link_html(url: str) -> str:
    match = re.match(r"(https?://(?:www\.)?)(.*)", url)
    prefix, rest = (match.group(1), match.group(2)) if match else ("", url)
    if len(rest) > _LINK_DISPLAY_MAX:
        shown = f'<span class="ellipsis">{escape_html(rest[:_LINK_DISPLAY_MAX])}</span>'
        hidden = escape_html(rest[_LINK_DISPLAY_MAX:])
    else:
        shown = f'<span class="">{escape_html(rest)}</span>'
        hidden = ""
    return (
        f'<a href="{escape_html(url)}" target="_blank" rel="nofollow noopener" translate="no">'
        f'<span class="invisible">{escape_html(prefix)}</span>{shown}'
        f'<span class="invisible">{hidden}</span></a>'
    )


@dataclasses.dataclass
class RenderedText:
    html: str
    mentions: list[Account]
    tags: list[str]  # lower-cased, in order of first appearance


class MastodonApi:
    """Renders the scenario's posts as a Mastodon instance at ``base_url``."""

    def __init__(self, scenario: Scenario, base_url: str, rate_limiter: RateLimiter | None = None):
        self.scenario = scenario
        self.base_url = base_url.rstrip("/")
        self.local_domain = urlsplit(self.base_url).hostname or "localhost"
        self.rate_limiter = rate_limiter
        self._accounts_by_id = {a.id: a for a in scenario.accounts}
        self._accounts_by_name = {a.username.lower(): a for a in scenario.accounts}
        self._accounts_by_acct = {a.acct.lower(): a for a in scenario.accounts}
        self._posts_by_key = {p.key: p for p in scenario.posts}
        self._posts_by_id = {p.id: p for p in scenario.posts}
        self._rendered: dict[tuple[str, str], RenderedText] = {}

    # --- routing ---------------------------------------------------------------------------

    def handle(self, request: Request, now: datetime) -> Response:
        """Answer one request under ``/api/v1/`` at world time ``now``."""
        limits: dict[str, str] = {}
        if self.rate_limiter is not None:
            key = request.headers.get("authorization") or request.client
            allowed, remaining, reset = self.rate_limiter.hit(key)
            limits = {
                "X-RateLimit-Limit": str(self.rate_limiter.config.limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            if not allowed:
                return Response.json({"error": "Too many requests"}, 429, limits)
        if request.method not in ("GET", "HEAD"):
            response = Response.json({"error": "This sandbox instance is read-only"}, 405)
        else:
            try:
                response = self._route(request, now)
            except ApiParamError as exc:
                # Mastodon answers invalid parameters with 400/422 and {"error": message}.
                response = Response.json({"error": str(exc)}, 400)
        response.headers.update(limits)
        return response

    def _route(self, request: Request, now: datetime) -> Response:
        path = request.path.rstrip("/")
        if path == "/api/v1/timelines/public":
            local, remote = _bool_param(request, "local"), _bool_param(request, "remote")
            statuses = [
                p
                for p in self._timeline_posts(now, include_boosts=False)
                if self._origin_ok(p, local, remote)
            ]
            return self._page(request, now, statuses, ("local", "remote", "only_media", "limit"))
        if match := re.fullmatch(r"/api/v1/timelines/tag/([^/]+)", path):
            tag = match.group(1).lstrip("#").lower()
            local, remote = _bool_param(request, "local"), _bool_param(request, "remote")
            statuses = [
                p
                for p in self._timeline_posts(now, include_boosts=False)
                if tag in self.render(p, now).tags and self._origin_ok(p, local, remote)
            ]
            keys = ("local", "remote", "only_media", "limit", "any[]", "all[]", "none[]")
            return self._page(request, now, statuses, keys)
        if path == "/api/v1/accounts/lookup":
            acct = (request.param("acct") or "").lstrip("@").lower()
            if not acct:
                raise ApiParamError("acct is required (a username, or username@domain)")
            account = self._accounts_by_acct.get(acct)
            if account is None and acct.endswith("@" + self.local_domain):
                account = self._accounts_by_acct.get(acct.rsplit("@", 1)[0])
            if account is None or account.created_at > now:
                return _not_found()
            return Response.json(self.account_json(account, now))
        if match := re.fullmatch(r"/api/v1/accounts/(\d+)(/statuses)?", path):
            account = self._accounts_by_id.get(match.group(1))
            if account is None or account.created_at > now:
                return _not_found()
            if not match.group(2):
                return Response.json(self.account_json(account, now))
            no_boosts = _bool_param(request, "exclude_reblogs")
            no_replies = _bool_param(request, "exclude_replies")
            statuses = [
                p
                for p in self._timeline_posts(now, include_boosts=not no_boosts)
                if p.account == account.username and not (no_replies and p.in_reply_to)
            ]
            keys = ("exclude_reblogs", "exclude_replies", "only_media", "limit")
            return self._page(request, now, statuses, keys)
        if match := re.fullmatch(r"/api/v1/statuses/(\d+)", path):
            post = self._posts_by_id.get(match.group(1))
            if post is None or not self._visible(post, now):
                return _not_found()
            return Response.json(self.status_json(post, now))
        return Response.json({"error": "Not found"}, 404)

    # --- timelines and paging --------------------------------------------------------------

    def _visible(self, post: Post, now: datetime) -> bool:
        if not post.visible_at(now):
            return False
        if post.reblog_of is not None:
            # A boost disappears with its original (Mastodon deletes reblogs of deleted posts).
            original = self._posts_by_key.get(post.reblog_of)
            return original is not None and original.visible_at(now)
        return True

    def _timeline_posts(self, now: datetime, include_boosts: bool) -> list[Post]:
        return [
            p
            for p in self.scenario.posts_at(now)
            if self._visible(p, now) and (include_boosts or p.reblog_of is None)
        ]

    def _origin_ok(self, post: Post, local: bool, remote: bool) -> bool:
        is_local = self.scenario.account(post.account).domain is None
        return not (local and not is_local) and not (remote and is_local)

    def _page(
        self, request: Request, now: datetime, statuses: list[Post], carried: Iterable[str]
    ) -> Response:
        limit = _limit_param(request)
        max_id = _id_param(request, "max_id")
        since_id = _id_param(request, "since_id")
        min_id = _id_param(request, "min_id")
        if _bool_param(request, "only_media"):
            statuses = []  # the scenario has no media attachments
        page = paginate(statuses, limit, max_id=max_id, since_id=since_id, min_id=min_id)
        headers = {}
        if page:
            base = self.base_url + quote(request.path)
            kept = {k: request.query[k] for k in carried if k in request.query}
            next_q = _sorted_query({**kept, "max_id": [page[-1].id]})
            prev_q = _sorted_query({**kept, "min_id": [page[0].id]})
            headers["Link"] = f'<{base}?{next_q}>; rel="next", <{base}?{prev_q}>; rel="prev"'
        return Response.json([self.status_json(p, now) for p in page], headers=headers)

    # --- entities ----------------------------------------------------------------------------

    def account_url(self, account: Account) -> str:
        if account.domain is None:
            return f"{self.base_url}/@{account.username}"
        return f"https://{account.domain}/@{account.username}"

    def account_uri(self, account: Account) -> str:
        if account.domain is None:
            return f"{self.base_url}/ap/users/{account.id}"
        return f"https://{account.domain}/users/{account.username}"

    def account_json(self, account: Account, now: datetime) -> dict[str, Any]:
        """The Account entity (Mastodon 4.x key order and types)."""
        own = [
            p
            for p in self.scenario.posts
            if p.account == account.username and self._visible(p, now)
        ]
        last = max((p.created_at for p in own), default=None)
        avatar = f"{self.base_url}/avatars/original/missing.png"
        header = f"{self.base_url}/headers/original/missing.png"
        note = "".join(f"<p>{escape_html(line)}</p>" for line in account.note.split("\n\n") if line)
        return {
            "id": account.id,
            "username": account.username,
            "acct": account.acct,
            "display_name": account.display_name,
            "locked": account.locked,
            "bot": account.bot,
            "discoverable": account.discoverable,
            "indexable": account.indexable,
            "group": False,
            # Mastodon rounds account creation to the day.
            "created_at": iso_millis(
                account.created_at.astimezone(UTC).replace(
                    hour=0, minute=0, second=0, microsecond=0
                )
            ),
            "note": note,
            "url": self.account_url(account),
            "uri": self.account_uri(account),
            "avatar": avatar,
            "avatar_static": avatar,
            "avatar_description": "",
            "header": header,
            "header_static": header,
            "header_description": "",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": len(own),
            "last_status_at": last.astimezone(UTC).date().isoformat() if last else None,
            "hide_collections": None,
            "show_media": True,
            "show_media_replies": True,
            "show_featured": True,
            "noindex": account.noindex,
            "feature_approval": {
                "automatic": ["public"] if account.discoverable else [],
                "manual": [],
                "current_user": "denied",
            },
            "emojis": [],
            "roles": [],
            "fields": [],
        }

    def render(self, post: Post, now: datetime) -> RenderedText:
        """The post's text at ``now`` as Mastodon HTML, with the mentions and tags it carries."""
        text = post.text_at(now)
        cache_key = (post.key, text)
        cached = self._rendered.get(cache_key)
        if cached is None:
            cached = self._render_text(text)
            self._rendered[cache_key] = cached
        return cached

    def _render_text(self, text: str) -> RenderedText:
        mentions: list[Account] = []
        tags: list[str] = []

        def token_html(match: re.Match[str]) -> str:
            if match.group("url"):
                url = match.group("url")
                trail = ""
                while url and url[-1] in _URL_TRAILING:
                    url, trail = url[:-1], url[-1] + trail
                return _link_html(url) + escape_html(trail)
            if match.group("tag"):
                name = match.group("tag")
                if name.lower() not in tags:
                    tags.append(name.lower())
                href = f"{self.base_url}/tags/{quote(name.lower())}"
                return (
                    f'<a href="{href}" class="mention hashtag" rel="tag">'
                    f"#<span>{escape_html(name)}</span></a>"
                )
            account = self._resolve_mention(match.group("user"), match.group("host"))
            if account is None:
                return escape_html(match.group(0))
            if account not in mentions:
                mentions.append(account)
            return (
                f'<span class="h-card" translate="no"><a href="{self.account_url(account)}" '
                f'class="u-url mention">@<span>{escape_html(account.username)}</span></a></span>'
            )

        def inline(segment: str) -> str:
            out, pos = [], 0
            for match in _TOKEN.finditer(segment):
                out.append(escape_html(segment[pos : match.start()]))
                out.append(token_html(match))
                pos = match.end()
            out.append(escape_html(segment[pos:]))
            return "".join(out)

        paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
        html = "".join(
            "<p>" + "<br />".join(inline(line) for line in para.split("\n")) + "</p>"
            for para in paragraphs
        )
        return RenderedText(html, mentions, tags)

    def _resolve_mention(self, user: str, host: str | None) -> Account | None:
        if host is None or host.lower() == self.local_domain.lower():
            account = self._accounts_by_name.get(user.lower())
            return account if account is not None and account.domain is None else None
        return self._accounts_by_acct.get(f"{user}@{host}".lower())

    def status_json(self, post: Post, now: datetime) -> dict[str, Any]:
        """The Status entity an anonymous client gets (Mastodon 4.x key order and types)."""
        account = self.scenario.account(post.account)
        if post.reblog_of is not None:
            original = self._posts_by_key[post.reblog_of]
            uri = f"{self.base_url}/ap/users/{account.id}/statuses/{post.id}/activity"
            url = f"{self.base_url}/users/{account.username}/statuses/{post.id}/activity"
            if account.domain is not None:
                uri = (
                    f"https://{account.domain}/users/{account.username}/statuses/{post.id}/activity"
                )
                url = uri
            return self._status_dict(
                post,
                account,
                now,
                uri=uri,
                url=url,
                content="",
                language=None,
                reblog=self.status_json(original, now),
                application=None,
                rendered=RenderedText("", [], []),
            )
        if account.domain is None:
            uri = f"{self.base_url}/ap/users/{account.id}/statuses/{post.id}"
            url = f"{self.base_url}/@{account.username}/{post.id}"
        else:
            uri = f"https://{account.domain}/users/{account.username}/statuses/{post.id}"
            url = f"https://{account.domain}/@{account.username}/{post.id}"
        rendered = self.render(post, now)
        return self._status_dict(
            post,
            account,
            now,
            uri=uri,
            url=url,
            content=rendered.html,
            language=post.language,
            reblog=None,
            application={"name": "Web", "website": None} if account.domain is None else None,
            rendered=rendered,
        )

    def _status_dict(
        self,
        post: Post,
        account: Account,
        now: datetime,
        *,
        uri: str,
        url: str,
        content: str,
        language: str | None,
        reblog: dict[str, Any] | None,
        application: dict[str, Any] | None,
        rendered: RenderedText,
    ) -> dict[str, Any]:
        parent = self._posts_by_key.get(post.in_reply_to) if post.in_reply_to else None
        visible = [p for p in self.scenario.posts if self._visible(p, now)]
        replies = sum(1 for p in visible if p.in_reply_to == post.key)
        reblogs = sum(1 for p in visible if p.reblog_of == post.key)
        edited = post.edited_at is not None and post.edited_at <= now and reblog is None
        return {
            "id": post.id,
            "created_at": iso_millis(post.created_at),
            "in_reply_to_id": parent.id if parent else None,
            "in_reply_to_account_id": (
                self.scenario.account(parent.account).id if parent else None
            ),
            "sensitive": post.sensitive,
            "spoiler_text": post.spoiler_text,
            "visibility": "public",
            "language": language,
            "uri": uri,
            "url": url,
            "replies_count": replies,
            "reblogs_count": reblogs,
            "favourites_count": 0,
            "quotes_count": 0,
            "edited_at": iso_millis(post.edited_at) if edited and post.edited_at else None,
            "content": content,
            "reblog": reblog,
            "application": application,
            "account": self.account_json(account, now),
            "media_attachments": [],
            "mentions": [
                {
                    "id": m.id,
                    "username": m.username,
                    "url": self.account_url(m),
                    "acct": m.acct,
                }
                for m in rendered.mentions
            ],
            "tags": [{"name": t, "url": f"{self.base_url}/tags/{quote(t)}"} for t in rendered.tags],
            "emojis": [],
            "tagged_collections": [],
            "quote": None,
            "card": None,
            "poll": None,
            "quote_approval": {"automatic": ["public"], "manual": [], "current_user": "denied"},
        }


def paginate(
    statuses: list[Post],
    limit: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
) -> list[Post]:
    """Mastodon's ``paginate_by_id`` over statuses sorted newest first.

    ``min_id`` takes the ``limit`` statuses just above it (then newest first, as Mastodon
    reverses them); otherwise the newest ``limit`` below ``max_id`` and above ``since_id``.
    """
    items = [p for p in statuses if max_id is None or int(p.id) < max_id]
    if min_id is not None:
        items = [p for p in items if int(p.id) > min_id]
        return items[-limit:] if items else []
    if since_id is not None:
        items = [p for p in items if int(p.id) > since_id]
    return items[:limit]


def _not_found() -> Response:
    return Response.json({"error": "Record not found"}, 404)


def _sorted_query(params: dict[str, list[str]]) -> str:
    # Rails builds pagination URLs with Hash#to_query: keys sorted, values form-encoded.
    return urlencode([(k, v) for k in sorted(params) for v in params[k]])


_TRUE = {"1", "true", "t", "on", "yes"}
_FALSE = {"0", "false", "f", "off", "no", ""}


def _bool_param(request: Request, name: str) -> bool:
    raw = request.param(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiParamError(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def _limit_param(request: Request) -> int:
    raw = request.param("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise ApiParamError(
            f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}"
        ) from None
    if value < 1:
        raise ApiParamError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")
    return min(value, MAX_LIMIT)  # Mastodon clamps large limits silently


def _id_param(request: Request, name: str) -> int | None:
    raw = request.param(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ApiParamError(f"{name} must be a status id (decimal digits), got {raw!r}")
    return int(raw)
