"""The sandbox world's content model: what exists, when it appears, and what a model should learn.

The world is a *scenario*: a set of dated items (news articles, Mastodon posts, arXiv papers)
plus the facts they carry, each fact with a probe (question, answer) for evaluation. A world
clock hides every item dated after "now", so successive nightly crawls see new content.

This module is plain data and pure functions over it: no I/O, no HTTP. The loader
(``sandbox.scenario``) builds it from the scenario files; the server
(``sandbox.server``) renders it in the real wire formats.

All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime

# Mastodon ids are snowflakes: milliseconds since the epoch shifted left 16 bits, plus a
# sequence. Deriving them from created_at keeps id order equal to time order, which is what
# min_id/max_id/since_id paging relies on (and what real Mastodon guarantees).
_SNOWFLAKE_SHIFT = 16


def snowflake_id(created_at: datetime, sequence: int = 0) -> str:
    """A Mastodon-style status/account id (a decimal string) for ``created_at``."""
    millis = int(created_at.timestamp() * 1000)
    return str((millis << _SNOWFLAKE_SHIFT) + (sequence & 0xFFFF))


@dataclasses.dataclass(frozen=True)
class Account:
    """A Mastodon account. The consent fields decide whether a crawler may use its posts."""

    username: str
    display_name: str
    created_at: datetime
    note: str = ""  # plain text; rendered as HTML <p> by the server
    bot: bool = False
    locked: bool = False
    discoverable: bool = True
    indexable: bool = True  # false: the user opted out of search indexing
    noindex: bool = False  # true: the user asked search engines not to index them
    domain: str | None = None  # None for local accounts; a remote instance host otherwise

    @property
    def id(self) -> str:
        return snowflake_id(self.created_at, sum(map(ord, self.username)))

    @property
    def acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"


@dataclasses.dataclass(frozen=True)
class Post:
    """A Mastodon status.

    ``text`` is the author's plain text; hashtags (``#word``) and mentions (``@user`` or
    ``@user@host``) inside it are rendered as Mastodon's HTML links by the server.
    A boost (``reblog_of`` set) has no text of its own. An edit replaces the text from
    ``edited_at`` on; a deletion hides the post from ``deleted_at`` on.
    """

    key: str  # stable scenario key, unique among posts
    account: str  # Account.username
    created_at: datetime
    text: str = ""
    language: str | None = "en"  # ISO 639-1, as the author's client tagged it (can be wrong)
    sensitive: bool = False
    spoiler_text: str = ""
    reblog_of: str | None = None  # key of the boosted post
    in_reply_to: str | None = None  # key of the post replied to
    edited_at: datetime | None = None
    edited_text: str | None = None
    deleted_at: datetime | None = None
    sequence: int = 0  # disambiguates posts created in the same millisecond

    @property
    def id(self) -> str:
        return snowflake_id(self.created_at, self.sequence)

    def text_at(self, now: datetime) -> str:
        """The text as visible at ``now`` (the edited text once the edit has happened)."""
        if self.edited_at is not None and self.edited_text is not None and now >= self.edited_at:
            return self.edited_text
        return self.text

    def visible_at(self, now: datetime) -> bool:
        return self.created_at <= now and (self.deleted_at is None or now < self.deleted_at)


@dataclasses.dataclass(frozen=True)
class Article:
    """A news article: appears in its feeds from ``published_at`` and has its own HTML page."""

    slug: str  # URL path segment, unique
    title: str
    author: str  # a person's name, as a byline
    section: str  # e.g. "tech", "local", "business"; each section has its own feed
    published_at: datetime
    summary: str  # one or two sentences: the feed's <description>/<summary>
    paragraphs: tuple[str, ...]  # the article body, plain text paragraphs
    language: str = "en"
    tags: tuple[str, ...] = ()
    updated_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class Paper:
    """An arXiv paper's metadata (titles and abstracts only; arXiv metadata is CC0)."""

    arxiv_id: str  # e.g. "2611.01234"
    version: int
    title: str
    abstract: str
    authors: tuple[str, ...]
    primary_category: str  # e.g. "cs.CL"
    categories: tuple[str, ...]  # includes the primary category
    published_at: datetime  # first version's submission time: submittedDate in queries
    updated_at: datetime
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None


@dataclasses.dataclass(frozen=True)
class Fact:
    """One thing the model should learn from the world, with the probe that checks it.

    ``evidence`` names the items (``article:<slug>``, ``post:<key>``, ``paper:<arxiv_id>``)
    that state the fact; the fact becomes learnable when the first of them is published.
    ``persona`` says which assistant needs it: support chatbot, translation, local assistant
    or research assistant.
    """

    key: str
    question: str
    answer: str
    evidence: tuple[str, ...]
    persona: str  # "support" | "translation" | "local" | "research"
    available_at: datetime  # when the earliest evidence is published
    distractors: tuple[str, ...] = ()  # plausible wrong answers of the same type
    # Key of an older fact this one replaces (a price cut, a postponed event): from this fact's
    # available_at on, the old answer is stale and makes a good distractor, not a retention probe.
    supersedes: str | None = None


@dataclasses.dataclass(frozen=True)
class Feed:
    """A news feed the site serves. ``sections`` empty means every section."""

    path: str  # e.g. "/news/feeds/tech.rss"
    title: str
    format: str  # "rss" | "atom"
    sections: tuple[str, ...] = ()
    # Days (scenario day numbers) on which the feed is served broken: the bad batch.
    malformed_on_days: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Day:
    """One scenario day: what it is about, and whether it carries the bad batch."""

    number: int  # 1-based
    date: date
    theme: str
    bad_batch: bool = False


@dataclasses.dataclass(frozen=True)
class Scenario:
    """The whole world. ``start`` is the clock's default: before day 1's first item."""

    name: str
    start: datetime
    days: tuple[Day, ...]
    accounts: tuple[Account, ...]
    posts: tuple[Post, ...]
    articles: tuple[Article, ...]
    papers: tuple[Paper, ...]
    feeds: tuple[Feed, ...]
    facts: tuple[Fact, ...]
    # Evergreen text dated before day 1 (the site's archive): background language for the
    # base model's tokenizer and pretraining, and the "old knowledge" retention is tested on.
    archive: tuple[Article, ...] = ()
    hashtags: tuple[str, ...] = ()  # hashtags the crawl config follows by default

    def account(self, username: str) -> Account:
        for acc in self.accounts:
            if acc.username == username:
                return acc
        raise KeyError(username)

    def post(self, key: str) -> Post:
        for post in self.posts:
            if post.key == key:
                return post
        raise KeyError(key)

    def day_of(self, when: datetime) -> Day | None:
        """The scenario day containing ``when`` (UTC date), if any."""
        for day in self.days:
            if day.date == when.date():
                return day
        return None

    def posts_at(self, now: datetime) -> list[Post]:
        """Visible posts, newest first (the order Mastodon timelines use)."""
        visible = [p for p in self.posts if p.visible_at(now)]
        return sorted(visible, key=lambda p: int(p.id), reverse=True)

    def articles_at(self, now: datetime, sections: Iterable[str] = ()) -> list[Article]:
        """Published articles (archive included), newest first, optionally for some sections."""
        wanted = set(sections)
        items = [
            a
            for a in (*self.archive, *self.articles)
            if a.published_at <= now and (not wanted or a.section in wanted)
        ]
        return sorted(items, key=lambda a: a.published_at, reverse=True)

    def papers_at(self, now: datetime) -> list[Paper]:
        return [p for p in self.papers if p.published_at <= now]

    def facts_at(self, now: datetime) -> list[Fact]:
        return [f for f in self.facts if f.available_at <= now]

    def current_facts_at(self, now: datetime) -> list[Fact]:
        """Available facts that no available later fact supersedes: what is true at ``now``."""
        available = self.facts_at(now)
        stale = {f.supersedes for f in available if f.supersedes is not None}
        return [f for f in available if f.key not in stale]
