"""Fault injection: make the next N matching requests fail, stall or drop, for crawler tests.

``POST /_world/faults`` takes a rule or a list of rules (or ``{"rules": [...]}``); rules add to
the ones already armed. ``GET`` lists them with their remaining counts; ``DELETE`` clears them.
A rule::

    {
      "path_prefix": "/news/feeds/",   # required; matches request paths starting with it
      "method": "GET",                 # optional; any method when absent
      "status": 503,                   # answer this status instead of the real response
      "times": 2,                      # how many matching requests it hits (default 1)
      "retry_after": 10,               # optional Retry-After header, in seconds
      "delay_s": 0.5,                  # optional pause before answering (0..30 s)
      "drop": false,                   # true: close the connection without any answer
      "body": "Service Unavailable",   # optional body (default: the status's reason phrase)
      "content_type": "text/plain; charset=utf-8"
    }

A rule needs at least one of ``status``, ``delay_s`` or ``drop``. With only ``delay_s`` the real
response is served after the pause (a slow server). The first armed rule that matches wins
and spends one of its ``times``. Requests under ``/_world/`` are never faulted, so the
control endpoints stay usable.
"""

from __future__ import annotations

import dataclasses
import threading
from http import HTTPStatus
from typing import Any

MAX_DELAY_S = 30.0
_FIELDS = {
    "path_prefix",
    "method",
    "status",
    "times",
    "retry_after",
    "delay_s",
    "drop",
    "body",
    "content_type",
}


class FaultRuleError(ValueError):
    """A fault rule is invalid; the message names the rule's index and field."""


@dataclasses.dataclass
class FaultRule:
    path_prefix: str
    method: str | None = None
    status: int | None = None
    times: int = 1
    retry_after: float | None = None
    delay_s: float = 0.0
    drop: bool = False
    body: str | None = None
    content_type: str = "text/plain; charset=utf-8"
    hits: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.hits

    def response_body(self) -> bytes:
        if self.body is not None:
            return self.body.encode()
        assert self.status is not None
        try:
            return HTTPStatus(self.status).phrase.encode()
        except ValueError:
            return b"Injected fault"

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["remaining"] = self.remaining
        return data


def parse_rules(payload: Any) -> list[FaultRule]:
    """Validate control input into rules; raise FaultRuleError naming what was wrong."""
    if isinstance(payload, dict) and "rules" in payload:
        payload = payload["rules"]
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not payload:
        raise FaultRuleError(
            'expected a rule object, a non-empty list of rules, or {"rules": [...]}'
        )
    return [_parse_rule(i, raw) for i, raw in enumerate(payload)]


def _parse_rule(index: int, raw: Any) -> FaultRule:
    where = f"rule {index}"
    if not isinstance(raw, dict):
        raise FaultRuleError(f"{where}: must be an object, got {type(raw).__name__}")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise FaultRuleError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_FIELDS))}"
        )
    prefix = raw.get("path_prefix")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise FaultRuleError(
            f"{where}: path_prefix must be a path starting with '/', got {prefix!r}"
        )
    if prefix.startswith("/_world/"):
        raise FaultRuleError(f"{where}: /_world/ paths cannot be faulted")
    method = raw.get("method")
    if method is not None and (not isinstance(method, str) or not method.isalpha()):
        raise FaultRuleError(f"{where}: method must be an HTTP method like GET, got {method!r}")
    status = raw.get("status")
    if status is not None and (
        not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599
    ):
        raise FaultRuleError(f"{where}: status must be an integer from 100 to 599, got {status!r}")
    times = raw.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise FaultRuleError(f"{where}: times must be an integer >= 1, got {times!r}")
    retry_after = raw.get("retry_after")
    if retry_after is not None and (not _is_number(retry_after) or retry_after < 0):
        raise FaultRuleError(f"{where}: retry_after must be seconds >= 0, got {retry_after!r}")
    delay = raw.get("delay_s", 0.0)
    if not _is_number(delay) or not 0 <= delay <= MAX_DELAY_S:
        raise FaultRuleError(
            f"{where}: delay_s must be seconds from 0 to {MAX_DELAY_S:g}, got {delay!r}"
        )
    drop = raw.get("drop", False)
    if not isinstance(drop, bool):
        raise FaultRuleError(f"{where}: drop must be true or false, got {drop!r}")
    body = raw.get("body")
    if body is not None and not isinstance(body, str):
        raise FaultRuleError(f"{where}: body must be a string, got {type(body).__name__}")
    content_type = raw.get("content_type", "text/plain; charset=utf-8")
    if not isinstance(content_type, str) or "/" not in content_type:
        raise FaultRuleError(f"{where}: content_type must be a media type, got {content_type!r}")
    if status is None and not drop and not delay:
        raise FaultRuleError(f"{where}: needs at least one of status, delay_s or drop")
    return FaultRule(
        path_prefix=prefix,
        method=method.upper() if method else None,
        status=status,
        times=times,
        retry_after=retry_after,
        delay_s=float(delay),
        drop=drop,
        body=body,
        content_type=content_type,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class FaultInjector:
    """The armed rules. Thread-safe: concurrent requests never spend the same hit twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules.extend(rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_json() for r in self._rules]

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first armed rule matching this request, with one hit spent; None if none."""
        if path.startswith("/_world/"):
            return None
        with self._lock:
            for rule in self._rules:
                if rule.remaining <= 0 or not path.startswith(rule.path_prefix):
                    continue
                if rule.method is not None and rule.method != method:
                    continue
                rule.hits += 1
                return dataclasses.replace(rule)
        return None
