"""Raw records from the sandbox world's scenario, without crawling: for tests and benchmarks.

The records have the shape the crawlers emit (:func:`freshlm.records.make_record`): articles as
title + summary and paragraphs, posts as their text (handles as authors, the client's language
tag as ``language``), papers as title + abstract.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from freshlm.records import make_record
from sandbox.model import Article, Paper, Post, Scenario


def article_record(article: Article, source: str = "tessford-courier") -> dict[str, Any]:
    # The page body: the feed's summary is usually the standfirst, not repeated in the body.
    text = "\n\n".join(article.paragraphs)
    return make_record(
        source=source,
        kind="news",
        native_id=article.slug,
        url=f"https://courier.tessford.example/{article.section}/{article.slug}",
        text=text,
        title=article.title,
        language=article.language,
        author=article.author,
        published_at=article.published_at,
        fetched_at=article.published_at,
        meta={"section": article.section, "tags": list(article.tags)},
    )


def post_record(post: Post, source: str = "tessford-social") -> dict[str, Any]:
    return make_record(
        source=source,
        kind="sns",
        native_id=post.id,
        url=f"https://tessford.social/@{post.account}/{post.id}",
        text=post.text,
        language=post.language,
        author=f"@{post.account}@tessford.social",
        published_at=post.created_at,
        fetched_at=post.created_at,
        meta={"key": post.key},
    )


def paper_record(paper: Paper, source: str = "arxiv-cs-cl") -> dict[str, Any]:
    return make_record(
        source=source,
        kind="paper",
        native_id=f"{paper.arxiv_id}v{paper.version}",
        url=f"https://arxiv.org/abs/{paper.arxiv_id}v{paper.version}",
        text=paper.abstract,
        title=paper.title,
        language="en",
        author=", ".join(paper.authors),
        published_at=paper.published_at,
        fetched_at=paper.published_at,
        meta={"categories": list(paper.categories)},
    )


def day_records(scenario: Scenario, day: date) -> list[dict[str, Any]]:
    """Every article, original post (no boosts) and paper published on ``day``."""
    out = [article_record(a) for a in scenario.articles if a.published_at.date() == day]
    out += [
        post_record(p)
        for p in scenario.posts
        if p.created_at.date() == day and p.reblog_of is None and p.text
    ]
    out += [paper_record(p) for p in scenario.papers if p.published_at.date() == day]
    return out


def archive_records(scenario: Scenario) -> list[dict[str, Any]]:
    """The news archive (before day 1) as records."""
    return [article_record(a) for a in scenario.archive]
