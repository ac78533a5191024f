"""The world clock: frozen, thread-safe, UTC-only; parse_when/parse_duration explain errors."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sandbox.clock import DEFAULT_START, WorldClock, parse_duration, parse_when


def test_clock_is_frozen_until_told() -> None:
    clock = WorldClock(DEFAULT_START)
    first = clock.now()
    assert clock.now() == first == DEFAULT_START
    assert clock.advance(days=1, hours=2) == datetime(2026, 11, 3, 2, tzinfo=UTC)
    assert clock.now() == datetime(2026, 11, 3, 2, tzinfo=UTC)


def test_set_moves_back_and_forth_and_converts_to_utc() -> None:
    clock = WorldClock(DEFAULT_START)
    seoul = timezone(timedelta(hours=9))
    assert clock.set(datetime(2026, 11, 4, 11, tzinfo=seoul)) == datetime(
        2026, 11, 4, 2, tzinfo=UTC
    )
    assert clock.now().tzinfo == UTC
    clock.set(datetime(2026, 11, 2, 1, tzinfo=UTC))  # rewinding is how a night is re-run
    assert clock.now() == datetime(2026, 11, 2, 1, tzinfo=UTC)
    assert clock.reset() == DEFAULT_START


def test_naive_times_and_negative_advance_are_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        WorldClock(datetime(2026, 11, 2))
    clock = WorldClock()
    with pytest.raises(ValueError, match="no timezone"):
        clock.set(datetime(2026, 11, 3))
    with pytest.raises(ValueError, match="negative"):
        clock.advance(hours=-1)
    assert clock.now() == DEFAULT_START


def test_concurrent_advances_are_not_lost() -> None:
    clock = WorldClock(DEFAULT_START)

    def work() -> None:
        for _ in range(500):
            clock.advance(minutes=1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == DEFAULT_START + timedelta(minutes=2000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-03T02:00:00Z", datetime(2026, 11, 3, 2, tzinfo=UTC)),
        ("2026-11-03T11:00:00+09:00", datetime(2026, 11, 3, 2, tzinfo=UTC)),
        ("2026-11-03", datetime(2026, 11, 3, tzinfo=UTC)),
        ("day:0", datetime(2026, 11, 2, tzinfo=UTC)),
        ("day:1", datetime(2026, 11, 3, tzinfo=UTC)),
        ("day:3", datetime(2026, 11, 5, tzinfo=UTC)),
        (" day:3@02:00 ", datetime(2026, 11, 4, 2, tzinfo=UTC)),
        ("day:2@23:59:30", datetime(2026, 11, 3, 23, 59, 30, tzinfo=UTC)),
    ],
)
def test_parse_when_accepts(text: str, expected: datetime) -> None:
    assert parse_when(text) == expected


def test_parse_when_uses_the_given_day_one() -> None:
    assert parse_when("day:1", day_one=date(2030, 1, 1)) == datetime(2030, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty time"),
        ("2026-11-03T02:00:00", "no timezone; add Z"),
        ("tomorrow", "is not an ISO 8601 timestamp"),
        ("day3", "write day:N"),
        ("day:3@25:00", "not a time of day"),
        ("day:0@02:00", "numbered from 1"),
        ("day:9", "days 1 to 4"),
        ("2026-13-01", "not a valid date"),
    ],
)
def test_parse_when_errors_say_what_was_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_when(text, days=4)


def test_parse_duration() -> None:
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("1d6h30m") == timedelta(days=1, hours=6, minutes=30)
    for bad in ("", "6x", "-1d", "h"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
