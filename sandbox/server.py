"""The sandbox world server: one HTTP port serving the news site, Mastodon, arXiv and a Slack sink.

Usage::

    from sandbox.server import WorldServer

    with WorldServer(port=0) as world:          # the packaged scenario, clock at its start
        requests.get(world.url + "/news/feeds/all.rss")
        world.clock.advance(days=1)             # or POST /_world/clock {"advance": "1d"}

Routing (first match wins):

==============================  ===================================================
``/_world/...``                 control and introspection (below); never faulted
``/api/v1/...``                 Mastodon (:mod:`sandbox.mastodon_api`)
``/api/query``                  arXiv (:mod:`sandbox.arxiv_api`)
``/api/<method.name>``          Slack Web API (:mod:`sandbox.slack_sink`)
``/services/T../B../..``        Slack incoming webhooks
anything else                   the news site (:mod:`sandbox.news_site`)
==============================  ===================================================

Control endpoints (JSON in and out; bad input answers 400 ``{"error": "<what was wrong>"}``):

* ``GET /_world/health`` — ``{"ok": true, "scenario", "now", "url"}``.
* ``GET /_world/clock`` — ``{"now", "start", "day"}``; ``POST`` one of ``{"now": "<when>"}``
  (:func:`sandbox.clock.parse_when` syntax: ISO timestamp with zone, a date, ``day:N``,
  ``day:N@HH:MM``), ``{"advance": "1d6h"}`` or ``{"advance": {"days": 1, "hours": 6}}``,
  ``{"reset": true}``.
* ``GET /_world/probes`` — the fact probes available at now, with evidence URLs, the fact
  they supersede and whether they are still current.
* ``GET|DELETE /_world/slack/messages`` — the recorded Slack messages; DELETE clears.
* ``GET|POST|DELETE /_world/faults`` — fault injection (:mod:`sandbox.faults`).
* ``GET|DELETE /_world/requests`` — the last requests served (method, path, status, agent).
* ``POST /_world/reset`` — clock to start, faults, Slack messages, budgets and log cleared.

HTTP behaviour: every ``200`` GET of the news site carries a strong ``ETag`` (hash of the
body) and ``Last-Modified`` (newest visible item) and answers ``If-None-Match`` /
``If-Modified-Since`` with 304; Mastodon responses carry a weak ETag as Rails does. Links in
bodies are absolute, built from ``public_url`` (default: the bound address).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import re
import socket
import threading
import time
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.arxiv_api import ArxivApi
from sandbox.clock import WorldClock, parse_duration, parse_when
from sandbox.faults import FaultInjector, FaultRuleError, parse_rules
from sandbox.http_messages import Request, Response, http_date, iso_millis, iso_seconds
from sandbox.mastodon_api import MastodonApi, RateLimit, RateLimiter
from sandbox.model import Scenario
from sandbox.news_site import NewsSite
from sandbox.slack_sink import SlackSink

log = logging.getLogger("sandbox")

_SLACK_METHOD = re.compile(r"/api/[a-z]+(?:\.[A-Za-z]+)+")
_MAX_BODY = 1 << 20  # control payloads and Slack messages are small; refuse anything huge
REQUEST_LOG_SIZE = 2000
_ADVANCE_UNITS = ("days", "hours", "minutes")


class ControlError(ValueError):
    """Invalid control input; answered as 400 with the message."""


class WorldServer:
    """The sandbox world on one port, served from a background thread.

    ``scenario`` defaults to the packaged one (:func:`sandbox.scenario.load_scenario`);
    ``start`` (a datetime or a :func:`~sandbox.clock.parse_when` string) defaults to the
    scenario's start; ``public_url`` is the base of every link in bodies (default: the bound
    address); ``rate_limit`` is the Mastodon budget per client (None: unlimited);
    ``crawl_delay`` is what robots.txt asks for, in seconds.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        start: datetime | str | None = None,
        public_url: str | None = None,
        rate_limit: RateLimit | None = RateLimit(),  # noqa: B008 - frozen, so safe to share
        crawl_delay: float = 1.0,
    ):
        if scenario is None:
            from sandbox.scenario import load_scenario

            scenario = load_scenario()
        self.scenario = scenario
        self.host = host
        self.port = port
        if isinstance(start, str):
            start = self.parse_when(start)
        self.clock = WorldClock(start or scenario.start)
        self.faults = FaultInjector()
        self.slack = SlackSink()
        self.rate_limiter = RateLimiter(rate_limit) if rate_limit is not None else None
        self.crawl_delay = crawl_delay
        self._public_url = public_url.rstrip("/") if public_url else None
        self._requests: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=REQUEST_LOG_SIZE
        )
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.news: NewsSite | None = None
        self.mastodon: MastodonApi | None = None
        self.arxiv: ArxivApi | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> WorldServer:
        """Bind the port and serve in a daemon thread; returns self. Idempotent."""
        if self._httpd is not None:
            return self
        httpd = _WorldHTTPServer((self.host, self.port), _Handler)
        httpd.world = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._build_services(self.public_url)
        self._thread = threading.Thread(
            target=httpd.serve_forever, name=f"world-server:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def _build_services(self, base_url: str) -> None:
        self.news = NewsSite(self.scenario, base_url, crawl_delay=self.crawl_delay)
        self.mastodon = MastodonApi(self.scenario, base_url, self.rate_limiter)
        self.arxiv = ArxivApi(self.scenario, base_url)

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> WorldServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The address the server listens on, e.g. ``http://127.0.0.1:8766``."""
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"  # a wildcard bind is reachable on loopback
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def public_url(self) -> str:
        """The base URL used in links inside responses."""
        return self._public_url or self.url

    def reset(self) -> None:
        """Back to the start: clock, faults, Slack messages, rate budgets and request log."""
        self.clock.reset()
        self.faults.clear()
        self.slack.clear()
        if self.rate_limiter is not None:
            self.rate_limiter.reset()
        self._requests.clear()

    def parse_when(self, text: str) -> datetime:
        """:func:`~sandbox.clock.parse_when` for this scenario's days."""
        days = self.scenario.days
        if not days:
            return parse_when(text)
        return parse_when(text, day_one=days[0].date, days=len(days))

    def requests_log(self) -> list[dict[str, Any]]:
        return list(self._requests)

    # --- dispatch --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request (no sockets involved: tests may call this directly)."""
        if self.news is None:
            self._build_services(self.public_url)
        assert self.news and self.mastodon and self.arxiv
        now = self.clock.now()
        path = request.path
        if path.startswith("/_world/"):
            response = self._control(request, now)
        elif path.startswith("/api/v1/"):
            response = self.mastodon.handle(request, now)
            if response.status == 200 and request.method in ("GET", "HEAD"):
                response.headers["ETag"] = 'W/"' + hashlib.md5(response.body).hexdigest() + '"'
        elif path == "/api/query":
            response = self.arxiv.handle(request, now)
        elif _SLACK_METHOD.fullmatch(path):
            response = self.slack.handle_web_api(request, now)
        elif path.startswith("/services/"):
            response = self.slack.handle_webhook(request, now)
        else:
            response = self.news.handle(request, now)
            if response.status == 200 and request.method in ("GET", "HEAD"):
                digest = hashlib.sha256(response.body).hexdigest()[:32]
                response.headers["ETag"] = f'"{digest}"'
                # Caches must revalidate: content changes whenever the world clock moves.
                response.headers["Cache-Control"] = "no-cache"
        if response.last_modified is not None:
            response.headers["Last-Modified"] = http_date(response.last_modified)
        return _conditional(request, response)

    # --- control endpoints ---------------------------------------------------------------

    def _control(self, request: Request, now: datetime) -> Response:
        path, method = request.path.rstrip("/"), request.method
        try:
            if path == "/_world/health":
                return Response.json(
                    {
                        "ok": True,
                        "scenario": self.scenario.name,
                        "now": iso_seconds(now),
                        "url": self.public_url,
                    }
                )
            if path == "/_world/clock":
                if method == "POST":
                    self._move_clock(_json_body(request))
                elif method not in ("GET", "HEAD"):
                    return _method_not_allowed(method, "GET, POST")
                return Response.json(self._clock_json())
            if path == "/_world/probes":
                return Response.json({"now": iso_seconds(now), "probes": self._probes(now)})
            if path == "/_world/slack/messages":
                if method == "DELETE":
                    cleared = len(self.slack.messages())
                    self.slack.clear()
                    return Response.json({"ok": True, "cleared": cleared})
                return Response.json(self.slack.messages())
            if path == "/_world/faults":
                if method == "POST":
                    rules = parse_rules(_json_body(request))
                    self.faults.add(rules)
                    return Response.json({"ok": True, "rules": self.faults.rules()})
                if method == "DELETE":
                    self.faults.clear()
                    return Response.json({"ok": True, "rules": []})
                return Response.json({"rules": self.faults.rules()})
            if path == "/_world/requests":
                if method == "DELETE":
                    self._requests.clear()
                    return Response.json({"ok": True})
                return Response.json(self.requests_log())
            if path == "/_world/reset":
                if method != "POST":
                    return _method_not_allowed(method, "POST")
                self.reset()
                return Response.json({"ok": True, **self._clock_json()})
        except (ControlError, FaultRuleError) as exc:
            return Response.json({"error": str(exc)}, 400)
        endpoints = [
            "/_world/health",
            "/_world/clock",
            "/_world/probes",
            "/_world/slack/messages",
            "/_world/faults",
            "/_world/requests",
            "/_world/reset",
        ]
        return Response.json({"error": f"no control endpoint {path}", "endpoints": endpoints}, 404)

    def _clock_json(self) -> dict[str, Any]:
        now = self.clock.now()
        day = self.scenario.day_of(now)
        return {
            "now": iso_seconds(now),
            "start": iso_seconds(self.clock.start),
            "day": day.number if day else None,
        }

    def _move_clock(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise ControlError(
                'expected a JSON object: {"now": ...}, {"advance": ...} or {"reset": true}'
            )
        actions = [k for k in ("now", "advance", "reset") if k in body]
        unknown = set(body) - {"now", "advance", "reset"}
        if unknown or len(actions) != 1:
            raise ControlError(
                'give exactly one of "now" (e.g. "day:2" or "2026-11-03T02:00:00Z"), '
                '"advance" (e.g. "1d6h" or {"days": 1}) or "reset": true; got keys '
                f"{sorted(body)}"
            )
        action = actions[0]
        try:
            if action == "now":
                if not isinstance(body["now"], str):
                    raise ControlError(f'"now" must be a string, got {body["now"]!r}')
                self.clock.set(self.parse_when(body["now"]))
            elif action == "advance":
                self.clock.advance(**_advance_amount(body["advance"]))
            elif body["reset"] is True:
                self.clock.reset()
            else:
                raise ControlError(f'"reset" must be true, got {body["reset"]!r}')
        except ValueError as exc:  # parse_when/parse_duration/advance say what was wrong
            raise ControlError(str(exc)) from None

    def _probes(self, now: datetime) -> list[dict[str, Any]]:
        assert self.news and self.mastodon
        articles = {a.slug: a for a in (*self.scenario.archive, *self.scenario.articles)}
        posts = {p.key: p for p in self.scenario.posts}
        papers = {p.arxiv_id: p for p in self.scenario.papers}
        current = {f.key for f in self.scenario.current_facts_at(now)}
        probes = []
        for fact in self.scenario.facts_at(now):
            evidence = []
            for ref in fact.evidence:
                kind, _, key = ref.partition(":")
                url, visible = None, False
                if kind == "article" and key in articles:
                    article = articles[key]
                    url = self.news.url(self.news.article_path(article))
                    visible = article.published_at <= now
                elif kind == "post" and key in posts:
                    post = posts[key]
                    url = f"{self.public_url}/api/v1/statuses/{post.id}"
                    visible = post.visible_at(now)
                elif kind == "paper" and key in papers:
                    url = f"{self.public_url}/abs/{key}"
                    visible = papers[key].published_at <= now
                evidence.append({"ref": ref, "url": url, "visible": visible})
            probes.append(
                {
                    "key": fact.key,
                    "question": fact.question,
                    "answer": fact.answer,
                    "persona": fact.persona,
                    "distractors": list(fact.distractors),
                    "available_at": iso_seconds(fact.available_at),
                    "supersedes": fact.supersedes,
                    "current": fact.key in current,  # False once a later fact replaces it
                    "evidence": evidence,
                }
            )
        return probes

    def _log_request(self, request: Request, status: int, size: int, started: float) -> None:
        """Remember the request for ``/_world/requests`` and log one line for it."""
        entry = {
            "method": request.method,
            "path": request.path,
            "query": {k: v[-1] if len(v) == 1 else v for k, v in request.query.items()},
            "status": status,
            "bytes": size,
            "user_agent": request.headers.get("user-agent"),
            "client": request.client,
            "at": iso_millis(datetime.fromtimestamp(started).astimezone()),
            "world_now": iso_seconds(self.clock.now()),
        }
        if not request.path.startswith("/_world/requests"):
            self._requests.append(entry)
        elapsed_ms = (time.time() - started) * 1000
        log.info(
            "%s %s%s %d %dB %.1fms world=%s",
            request.method,
            request.path,
            "?" + "&".join(f"{k}={v}" for k, v in entry["query"].items()) if request.query else "",
            status,
            size,
            elapsed_ms,
            entry["world_now"],
        )


def _advance_amount(raw: Any) -> dict[str, float]:
    if isinstance(raw, str):
        step = parse_duration(raw)
        return {"days": step.days, "hours": 0, "minutes": step.seconds / 60}
    if isinstance(raw, dict) and raw:
        unknown = set(raw) - set(_ADVANCE_UNITS)
        if unknown:
            accepted, got = ", ".join(_ADVANCE_UNITS), ", ".join(sorted(unknown))
            raise ControlError(f'"advance" accepts {accepted}; unknown: {got}')
        amount = {}
        for unit, value in raw.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ControlError(f'"advance".{unit} must be a number >= 0, got {value!r}')
            amount[unit] = value
        if timedelta(**amount) <= timedelta(0):
            raise ControlError('"advance" must move the clock forward by more than zero')
        return amount
    raise ControlError(
        f'"advance" must be a duration like "1d6h" or an object like {{"days": 1}}, got {raw!r}'
    )


def _json_body(request: Request) -> Any:
    if not request.body.strip():
        raise ControlError("the request body is empty; send JSON")
    try:
        return json.loads(request.body)
    except ValueError as exc:
        raise ControlError(f"the request body is not valid JSON: {exc}") from None


def _method_not_allowed(method: str, allowed: str) -> Response:
    response = Response.json({"error": f"{method} not allowed here; use {allowed}"}, 405)
    response.headers["Allow"] = allowed
    return response


def _conditional(request: Request, response: Response) -> Response:
    """Turn a 200 GET into 304 when the client's validators still match (RFC 9110 §13)."""
    if request.method not in ("GET", "HEAD") or response.status != 200:
        return response
    etag = response.headers.get("ETag")
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # If-None-Match wins over If-Modified-Since; weak comparison, as for GET.
        if etag is None:
            return response
        wanted = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        if "*" not in wanted and etag.removeprefix("W/") not in wanted:
            return response
    else:
        since = request.headers.get("if-modified-since")
        if since is None or response.last_modified is None:
            return response
        try:
            since_at = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return response  # an unparseable date is ignored, as RFC 9110 says
        if since_at.tzinfo is None or response.last_modified.replace(microsecond=0) > since_at:
            return response
    kept = {
        k: v for k, v in response.headers.items() if k in ("ETag", "Last-Modified", "Cache-Control")
    }
    return Response(304, b"", response.content_type, kept)


class _WorldHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    world: WorldServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FreshLMWorld/0.1"
    server: _WorldHTTPServer

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _serve(self) -> None:
        started = time.time()
        world = self.server.world
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self._write(Response.json({"error": f"Content-Length must be 0..{_MAX_BODY}"}, 413))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        request = Request.from_target(
            self.command, self.path, dict(self.headers.items()), body, self.client_address[0]
        )
        fault = world.faults.take(request.method, request.path)
        if fault is not None:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.drop:
                world._log_request(request, 0, 0, started)
                self.close_connection = True
                with contextlib.suppress(OSError):  # the peer may be gone already
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
        if fault is not None and fault.status is not None:
            response = Response(fault.status, fault.response_body(), fault.content_type)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = f"{fault.retry_after:g}"
        else:
            try:
                response = world.handle(request)
            except Exception:  # a bug must answer 500 and be logged, not kill the thread
                log.exception("error serving %s %s", request.method, self.path)
                response = Response.text("Internal Server Error", 500)
        # Log first: a client that gave up (timeout, size limit) still made the request, and
        # crawler tests read the log to check what was fetched.
        world._log_request(request, response.status, len(response.body), started)
        try:
            self._write(response, head=request.method == "HEAD")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up mid-response; nothing to do

    def _write(self, response: Response, head: bool = False) -> None:
        self.send_response(response.status)
        if response.status != 304:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 304:  # a 304 has no body, whatever the length
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if not head and response.status != 304:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request comes from WorldServer._log_request; silence the default.
        pass
