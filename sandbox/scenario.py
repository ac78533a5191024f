"""Load the sandbox world's scenario: parse the YAML files, generate the programmatic parts, check.

The scenario folder (default: the packaged ``sandbox/scenario/``) holds:

``world.yaml``
    ``name``, ``start`` (the clock's default), ``days`` (number, date, theme, bad_batch),
    ``feeds`` and ``hashtags``.
``accounts.yaml``
    ``accounts``: every Mastodon account, local and remote.
``day<N>.yaml`` (one per day in ``world.yaml``)
    ``articles``, ``posts``, ``papers`` published that day, and optionally ``spam_flood``: a
    template the loader expands into many near-duplicate posts (the bad batch).
``facts.yaml``
    ``facts``: what a model should learn, each with its probe. ``available_at`` is computed.
``archive.yaml`` and ``archive_templates.yaml``
    Hand-written background articles dated before day 1, plus templates and vocabularies from
    which the loader generates the bulk of the archive.

Item keys in the YAML are the :mod:`sandbox.model` field names. Timestamps must carry a
timezone (``2026-11-02T09:15:00Z``); they are converted to UTC.

Contract:

* :func:`load_scenario` returns a fully validated :class:`~sandbox.model.Scenario` or
  raises :class:`ScenarioError` whose message starts with the file and the item at fault,
  e.g. ``day2.yaml: post 'spam-3': unknown account 'x'``.
* Loading is deterministic: every generated part comes from a seeded ``random.Random``, so two
  loads of the same folder give equal scenarios (the nightly runs' idempotence depends on it).
* The packaged scenario is loaded once per process and cached; the result is immutable.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
import string
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from sandbox.model import (
    Account,
    Article,
    Day,
    Fact,
    Feed,
    Paper,
    Post,
    Scenario,
)

DEFAULT_DIR = Path(__file__).with_name("scenario")
PERSONAS = ("support", "translation", "local", "research")
FEED_FORMATS = ("rss", "atom")
_ARXIV_ID = re.compile(r"^\d{4}\.\d{5}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_]+$")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_EVIDENCE_KINDS = ("article", "post", "paper")


class ScenarioError(ValueError):
    """The scenario files are invalid. The message names the file and the item at fault."""


def load_scenario(path: Path | str | None = None) -> Scenario:
    """Load, generate and validate the scenario in folder ``path`` (default: the packaged one).

    The packaged scenario is cached: repeated calls return the same (immutable) object.
    Raises :class:`ScenarioError` naming the file and item when anything is invalid.
    """
    if path is None:
        return _load_default()
    return _Loader(Path(path)).load()


@functools.lru_cache(maxsize=1)
def _load_default() -> Scenario:
    return _Loader(DEFAULT_DIR).load()


def evidence_text(scenario: Scenario, ref: str) -> str:
    """All text an evidence ref (``article:<slug>``, ``post:<key>``, ``paper:<id>``) carries.

    For a post this includes the edited text, for an article its title, summary and body, for
    a paper its title and abstract. Raises ``KeyError`` for an unknown ref.
    """
    kind, _, key = ref.partition(":")
    if kind == "post":
        post = scenario.post(key)
        return "\n".join(t for t in (post.spoiler_text, post.text, post.edited_text or "") if t)
    if kind == "article":
        for article in (*scenario.articles, *scenario.archive):
            if article.slug == key:
                return article_text(article)
        raise KeyError(ref)
    if kind == "paper":
        for paper in scenario.papers:
            if paper.arxiv_id == key:
                return f"{paper.title}\n{paper.abstract}"
        raise KeyError(ref)
    raise KeyError(ref)


def article_text(article: Article) -> str:
    """An article's title, summary and paragraphs as one plain text."""
    return "\n\n".join((article.title, article.summary, *article.paragraphs))


# --- value converters: each takes the raw YAML value and returns the typed one ---------------
# They raise ValueError with what the field accepts; _Loader adds the file and item.


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 timestamp like 2026-11-02T09:15:00Z"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no timezone; add Z or an offset like +09:00")
        return value.astimezone(UTC)
    raise ValueError(f"{value!r} is not a timestamp like 2026-11-02T09:15:00Z")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"{value!r} is a timestamp; a date like 2026-11-02 is expected")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date like 2026-11-02")


def _to_str(value: Any) -> str:
    # Numbers and dates are refused rather than coerced: YAML turns an unquoted "1.10" into
    # 1.1 and "no" into False, and a silently changed value is worse than an error.
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text (quote it in the YAML)")
    return value.strip()


def _to_text(value: Any) -> str:
    text = _to_str(value)
    if not text:
        raise ValueError("is empty")
    return text


def _to_optional_str(value: Any) -> str | None:
    return None if value is None else _to_str(value)


def _to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


def _to_strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list):
        raise ValueError(f"{value!r} is not a list of texts")
    return tuple(_to_text(v) for v in value)


def _to_ints(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{value!r} is not a list of integers")
    return tuple(_to_int(v) for v in value)


def _optional(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else conv(value)


_ACCOUNT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "username": _to_text,
    "display_name": _to_text,
    "created_at": _to_datetime,
    "note": _to_str,
    "bot": _to_bool,
    "locked": _to_bool,
    "discoverable": _to_bool,
    "indexable": _to_bool,
    "noindex": _to_bool,
    "domain": _optional(_to_text),
}
_POST_FIELDS: dict[str, Callable[[Any], Any]] = {
    "key": _to_text,
    "account": _to_text,
    "created_at": _to_datetime,
    "text": _to_str,
    "language": _to_optional_str,
    "sensitive": _to_bool,
    "spoiler_text": _to_str,
    "reblog_of": _optional(_to_text),
    "in_reply_to": _optional(_to_text),
    "edited_at": _optional(_to_datetime),
    "edited_text": _optional(_to_text),
    "deleted_at": _optional(_to_datetime),
    "sequence": _to_int,
}
_ARTICLE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "slug": _to_text,
    "title": _to_text,
    "author": _to_text,
    "section": _to_text,
    "published_at": _to_datetime,
    "summary": _to_text,
    "paragraphs": _to_strs,
    "language": _to_text,
    "tags": _to_strs,
    "updated_at": _optional(_to_datetime),
}
_PAPER_FIELDS: dict[str, Callable[[Any], Any]] = {
    "arxiv_id": _to_text,
    "version": _to_int,
    "title": _to_text,
    "abstract": _to_text,
    "authors": _to_strs,
    "primary_category": _to_text,
    "categories": _to_strs,
    "published_at": _to_datetime,
    "updated_at": _to_datetime,
    "comment": _optional(_to_text),
    "journal_ref": _optional(_to_text),
    "doi": _optional(_to_text),
}
_FACT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "key": _to_text,
    "question": _to_text,
    "answer": _to_text,
    "evidence": _to_strs,
    "persona": _to_text,
    "distractors": _to_strs,
    "supersedes": _optional(_to_text),
}
_FEED_FIELDS: dict[str, Callable[[Any], Any]] = {
    "path": _to_text,
    "title": _to_text,
    "format": _to_text,
    "sections": _to_strs,
    "malformed_on_days": _to_ints,
}
_DAY_FIELDS: dict[str, Callable[[Any], Any]] = {
    "number": _to_int,
    "date": _to_date,
    "theme": _to_text,
    "bad_batch": _to_bool,
}


def _fields(
    raw: Any,
    convs: Mapping[str, Callable[[Any], Any]],
    required: Iterable[str],
    where: str,
) -> dict[str, Any]:
    """Convert a YAML mapping field by field; unknown and missing keys are errors (typos)."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(convs), key=str)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(convs)}"
        )
    missing = [name for name in required if name not in raw]
    if missing:
        raise ScenarioError(f"{where}: missing required field(s) {', '.join(missing)}")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            out[name] = convs[name](value)
        except ValueError as exc:
            raise ScenarioError(f"{where}: {name}: {exc}") from None
    return out


def _label(file: str, kind: str, raw: Any, key_field: str, index: int) -> str:
    """``day1.yaml: post 'launch-1'``, or ``day1.yaml: post #3`` when the key is missing."""
    if isinstance(raw, dict) and isinstance(raw.get(key_field), str):
        return f"{file}: {kind} {raw[key_field]!r}"
    return f"{file}: {kind} #{index + 1}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclasses.dataclass
class _Sourced:
    """An item with the file it came from and the scenario day it belongs to (None: archive)."""

    item: Any
    file: str
    day: int | None


class _Loader:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    # --- reading ---------------------------------------------------------------------------

    def _read(self, name: str, required: bool = True) -> dict[str, Any]:
        path = self.folder / name
        if not path.is_file():
            if required:
                raise ScenarioError(f"{name}: missing from scenario folder {self.folder}")
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{name}: invalid YAML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ScenarioError(f"{name}: not UTF-8 text: {exc}") from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ScenarioError(f"{name}: the top level must be a mapping of sections")
        return data

    @staticmethod
    def _section(data: dict[str, Any], file: str, allowed: Iterable[str]) -> None:
        unknown = sorted(set(data) - set(allowed), key=str)
        if unknown:
            raise ScenarioError(
                f"{file}: unknown section(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(allowed)}"
            )

    @staticmethod
    def _list(data: dict[str, Any], key: str, file: str) -> list[Any]:
        value = data.get(key) or []
        if not isinstance(value, list):
            raise ScenarioError(f"{file}: {key!r} must be a list")
        return value

    # --- the whole load --------------------------------------------------------------------

    def load(self) -> Scenario:
        if not self.folder.is_dir():
            raise ScenarioError(f"scenario folder {self.folder} does not exist")
        world = self._read("world.yaml")
        self._section(world, "world.yaml", ("name", "start", "days", "feeds", "hashtags"))
        name = _fields(
            {k: world[k] for k in ("name", "start") if k in world},
            {"name": _to_text, "start": _to_datetime},
            ("name", "start"),
            "world.yaml",
        )
        days = self._days(world)
        start: datetime = name["start"]
        if start > _midnight(days[0].date):
            raise ScenarioError(
                f"world.yaml: start {start.isoformat()} is after day 1 begins "
                f"({days[0].date.isoformat()}); the clock must start before day 1's first item"
            )
        feeds = self._feeds(world, days)
        hashtags = self._hashtags(world)
        accounts = self._accounts()

        articles: list[_Sourced] = []
        posts: list[_Sourced] = []
        papers: list[_Sourced] = []
        for day in days:
            self._day_file(day, articles, posts, papers)
        archive = self._archive(days[0])

        self._assign_sequences(posts)
        by_user = {s.item.username: s for s in accounts}
        self._check_posts(posts, by_user)
        self._check_unique_ids(posts)
        self._check_unique(articles + archive, "article", lambda a: a.slug)
        self._check_unique(papers, "paper", lambda p: p.arxiv_id)
        sections = {s.item.section for s in (*articles, *archive)}
        for feed in feeds:
            missing = sorted(set(feed.sections) - sections)
            if missing:
                raise ScenarioError(
                    f"world.yaml: feed {feed.path!r}: no article has section(s) "
                    f"{', '.join(missing)}"
                )

        scenario = Scenario(
            name=name["name"],
            start=start,
            days=days,
            accounts=tuple(s.item for s in accounts),
            posts=tuple(s.item for s in posts),
            articles=tuple(sorted((s.item for s in articles), key=lambda a: a.published_at)),
            papers=tuple(sorted((s.item for s in papers), key=lambda p: p.published_at)),
            feeds=feeds,
            facts=(),
            archive=tuple(sorted((s.item for s in archive), key=lambda a: a.published_at)),
            hashtags=hashtags,
        )
        facts = self._facts(scenario, days, accounts, posts, articles, archive, papers)
        return dataclasses.replace(scenario, facts=facts)

    # --- world.yaml ------------------------------------------------------------------------

    def _days(self, world: dict[str, Any]) -> tuple[Day, ...]:
        raw_days = self._list(world, "days", "world.yaml")
        if not raw_days:
            raise ScenarioError("world.yaml: 'days' must list at least one day")
        days: list[Day] = []
        for i, raw in enumerate(raw_days):
            where = f"world.yaml: day #{i + 1}"
            if isinstance(raw, dict) and isinstance(raw.get("number"), int):
                where = f"world.yaml: day {raw['number']}"
            day = Day(**_fields(raw, _DAY_FIELDS, ("number", "date", "theme"), where))
            if day.number != i + 1:
                raise ScenarioError(f"{where}: days must be numbered 1, 2, 3... in order")
            if days and day.date != days[-1].date + timedelta(days=1):
                raise ScenarioError(
                    f"{where}: date {day.date} does not follow day {days[-1].number} "
                    f"({days[-1].date}); days must be consecutive"
                )
            days.append(day)
        return tuple(days)

    def _feeds(self, world: dict[str, Any], days: tuple[Day, ...]) -> tuple[Feed, ...]:
        feeds: list[Feed] = []
        seen: set[str] = set()
        numbers = {d.number for d in days}
        for i, raw in enumerate(self._list(world, "feeds", "world.yaml")):
            where = _label("world.yaml", "feed", raw, "path", i)
            feed = Feed(**_fields(raw, _FEED_FIELDS, ("path", "title", "format"), where))
            if not feed.path.startswith("/"):
                raise ScenarioError(f"{where}: path must start with '/'")
            if feed.path in seen:
                raise ScenarioError(f"{where}: duplicate feed path")
            if feed.format not in FEED_FORMATS:
                raise ScenarioError(
                    f"{where}: format {feed.format!r} is not one of {', '.join(FEED_FORMATS)}"
                )
            bad = sorted(set(feed.malformed_on_days) - numbers)
            if bad:
                raise ScenarioError(f"{where}: malformed_on_days names unknown day(s) {bad}")
            seen.add(feed.path)
            feeds.append(feed)
        return tuple(feeds)

    def _hashtags(self, world: dict[str, Any]) -> tuple[str, ...]:
        try:
            tags = _to_strs(world.get("hashtags") or [])
        except ValueError as exc:
            raise ScenarioError(f"world.yaml: hashtags: {exc}") from None
        for tag in tags:
            if tag.startswith("#") or not re.fullmatch(r"\w+", tag):
                raise ScenarioError(
                    f"world.yaml: hashtag {tag!r}: write it without '#', letters and digits only"
                )
        return tags

    # --- accounts.yaml ---------------------------------------------------------------------

    def _accounts(self) -> list[_Sourced]:
        data = self._read("accounts.yaml")
        self._section(data, "accounts.yaml", ("accounts",))
        out: list[_Sourced] = []
        seen: set[str] = set()
        for i, raw in enumerate(self._list(data, "accounts", "accounts.yaml")):
            where = _label("accounts.yaml", "account", raw, "username", i)
            fields = _fields(
                raw, _ACCOUNT_FIELDS, ("username", "display_name", "created_at"), where
            )
            account = Account(**fields)
            if not _USERNAME.match(account.username):
                raise ScenarioError(f"{where}: username may hold only letters, digits and '_'")
            if account.username in seen:
                # Posts refer to accounts by username alone, so it must be unique even across
                # domains.
                raise ScenarioError(f"{where}: duplicate username")
            seen.add(account.username)
            out.append(_Sourced(account, "accounts.yaml", None))
        if not out:
            raise ScenarioError("accounts.yaml: 'accounts' must list at least one account")
        return out

    # --- day<N>.yaml -----------------------------------------------------------------------

    def _day_file(
        self,
        day: Day,
        articles: list[_Sourced],
        posts: list[_Sourced],
        papers: list[_Sourced],
    ) -> None:
        file = f"day{day.number}.yaml"
        data = self._read(file)
        self._section(data, file, ("notes", "articles", "posts", "papers", "spam_flood"))
        begin, end = _midnight(day.date), _midnight(day.date + timedelta(days=1))

        def inside(where: str, field: str, when: datetime) -> None:
            # Strictly after midnight: "day:N" on the clock is the midnight that ends day N, so
            # an item at exactly midnight would belong to two days.
            if not begin < when < end:
                raise ScenarioError(
                    f"{where}: {field} {when.isoformat()} is not inside day {day.number} "
                    f"({day.date.isoformat()}, after 00:00 and before 24:00 UTC)"
                )

        for i, raw in enumerate(self._list(data, "articles", file)):
            where = _label(file, "article", raw, "slug", i)
            article = self._article(raw, where)
            inside(where, "published_at", article.published_at)
            articles.append(_Sourced(article, file, day.number))
        for i, raw in enumerate(self._list(data, "posts", file)):
            where = _label(file, "post", raw, "key", i)
            post = self._post(raw, where)
            inside(where, "created_at", post.created_at)
            posts.append(_Sourced(post, file, day.number))
        if "spam_flood" in data:
            for post in _spam_flood(data["spam_flood"], f"{file}: spam_flood"):
                inside(f"{file}: post {post.key!r}", "created_at", post.created_at)
                posts.append(_Sourced(post, file, day.number))
        for i, raw in enumerate(self._list(data, "papers", file)):
            where = _label(file, "paper", raw, "arxiv_id", i)
            paper = self._paper(raw, where)
            inside(where, "published_at", paper.published_at)
            papers.append(_Sourced(paper, file, day.number))

    @staticmethod
    def _article(raw: Any, where: str) -> Article:
        fields = _fields(
            raw,
            _ARTICLE_FIELDS,
            ("slug", "title", "author", "section", "published_at", "summary", "paragraphs"),
            where,
        )
        article = Article(**fields)
        if not _SLUG.match(article.slug):
            raise ScenarioError(f"{where}: slug must be lowercase words joined by '-'")
        if not article.paragraphs:
            raise ScenarioError(f"{where}: paragraphs must not be empty")
        if article.updated_at is not None and article.updated_at < article.published_at:
            raise ScenarioError(f"{where}: updated_at is before published_at")
        return article

    @staticmethod
    def _post(raw: Any, where: str) -> Post:
        post = Post(**_fields(raw, _POST_FIELDS, ("key", "account", "created_at"), where))
        if not _KEY.match(post.key):
            raise ScenarioError(f"{where}: key may hold only letters, digits, '-', '_' and '.'")
        if post.reblog_of is not None:
            if post.text or post.edited_text or post.spoiler_text:
                raise ScenarioError(f"{where}: a boost (reblog_of) has no text of its own")
        elif not post.text:
            raise ScenarioError(f"{where}: text is required unless the post is a boost")
        if (post.edited_at is None) != (post.edited_text is None):
            raise ScenarioError(f"{where}: edited_at and edited_text go together")
        if post.edited_at is not None and post.edited_at <= post.created_at:
            raise ScenarioError(f"{where}: edited_at must be after created_at")
        if post.deleted_at is not None and post.deleted_at <= post.created_at:
            raise ScenarioError(f"{where}: deleted_at must be after created_at")
        if post.sensitive is False and post.spoiler_text:
            # Mastodon marks a post with a content warning as sensitive; keep the two in step.
            post = dataclasses.replace(post, sensitive=True)
        return post

    @staticmethod
    def _paper(raw: Any, where: str) -> Paper:
        raw = dict(raw) if isinstance(raw, dict) else raw
        if isinstance(raw, dict):
            # Defaults that follow from other fields (a first version is updated when published).
            raw.setdefault("version", 1)
            if "published_at" in raw:
                raw.setdefault("updated_at", raw["published_at"])
            if "primary_category" in raw:
                raw.setdefault("categories", [raw["primary_category"]])
        paper = Paper(
            **_fields(
                raw,
                _PAPER_FIELDS,
                ("arxiv_id", "title", "abstract", "authors", "primary_category", "published_at"),
                where,
            )
        )
        if not _ARXIV_ID.match(paper.arxiv_id):
            raise ScenarioError(f"{where}: arxiv_id must look like 2611.01234")
        if paper.primary_category not in paper.categories:
            raise ScenarioError(f"{where}: categories must include the primary category")
        if paper.updated_at < paper.published_at:
            raise ScenarioError(f"{where}: updated_at is before published_at")
        if paper.version < 1 or not paper.authors:
            raise ScenarioError(f"{where}: needs version >= 1 and at least one author")
        return paper

    # --- archive.yaml ----------------------------------------------------------------------

    def _archive(self, day_one: Day) -> list[_Sourced]:
        data = self._read("archive.yaml", required=False)
        self._section(data, "archive.yaml", ("notes", "articles", "generate"))
        limit = _midnight(day_one.date)
        out: list[_Sourced] = []
        for i, raw in enumerate(self._list(data, "articles", "archive.yaml")):
            where = _label("archive.yaml", "article", raw, "slug", i)
            out.append(_Sourced(self._article(raw, where), "archive.yaml", None))
        generate = data.get("generate")
        if generate:
            templates = self._read("archive_templates.yaml")
            taken = {s.item.slug for s in out}
            for article in generate_archive(templates, taken, "archive_templates.yaml"):
                out.append(_Sourced(article, "archive_templates.yaml", None))
        for s in out:
            if s.item.published_at >= limit:
                raise ScenarioError(
                    f"{s.file}: article {s.item.slug!r}: published_at "
                    f"{s.item.published_at.isoformat()} is not before day 1 ({day_one.date})"
                )
        return out

    # --- cross-item checks -----------------------------------------------------------------

    @staticmethod
    def _assign_sequences(posts: list[_Sourced]) -> None:
        # Posts in the same millisecond would share a snowflake id; number them in file order
        # so ids stay unique and deterministic without the author having to care.
        used: dict[int, int] = {}
        for s in posts:
            post: Post = s.item
            millis = int(post.created_at.timestamp() * 1000)
            if post.sequence == 0 and millis in used:
                s.item = dataclasses.replace(post, sequence=used[millis] + 1)
            used[millis] = max(used.get(millis, 0), s.item.sequence)

    @staticmethod
    def _check_unique(items: list[_Sourced], kind: str, key: Callable[[Any], str]) -> None:
        seen: dict[str, str] = {}
        for s in items:
            k = key(s.item)
            if k in seen:
                raise ScenarioError(f"{s.file}: {kind} {k!r}: duplicate (also in {seen[k]})")
            seen[k] = s.file

    def _check_posts(self, posts: list[_Sourced], by_user: dict[str, _Sourced]) -> None:
        self._check_unique(posts, "post", lambda p: p.key)
        by_key = {s.item.key: s.item for s in posts}
        for s in posts:
            post: Post = s.item
            where = f"{s.file}: post {post.key!r}"
            if post.account not in by_user:
                raise ScenarioError(f"{where}: unknown account {post.account!r}")
            if post.created_at < by_user[post.account].item.created_at:
                raise ScenarioError(f"{where}: created before its account {post.account!r}")
            for field in ("reblog_of", "in_reply_to"):
                target_key = getattr(post, field)
                if target_key is None:
                    continue
                target = by_key.get(target_key)
                if target is None:
                    raise ScenarioError(f"{where}: {field} names unknown post {target_key!r}")
                if target.created_at >= post.created_at:
                    raise ScenarioError(f"{where}: {field} {target_key!r} is not older than it")
                if target.reblog_of is not None:
                    raise ScenarioError(f"{where}: {field} {target_key!r} is itself a boost")

    @staticmethod
    def _check_unique_ids(posts: list[_Sourced]) -> None:
        seen: dict[str, str] = {}
        for s in posts:
            pid = s.item.id
            if pid in seen:
                raise ScenarioError(
                    f"{s.file}: post {s.item.key!r}: same created_at and sequence as post "
                    f"{seen[pid]!r}; give one a different sequence"
                )
            seen[pid] = s.item.key

    # --- facts.yaml ------------------------------------------------------------------------

    def _facts(
        self,
        scenario: Scenario,
        days: tuple[Day, ...],
        accounts: list[_Sourced],
        posts: list[_Sourced],
        articles: list[_Sourced],
        archive: list[_Sourced],
        papers: list[_Sourced],
    ) -> tuple[Fact, ...]:
        data = self._read("facts.yaml")
        self._section(data, "facts.yaml", ("notes", "facts"))
        bad_days = {d.number for d in days if d.bad_batch}
        users = {s.item.username: s.item for s in accounts}
        # ref -> (published_at, day number or None for the archive, the item)
        refs: dict[str, tuple[datetime, int | None, Any]] = {}
        for s in posts:
            refs[f"post:{s.item.key}"] = (s.item.created_at, s.day, s.item)
        for s in (*articles, *archive):
            refs[f"article:{s.item.slug}"] = (s.item.published_at, s.day, s.item)
        for s in papers:
            refs[f"paper:{s.item.arxiv_id}"] = (s.item.published_at, s.day, s.item)

        facts: list[Fact] = []
        by_key: dict[str, Fact] = {}
        for i, raw in enumerate(self._list(data, "facts", "facts.yaml")):
            where = _label("facts.yaml", "fact", raw, "key", i)
            fields = _fields(
                raw, _FACT_FIELDS, ("key", "question", "answer", "evidence", "persona"), where
            )
            supersedes = fields.pop("supersedes", None)
            if fields["key"] in by_key:
                raise ScenarioError(f"{where}: duplicate fact key")
            if fields["persona"] not in PERSONAS:
                raise ScenarioError(
                    f"{where}: persona {fields['persona']!r} is not one of {', '.join(PERSONAS)}"
                )
            if not fields["evidence"]:
                raise ScenarioError(f"{where}: evidence must name at least one item")
            for ref in fields["evidence"]:
                kind, sep, _ = ref.partition(":")
                if not sep or kind not in _EVIDENCE_KINDS:
                    raise ScenarioError(
                        f"{where}: evidence {ref!r} must look like article:<slug>, "
                        "post:<key> or paper:<arxiv_id>"
                    )
                if ref not in refs:
                    raise ScenarioError(f"{where}: evidence {ref!r} does not exist")
                item = refs[ref][2]
                if kind == "post":
                    author = users[item.account]
                    if not author.indexable or author.noindex or item.reblog_of:
                        # A crawler must skip opted-out accounts, so a fact resting on them
                        # could never be learned legitimately.
                        raise ScenarioError(
                            f"{where}: evidence {ref!r} is a boost or from an account that "
                            "opted out of indexing"
                        )
            if all(refs[r][1] in bad_days for r in fields["evidence"]):
                raise ScenarioError(
                    f"{where}: all its evidence is on a bad-batch day; the gate rejects that "
                    "day, so the fact could never be learned"
                )
            answer = fields["answer"].casefold()
            if not any(answer in evidence_text(scenario, r).casefold() for r in fields["evidence"]):
                raise ScenarioError(
                    f"{where}: answer {fields['answer']!r} does not appear in any of its "
                    f"evidence ({', '.join(fields['evidence'])})"
                )
            distractors = fields.get("distractors", ())
            folded = [d.casefold() for d in distractors]
            if answer in folded:
                raise ScenarioError(f"{where}: a distractor equals the answer")
            if len(set(folded)) != len(folded):
                raise ScenarioError(f"{where}: distractors must differ from each other")
            available_at = min(refs[r][0] for r in fields["evidence"])
            if supersedes is not None:
                old = by_key.get(supersedes)
                if old is None:
                    raise ScenarioError(
                        f"{where}: supersedes {supersedes!r}, which is not an earlier fact"
                    )
                if old.available_at >= available_at:
                    raise ScenarioError(
                        f"{where}: supersedes {supersedes!r} but is not available later than it"
                    )
            fact = Fact(
                available_at=available_at,
                supersedes=supersedes,
                **fields,
            )
            facts.append(fact)
            by_key[fact.key] = fact
        return tuple(facts)


# --- the spam flood ------------------------------------------------------------------------

_SPAM_FIELDS: dict[str, Callable[[Any], Any]] = {
    "seed": _to_int,
    "count": _to_int,
    "key_prefix": _to_text,
    "accounts": _to_strs,
    "first_at": _to_datetime,
    "every_seconds": _to_int,
    "language": _to_text,
    "templates": _to_strs,
    "words": lambda v: v,
}


def _spam_flood(raw: Any, where: str) -> list[Post]:
    """Expand a spam template into ``count`` near-duplicate posts, deterministically.

    Each post picks a template and fills each ``{slot}`` with a word from ``words[slot]``,
    so posts differ by a word or a number, the way real spam floods evade exact-match filters.
    """
    spec = _fields(
        raw,
        _SPAM_FIELDS,
        ("seed", "count", "accounts", "first_at", "templates", "words"),
        where,
    )
    words = spec["words"]
    if not isinstance(words, dict) or not all(
        isinstance(v, list) and v and all(isinstance(w, str | int) for w in v)
        for v in words.values()
    ):
        raise ScenarioError(f"{where}: words must map each slot to a non-empty list of words")
    for n, template in enumerate(spec["templates"], 1):
        for slot in _slots(template):
            if slot not in words:
                raise ScenarioError(f"{where}: template {n} uses {{{slot}}}, not in words")
    if spec["count"] < 1 or not spec["accounts"]:
        raise ScenarioError(f"{where}: needs count >= 1 and at least one account")
    rng = random.Random(spec["seed"])
    every = spec.get("every_seconds", 60)
    prefix = spec.get("key_prefix", "spam")
    posts = []
    for i in range(spec["count"]):
        template = spec["templates"][rng.randrange(len(spec["templates"]))]
        text = template.format_map({slot: str(rng.choice(words[slot])) for slot in words})
        created = spec["first_at"] + timedelta(seconds=i * every + rng.randrange(max(every, 1)))
        posts.append(
            Post(
                key=f"{prefix}-{i + 1}",
                account=spec["accounts"][i % len(spec["accounts"])],
                created_at=created,
                text=text,
                language=spec.get("language", "en"),
            )
        )
    return posts


def _slots(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


# --- the generated archive -----------------------------------------------------------------


def generate_archive(
    templates: dict[str, Any], taken: set[str], file: str = "archive_templates.yaml"
) -> list[Article]:
    """Generate archive articles from ``archive_templates.yaml`` (see that file's header)."""
    return _ArchiveGenerator(templates, taken, file).generate()


class _Entity(dict):
    """A generated named thing; formats as its name, ``{town[population]}`` reads attributes."""

    def __format__(self, spec: str) -> str:
        return format(self["name"], spec)


class _ArchiveGenerator:
    _MONTHS = (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    )

    def __init__(self, data: dict[str, Any], taken: set[str], file: str) -> None:
        self.data = data
        self.file = file
        self.taken = set(taken)
        try:
            self.rng = random.Random(_to_int(data.get("seed", 0)))
            period = data.get("period") or {}
            self.first = _to_date(period.get("first", "2019-01-01"))
            self.last = _to_date(period.get("last", "2026-10-31"))
        except ValueError as exc:
            raise ScenarioError(f"{file}: {exc}") from None
        self.lists: dict[str, list[str]] = data.get("lists") or {}
        self.entities: dict[str, list[_Entity]] = {}

    def fail(self, where: str, msg: str) -> ScenarioError:
        return ScenarioError(f"{self.file}: {where}: {msg}")

    def generate(self) -> list[Article]:
        self._make_entities()
        out: list[Article] = []
        kinds = self.data.get("kinds") or {}
        if not isinstance(kinds, dict):
            raise self.fail("kinds", "must map kind names to templates")
        for kind, spec in kinds.items():
            out.extend(self._kind(kind, spec))
        return out

    def _value(self, spec: Any, where: str, ctx: Mapping[str, Any] | None = None) -> Any:
        """Draw one value: a list (pick one), a {range: [a, b]} or {entity: kind} mapping."""
        if isinstance(spec, list):
            if not spec:
                raise self.fail(where, "empty list")
            return self.rng.choice(spec)
        if isinstance(spec, dict) and "range" in spec:
            lo, hi = spec["range"]
            step = spec.get("step", 1)
            n = self.rng.randrange(lo, hi + 1, step)
            fmt = spec.get("format", "")  # e.g. "," for thousands separators
            return format(n, fmt) if fmt else n
        if isinstance(spec, dict) and "entity" in spec:
            pool = self.entities.get(spec["entity"])
            if not pool:
                raise self.fail(where, f"no entities of kind {spec['entity']!r} (define it first)")
            return self.rng.choice(pool)
        if isinstance(spec, dict) and "sum" in spec and ctx is not None:
            return sum(int(str(ctx[name]).replace(",", "")) for name in spec["sum"])
        if isinstance(spec, str | int):
            return spec
        raise self.fail(where, f"cannot draw a value from {spec!r}")

    def _make_entities(self) -> None:
        for kind, spec in (self.data.get("entities") or {}).items():
            where = f"entities: {kind}"
            # Names are plain strings (attributes drawn below) or mappings with fixed
            # attributes, for things whose parts must fit together (a dish and its ingredients).
            names: list[Any] = list(spec.get("names") or [])
            if "first" in spec and "last" in spec:
                # People: unique first+last combinations, in a seeded order.
                combos = [f"{a} {b}" for a in spec["first"] for b in spec["last"]]
                self.rng.shuffle(combos)
                names += combos[: spec.get("count", 40)]
            if not names:
                raise self.fail(where, "needs names, or first and last")
            pool = []
            for name in names:
                entity = _Entity(name) if isinstance(name, dict) else _Entity(name=name)
                if "name" not in entity:
                    raise self.fail(where, f"entity {name!r} has no name")
                for attr, attr_spec in (spec.get("attributes") or {}).items():
                    if attr not in entity:
                        entity[attr] = self._value(attr_spec, f"{where}: {attr}", entity)
                pool.append(entity)
            self.entities[kind] = pool

    def _date(self) -> datetime:
        span = (self.last - self.first).days
        day = self.first + timedelta(days=self.rng.randrange(span + 1))
        return datetime.combine(
            day, time(self.rng.randrange(6, 21), self.rng.randrange(60)), tzinfo=UTC
        )

    def _kind(self, kind: str, spec: dict[str, Any]) -> list[Article]:
        where = f"kinds: {kind}"
        for field in ("section", "title", "summary", "paragraphs"):
            if field not in spec:
                raise self.fail(where, f"missing {field!r}")
        each = spec.get("each")
        if each is not None:
            subjects: list[Any] = list(self.entities.get(each) or [])
            if not subjects:
                raise self.fail(where, f"each: no entities of kind {each!r}")
            subjects = subjects[: spec.get("count", len(subjects))]
        else:
            subjects = [None] * spec.get("count", 1)
        out = []
        for n, subject in enumerate(subjects):
            published = self._date()
            ctx: dict[str, Any] = {
                "year": published.year,
                "prev_year": published.year - 1,
                "month": self._MONTHS[published.month - 1],
                "weekday": published.strftime("%A"),
                "date": f"{self._MONTHS[published.month - 1]} {published.day}, {published.year}",
            }
            if subject is not None:
                ctx[each] = subject
            used = {id(subject)}
            for var, pick in (spec.get("pick") or {}).items():
                # Distinct entities within one article: a team never plays itself.
                for _ in range(50):
                    value = self._value({"entity": pick}, f"{where}: pick {var}")
                    if id(value) not in used:
                        break
                used.add(id(value))
                ctx[var] = value
            for var, draw in (spec.get("draw") or {}).items():
                ctx[var] = self._value(draw, f"{where}: draw {var}", ctx)
            fmt = functools.partial(self._fill, ctx=ctx, where=where)
            title = fmt(self._value(spec["title"], where))
            summary = fmt(self._value(spec["summary"], where))
            paragraphs = []
            for para in spec["paragraphs"]:
                sentences = [fmt(self._value(group, where)) for group in para]
                text = " ".join(s for s in sentences if s)
                if text:
                    paragraphs.append(text)
            slug = _slugify(title)
            base, k = slug, 2
            while slug in self.taken:
                slug, k = f"{base}-{k}", k + 1
            self.taken.add(slug)
            out.append(
                Article(
                    slug=slug,
                    title=title,
                    author=str(self._value({"entity": "reporter"}, where)),
                    section=spec["section"],
                    published_at=published,
                    summary=summary,
                    paragraphs=tuple(paragraphs),
                    tags=("archive", kind.replace("_", "-")),
                )
            )
            del n
        return out

    def _fill(self, template: str, ctx: dict[str, Any], where: str) -> str:
        # Fill {var} from the article's context; a name not there is drawn from `lists` (once
        # per article, so "{dish}" twice in one article is the same dish). List entries may
        # hold placeholders themselves, hence a few passes.
        text = template
        for _ in range(4):
            if "{" not in text:
                break
            for slot in _slots(text):
                root = re.split(r"[\[.]", slot, maxsplit=1)[0]
                if root not in ctx:
                    if root not in self.lists:
                        raise self.fail(where, f"{{{slot}}} is neither drawn nor in lists")
                    ctx[root] = self._value(self.lists[root], f"lists: {root}")
            try:
                text = text.format_map(ctx)
            except (KeyError, IndexError, ValueError) as exc:
                raise self.fail(where, f"cannot fill {template!r}: {exc}") from None
        text = text.strip()
        return text[:1].upper() + text[1:] if text else text


def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:70].rstrip("-") or "article"
