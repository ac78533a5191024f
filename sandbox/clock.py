"""The sandbox world's clock: the "now" that decides which dated content the world serves.

The clock is *frozen*: its time moves only when told (:meth:`WorldClock.set`,
:meth:`WorldClock.advance`), never with the wall clock. That is deliberate. A nightly run
moves the world to the end of the day it crawls, and everything it then sees is a pure function
of that instant, so re-running a night (DESIGN invariant 1, idempotent tasks) sees exactly the
same content, and tests never race the wall clock.

Control input (e.g. the world server's control endpoint) is parsed with :func:`parse_when`
and :func:`parse_duration`, whose errors say what was wrong and what is accepted.

``parse_when`` syntax (all times UTC unless an offset is given):

``2026-11-03T02:00:00Z``, ``2026-11-03T11:00:00+09:00``
    An ISO 8601 timestamp with a timezone (``Z`` or an offset); converted to UTC. A timestamp
    without a timezone is refused: guessing one would shift the world by hours.
``2026-11-03``
    That date's midnight UTC (00:00), i.e. the start of that date.
``day:N``
    The end of scenario day N: the midnight that follows it. Everything dated on day N (and
    before) is visible, nothing of day N+1 is. ``day:0`` is the start of day 1.
``day:N@HH:MM`` or ``day:N@HH:MM:SS``
    That time of day on day N's date.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, time, timedelta

#: The packaged scenario's first day and the clock's default start.
DEFAULT_DAY_ONE = date(2026, 11, 2)
DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)

_DAY = re.compile(r"^day:(?P<n>\d+)(?:@(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?)?$")
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")
_WHEN_SYNTAX = (
    "an ISO 8601 timestamp with a timezone (2026-11-03T02:00:00Z), a date (2026-11-03), "
    "day:N (the end of scenario day N) or day:N@HH:MM (a time on day N)"
)


def _aware_utc(when: datetime, what: str) -> datetime:
    if not isinstance(when, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what} {when.isoformat()} has no timezone; the world runs on UTC")
    return when.astimezone(UTC)


class WorldClock:
    """A thread-safe, frozen clock: ``now()`` changes only through ``set`` and ``advance``.

    All times are timezone-aware UTC. Moving backwards is allowed with :meth:`set` (re-running
    an earlier night) but not with :meth:`advance`, where a negative amount is almost always a
    sign error.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._start = _aware_utc(start, "start")
        self._now = self._start
        self._lock = threading.Lock()

    @property
    def start(self) -> datetime:
        """The time the clock was created with; :meth:`reset` returns to it."""
        return self._start

    def now(self) -> datetime:
        """The world's current time (UTC)."""
        with self._lock:
            return self._now

    def set(self, when: datetime) -> datetime:
        """Move the world to ``when`` (forwards or backwards); returns the new time."""
        when = _aware_utc(when, "when")
        with self._lock:
            self._now = when
            return when

    def advance(self, days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
        """Move the world forwards by the given amount; returns the new time."""
        step = timedelta(days=days, hours=hours, minutes=minutes)
        if step < timedelta(0):
            raise ValueError(f"advance by {step} is negative; use set() to move back in time")
        with self._lock:
            self._now += step
            return self._now

    def reset(self) -> datetime:
        """Return to the start time; returns it."""
        with self._lock:
            self._now = self._start
            return self._now

    def __repr__(self) -> str:
        return f"WorldClock(now={self.now().isoformat()})"


def parse_when(text: str, *, day_one: date = DEFAULT_DAY_ONE, days: int | None = None) -> datetime:
    """Parse a control-input time (see the module docstring for the syntax) into aware UTC.

    ``day_one`` is the scenario's first date (``scenario.days[0].date``); ``days``, when given,
    is the number of scenario days, and ``day:N`` beyond it is refused.
    Raises ``ValueError`` saying what was wrong and what is accepted.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty time; expected {_WHEN_SYNTAX}")
    text = text.strip()
    match = _DAY.match(text)
    if match:
        n = int(match["n"])
        if days is not None and n > days:
            raise ValueError(f"{text!r}: the scenario has days 1 to {days}, not day {n}")
        if match["h"] is None:
            # day:N is the midnight ending day N; day:0 is therefore the start of day 1.
            return datetime.combine(day_one + timedelta(days=n), time(0), tzinfo=UTC)
        if n < 1:
            raise ValueError(f"{text!r}: days are numbered from 1")
        hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ValueError(f"{text!r}: {hour:02}:{minute:02}:{second:02} is not a time of day")
        return datetime.combine(
            day_one + timedelta(days=n - 1), time(hour, minute, second), tzinfo=UTC
        )
    if text.startswith("day"):
        raise ValueError(f"{text!r}: write day:N or day:N@HH:MM, e.g. day:3 or day:3@02:00")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        except ValueError as exc:
            raise ValueError(f"{text!r}: not a valid date ({exc})") from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not {_WHEN_SYNTAX}") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone; add Z for UTC (e.g. {text}Z) or an offset")
    return when.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """Parse an amount to advance by: ``1d``, ``6h``, ``30m`` or combinations like ``1d6h``.

    Raises ``ValueError`` naming the input and the accepted syntax.
    """
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration like 1d, 6h, 30m or 1d6h")
    return timedelta(
        days=int(match["d"] or 0), hours=int(match["h"] or 0), minutes=int(match["m"] or 0)
    )
