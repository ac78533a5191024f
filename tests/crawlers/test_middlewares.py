"""Retry-After parsing (the crawl-level behaviour is tested in tests/crawlers/spiders)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crawlers.middlewares import parse_retry_after

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10", 10.0),
        (b"2.5", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Mon, 02 Nov 2026 12:00:30 GMT", 30.0),
        ("Mon, 02 Nov 2026 11:00:00 GMT", 0.0),  # already past: retry now
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(value, expected):
    assert parse_retry_after(value, NOW) == expected
