"""The sources file: which feeds, instances, hashtags and categories the nightly crawl fetches.

Loaded and validated here, with errors that name the file, the source and the field, so an
operator's typo fails the ``list_sources`` task with a message rather than a crawl half-way.
See ``crawlers/sources.yaml`` for the format.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SOURCES_FILE = Path(__file__).with_name("sources.yaml")
SPIDERS = ("news", "mastodon", "arxiv")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_VAR_RE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")

# Which arguments each spider accepts, and which are required. Lists become "a,b" -a values.
SPIDER_ARGS: dict[str, tuple[set[str], set[str]]] = {
    "news": ({"feeds", "allowed_domains"}, {"feeds"}),
    "mastodon": ({"instance", "hashtags", "timelines", "access_token_env"}, {"instance"}),
    "arxiv": ({"api_url", "categories", "page_size"}, {"api_url", "categories"}),
}
POLITENESS_KEYS = {
    "download_delay_s": float,
    "concurrency_per_domain": int,
    "autothrottle": bool,
    "timeout_s": float,
    "max_items": int,
}


class SourcesError(ValueError):
    """The sources file is invalid; the message names the file, source and field."""


@dataclasses.dataclass(frozen=True)
class Politeness:
    download_delay_s: float = 1.0
    concurrency_per_domain: int = 1
    autothrottle: bool = True
    timeout_s: float | None = None
    max_items: int | None = None

    def scrapy_settings(self) -> dict[str, Any]:
        """The Scrapy settings that enforce this politeness."""
        settings: dict[str, Any] = {
            "DOWNLOAD_DELAY": self.download_delay_s,
            "CONCURRENT_REQUESTS_PER_DOMAIN": self.concurrency_per_domain,
            "AUTOTHROTTLE_ENABLED": self.autothrottle,
            "AUTOTHROTTLE_START_DELAY": max(self.download_delay_s, 0.1),
        }
        if self.timeout_s is not None:
            settings["DOWNLOAD_TIMEOUT"] = self.timeout_s
        return settings


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    spider: str
    args: Mapping[str, Any]
    politeness: Politeness
    description: str = ""

    @property
    def kind(self) -> str:
        return {"news": "news", "mastodon": "sns", "arxiv": "paper"}[self.spider]

    def spider_args(self) -> dict[str, str]:
        """The spider's ``-a`` arguments as strings (lists joined with commas)."""
        out = {}
        for key, value in self.args.items():
            out[key] = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        if self.politeness.max_items is not None:
            out["max_items"] = str(self.politeness.max_items)
        return out


def _expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, list):
        return [_expand(v, env, where) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in env:
            raise SourcesError(f"{where}: ${{{name}}} is not set in the environment")
        return env[name]

    return _VAR_RE.sub(sub, value)


def _politeness(raw: Any, base: Politeness, where: str) -> Politeness:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise SourcesError(f"{where}: politeness must be a mapping")
    values = dataclasses.asdict(base)
    for key, value in raw.items():
        if key not in POLITENESS_KEYS:
            raise SourcesError(
                f"{where}: unknown politeness key {key!r}; known: {sorted(POLITENESS_KEYS)}"
            )
        typ = POLITENESS_KEYS[key]
        ok = (
            isinstance(value, bool)
            if typ is bool
            else (isinstance(value, (int, float)) and not isinstance(value, bool))
        )
        if not ok or (typ is not bool and value < 0):
            raise SourcesError(f"{where}: politeness.{key} must be a non-negative {typ.__name__}")
        if typ is int and value != int(value):
            raise SourcesError(f"{where}: politeness.{key} must be a whole number")
        values[key] = typ(value)
    if values["concurrency_per_domain"] < 1:
        raise SourcesError(f"{where}: politeness.concurrency_per_domain must be at least 1")
    return Politeness(**values)


def load_sources(path: Path | None = None, env: Mapping[str, str] | None = None) -> list[Source]:
    """Parse and validate the sources file (default: ``FRESHLM_SOURCES_FILE`` or the packaged one).

    ``env`` (default: FreshLM's settings as ``FRESHLM_*`` variables, overridden by
    ``os.environ``) expands ``${VAR}`` references.
    """
    if env is None:
        from freshlm.settings import get_settings

        env = {**get_settings().as_env(), **os.environ}
    if path is None:
        path = Path(env.get("FRESHLM_SOURCES_FILE") or DEFAULT_SOURCES_FILE)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourcesError(f"{path}: sources file not found") from None
    except yaml.YAMLError as exc:
        raise SourcesError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), list):
        raise SourcesError(f"{path}: expected a mapping with a 'sources' list")
    unknown_top = set(doc) - {"defaults", "sources"}
    if unknown_top:
        raise SourcesError(f"{path}: unknown top-level keys {sorted(unknown_top)}")
    defaults = doc.get("defaults") or {}
    base = _politeness(defaults.get("politeness"), Politeness(), f"{path}: defaults")

    sources: list[Source] = []
    seen: set[str] = set()
    for index, raw in enumerate(doc["sources"]):
        where = f"{path}: sources[{index}]"
        if not isinstance(raw, dict):
            raise SourcesError(f"{where}: each source must be a mapping")
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise SourcesError(
                f"{where}: name {name!r} must be lowercase letters, digits and dashes"
            )
        where = f"{path}: source {name!r}"
        if name in seen:
            raise SourcesError(f"{where}: duplicate name")
        seen.add(name)
        unknown = set(raw) - {"name", "spider", "args", "politeness", "description"}
        if unknown:
            raise SourcesError(f"{where}: unknown keys {sorted(unknown)}")
        spider = raw.get("spider")
        if spider not in SPIDERS:
            raise SourcesError(f"{where}: spider {spider!r} is not one of {list(SPIDERS)}")
        args = raw.get("args") or {}
        if not isinstance(args, dict):
            raise SourcesError(f"{where}: args must be a mapping")
        allowed, required = SPIDER_ARGS[spider]
        if set(args) - allowed:
            raise SourcesError(
                f"{where}: unknown args {sorted(set(args) - allowed)} for the {spider} spider; "
                f"it accepts {sorted(allowed)}"
            )
        missing = required - {k for k, v in args.items() if v not in (None, "", [])}
        if missing:
            raise SourcesError(f"{where}: missing args {sorted(missing)} for the {spider} spider")
        args = {k: _expand(v, env, where) for k, v in args.items()}
        for key in ("feeds", "instance", "api_url"):
            for url in args.get(key, []) if isinstance(args.get(key), list) else [args.get(key)]:
                if url is not None and not re.match(r"^https?://\S+$", str(url)):
                    raise SourcesError(f"{where}: {key} {url!r} is not an http(s) URL")
        sources.append(
            Source(
                name=name,
                spider=spider,
                args=args,
                politeness=_politeness(raw.get("politeness"), base, where),
                description=str(raw.get("description", "")),
            )
        )
    if not sources:
        raise SourcesError(f"{path}: no sources configured")
    return sources


def select_sources(sources: list[Source], names: list[str] | None) -> list[Source]:
    """The sources named in ``names`` (all when empty); unknown names are an error."""
    if not names:
        return sources
    known = {s.name: s for s in sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SourcesError(f"unknown sources {unknown}; configured: {sorted(known)}")
    return [known[n] for n in names]
