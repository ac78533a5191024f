"""Tests of the crawlers package (mirrors crawlers/)."""
