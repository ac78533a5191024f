"""A small hand-built scenario whose every count is known, for exact behaviour tests.

The packaged scenario changes as its story grows; these tests must not. Times are UTC on
three days starting 2026-11-02; the clock starts at 00:00 of day 1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sandbox.model import Account, Article, Day, Fact, Feed, Paper, Post, Scenario

START = datetime(2026, 11, 2, tzinfo=UTC)
DAY1, DAY2, DAY3 = START, START + timedelta(days=1), START + timedelta(days=2)

DAY1_POSTS = 30  # plain public posts on day 1 (boost, reply and edited post come on top)
DAY2_POSTS = 10
TAGGED_DAY1 = 10  # every third day-1 post carries #Tessford


def _at(day: datetime, hours: float) -> datetime:
    return day + timedelta(hours=hours)


def build() -> Scenario:
    accounts = (
        Account("alice", "Alice A.", DAY1 - timedelta(days=400), note="Tessford local."),
        Account("bob", "Bob B.", DAY1 - timedelta(days=300), indexable=False),
        Account("carol", "Carol C.", DAY1 - timedelta(days=200), noindex=True, discoverable=False),
        Account("dave", "Dave D.", DAY1 - timedelta(days=100), domain="remote.example"),
    )
    authors = ["alice", "bob", "dave"]
    posts = [
        Post(
            key=f"d1-{i:02d}",
            account=authors[i % 3],
            created_at=_at(DAY1, 1 + i * 0.25),
            text=f"Day one post number {i}." + (" #Tessford" if i % 3 == 0 else ""),
        )
        for i in range(DAY1_POSTS)
    ]
    posts += [
        Post(
            key=f"d2-{i:02d}",
            account=authors[i % 3],
            created_at=_at(DAY2, 1 + i * 0.5),
            text=f"Day two post number {i}.",
        )
        for i in range(DAY2_POSTS)
    ]
    posts += [
        Post(
            key="mention",
            account="alice",
            created_at=_at(DAY1, 10.1),
            text=(
                "Hello @bob and @dave@remote.example, read "
                "https://news.example.org/a/very/long/path/to/an/article.html today! "
                "#LanternFest\n\nSecond paragraph's here."
            ),
        ),
        Post(
            key="edited",
            account="alice",
            created_at=_at(DAY1, 11),
            text="The Pulse X2 costs $549.",
            edited_at=_at(DAY1, 12),
            edited_text="The Pulse X2 costs $649 (corrected).",
        ),
        Post(key="boost", account="bob", created_at=_at(DAY1, 13), reblog_of="edited"),
        Post(
            key="reply",
            account="carol",
            created_at=_at(DAY1, 14),
            text="@alice thanks for the correction",
            in_reply_to="edited",
        ),
        Post(
            key="deleted",
            account="dave",
            created_at=_at(DAY1, 15),
            text="This post will be deleted.",
            deleted_at=_at(DAY2, 0.5),
        ),
    ]

    def article(slug, section, published, **kw) -> Article:
        return Article(
            slug=slug,
            title=kw.pop("title", f"Story {slug}"),
            author=kw.pop("author", "Mira Okonjo"),
            section=section,
            published_at=published,
            summary=f"Summary of {slug}.",
            paragraphs=tuple(
                f"Paragraph {n} of {slug} with the real article text." for n in range(5)
            ),
            **kw,
        )

    articles = (
        article("tech-one", "tech", _at(DAY1, 8), tags=("orrin",)),
        article("tech-two", "tech", _at(DAY1, 9), updated_at=_at(DAY2, 9)),
        article("local-one", "local", _at(DAY1, 10)),
        article("tech-three", "tech", _at(DAY2, 8)),
        article("local-two", "local", _at(DAY2, 10)),
        article("tech-four", "tech", _at(DAY3, 8)),
    )
    archive = (article("old-tech", "tech", datetime(2025, 6, 1, tzinfo=UTC)),)
    feeds = (
        Feed("/news/feeds/all.rss", "The Test Courier: all stories", "rss"),
        Feed("/news/feeds/tech.rss", "The Test Courier: tech", "rss", ("tech",), (2,)),
        Feed("/news/feeds/local.atom", "The Test Courier: local", "atom", ("local",)),
    )

    def paper(n, primary, cats, published, **kw) -> Paper:
        return Paper(
            arxiv_id=f"2611.{n:05d}",
            version=kw.pop("version", 1),
            title=kw.pop("title", f"Paper {n} on continual learning"),
            abstract=f"We study topic {n} of language models.",
            authors=("Ada Lovelace", "Alan Turing"),
            primary_category=primary,
            categories=cats,
            published_at=published,
            updated_at=kw.pop("updated_at", published),
            **kw,
        )

    papers = (
        paper(
            1,
            "cs.CL",
            ("cs.CL",),
            _at(DAY1, 1),
            comment="12 pages",
            journal_ref="TACL 2027",
            doi="10.1000/test.1",
        ),
        paper(2, "cs.CL", ("cs.CL", "cs.LG"), _at(DAY1, 2)),
        paper(3, "cs.LG", ("cs.LG",), _at(DAY1, 3)),
        paper(4, "math.ST", ("math.ST", "stat.ML"), _at(DAY1, 4)),
        paper(
            5,
            "cs.CL",
            ("cs.CL",),
            _at(DAY2, 1),
            version=2,
            updated_at=_at(DAY3, 1),
            title="Tide-locked: tracking slang",
        ),
        paper(6, "cs.LG", ("cs.LG", "cs.CL"), _at(DAY2, 2)),
        paper(7, "cs.CL", ("cs.CL",), _at(DAY3, 1)),
    )
    facts = (
        Fact(
            key="price",
            question="How much is the Pulse X2?",
            answer="$649",
            evidence=("article:tech-one", "post:edited", "paper:2611.00001"),
            persona="support",
            available_at=_at(DAY1, 1),
            distractors=("$549",),
        ),
        Fact(
            key="later",
            question="What is on day three?",
            answer="tech-four",
            evidence=("article:tech-four",),
            persona="local",
            available_at=_at(DAY3, 8),
        ),
    )
    days = (
        Day(1, date(2026, 11, 2), "one"),
        Day(2, date(2026, 11, 3), "two", bad_batch=True),
        Day(3, date(2026, 11, 4), "three"),
    )
    return Scenario(
        name="tiny",
        start=START,
        days=days,
        accounts=accounts,
        posts=tuple(posts),
        articles=articles,
        papers=papers,
        feeds=feeds,
        facts=facts,
        archive=archive,
        hashtags=("Tessford",),
    )
