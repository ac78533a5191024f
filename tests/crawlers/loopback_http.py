"""A small scripted HTTP server on loopback, for tests that need answers the world cannot give.

``LoopbackServer(routes)`` serves ``routes`` (path -> ``(status, headers, body)`` or a callable
taking the request's path, query and headers and returning one) on a free port of
``127.0.0.1`` in a background thread, and logs every request (path, query, headers, and its
``time.monotonic()`` as ``at``) in ``server.requests``. Unknown paths answer 404. Use it as a
context manager.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Answer = tuple[int, dict[str, str], bytes | str]
Route = Answer | Callable[[str, str, dict[str, str]], Answer]


class LoopbackServer:
    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append(
                    {"path": parts.path, "query": parts.query, "at": time.monotonic(), **headers}
                )
                route = server.routes.get(parts.path)
                if route is None:
                    status, extra, body = 404, {}, b"not here"
                elif callable(route):
                    status, extra, body = route(parts.path, parts.query, headers)
                else:
                    status, extra, body = route
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # The crawler may give up on an answer (a timeout, a kill): expected.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
