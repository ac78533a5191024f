"""Tokens in feed URLs never reach the task log: query values are masked."""

from __future__ import annotations

from crawlers.redaction import redact_url, redact_urls


def test_query_values_and_credentials_are_masked_names_kept():
    assert redact_url("https://u:pw@news.example/feed.rss?token=abc&lang=en") == (
        "https://news.example/feed.rss?token=REDACTED&lang=REDACTED"
    )
    assert redact_url("https://news.example/feed.rss") == "https://news.example/feed.rss"


def test_urls_inside_a_log_line_are_masked():
    line = "HTTP 403 from https://news.example/feed.rss?key=s3cret; giving up"
    assert (
        redact_urls(line) == "HTTP 403 from https://news.example/feed.rss?key=REDACTED; giving up"
    )
