"""The sources file: operators' edits are validated with messages naming file, source and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawlers.sources import SourcesError, load_sources, select_sources

ENV = {"FRESHLM_WORLD_URL": "http://127.0.0.1:8766"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def test_packaged_sources_file_loads_with_no_environment():
    sources = load_sources(env=ENV)
    assert [s.name for s in sources] == ["tessford-courier", "tessford-social", "arxiv-cs"]
    news, social, arxiv = sources
    assert news.kind == "news" and social.kind == "sns" and arxiv.kind == "paper"
    assert news.spider_args()["feeds"].startswith("http://127.0.0.1:8766/news/feeds/tech.rss,")
    assert social.spider_args()["hashtags"].split(",")[-2] == "신조어"
    # arXiv's terms: one request every 3 seconds, one connection.
    assert arxiv.politeness.download_delay_s == 3.0
    assert arxiv.politeness.scrapy_settings()["CONCURRENT_REQUESTS_PER_DOMAIN"] == 1
    assert arxiv.politeness.autothrottle is False


def test_defaults_apply_and_sources_override(tmp_path):
    path = write(
        tmp_path,
        """
defaults: {politeness: {download_delay_s: 2.0, concurrency_per_domain: 2}}
sources:
  - name: a
    spider: news
    args: {feeds: [http://x.test/feed.rss]}
  - name: b
    spider: news
    args: {feeds: [http://y.test/feed.rss]}
    politeness: {download_delay_s: 0.5, max_items: 10}
""",
    )
    a, b = load_sources(path, env={})
    assert (a.politeness.download_delay_s, a.politeness.concurrency_per_domain) == (2.0, 2)
    assert (b.politeness.download_delay_s, b.politeness.concurrency_per_domain) == (0.5, 2)
    assert b.spider_args()["max_items"] == "10"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sources: []", "no sources configured"),
        ("just text", "expected a mapping with a 'sources' list"),
        ("sources: [{name: Bad_Name, spider: news}]", "must be lowercase letters"),
        ("sources: [{name: a, spider: rss, args: {}}]", "spider 'rss' is not one of"),
        ("sources: [{name: a, spider: news, args: {}}]", "missing args ['feeds']"),
        (
            "sources: [{name: a, spider: news, args: {feeds: [x], colour: red}}]",
            "unknown args ['colour'] for the news spider",
        ),
        ("sources: [{name: a, spider: news, args: {feeds: [ftp://x]}}]", "is not an http(s) URL"),
        (
            "sources: [{name: a, spider: news, args: {feeds: ['${NOPE}/f']}}]",
            "${NOPE} is not set",
        ),
        (
            "sources: [{name: a, spider: news, args: {feeds: [http://x]}, politeness: {speed: 1}}]",
            "unknown politeness key 'speed'",
        ),
        (
            "sources: [{name: a, spider: news, args: {feeds: [http://x]},"
            " politeness: {download_delay_s: -1}}]",
            "politeness.download_delay_s must be a non-negative float",
        ),
        (
            "sources: [{name: a, spider: news, args: {feeds: [http://x]}},"
            " {name: a, spider: news, args: {feeds: [http://y]}}]",
            "source 'a': duplicate name",
        ),
        ("sources: [{name: a, spider: news, args: {feeds: [http://x]}", "not valid YAML"),
    ],
)
def test_invalid_files_fail_with_a_message_naming_what_is_wrong(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(SourcesError) as err:
        load_sources(path, env={})
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SourcesError, match="sources file not found"):
        load_sources(tmp_path / "nope.yaml", env={})


def test_select_sources_refuses_unknown_names():
    sources = load_sources(env=ENV)
    assert [s.name for s in select_sources(sources, ["arxiv-cs"])] == ["arxiv-cs"]
    assert select_sources(sources, []) == sources
    with pytest.raises(SourcesError, match=r"unknown sources \['bluesky'\]"):
        select_sources(sources, ["bluesky"])
