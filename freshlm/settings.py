"""FreshLM's typed configuration, read from the environment in one place.

Every setting has a ``FRESHLM_*`` environment override and a default that makes the embedded
mode (``make demo``) work with no environment at all. Invalid values fail at start with a
:class:`SettingsError` that names the variable, the value and what it accepts, so a typo in a
deployment is caught before any task runs instead of half-way through a night.

Usage::

    from freshlm.settings import get_settings
    s = get_settings()            # cached; reads os.environ once
    s.store_uri                   # 'file:///abs/path/.freshlm/store'

``python -m freshlm.settings`` prints the effective configuration; ``--markdown`` prints the
table that the README carries.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "FRESHLM_"


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable and what it accepts."""


# --- parsers: each takes the raw string and returns the typed value or raises ValueError -------
# The ValueError message says what the variable accepts; SettingsError adds the name and value.


def _str(raw: str) -> str:
    if not raw.strip():
        raise ValueError("a non-empty string")
    return raw.strip()


def _optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("an integer TCP port from 1 to 65535") from None
    if not 1 <= value <= 65535:
        raise ValueError("an integer TCP port from 1 to 65535")
    return value


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("a positive integer") from None
    if value < 1:
        raise ValueError("a positive integer")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("a positive number") from None
    if not value > 0:
        raise ValueError("a positive number")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("one of true/false, yes/no, on/off, 1/0")


_URI_RE = re.compile(r"^(file://.+|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?)$")


def _store_uri(raw: str) -> str:
    raw = raw.strip()
    if not _URI_RE.match(raw):
        raise ValueError("a file:///absolute/path or s3://bucket[/prefix] URI")
    if raw.startswith("file://") and not raw[len("file://") :].startswith("/"):
        raise ValueError("a file:///absolute/path or s3://bucket[/prefix] URI")
    return raw.rstrip("/")


def _http_url(raw: str) -> str:
    raw = raw.strip()
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", raw):
        raise ValueError("an http:// or https:// URL")
    return raw.rstrip("/")


_CRON_FIELD = r"(\*|\d+|\d+-\d+)(/\d+)?(,(\*|\d+|\d+-\d+)(/\d+)?)*"
_CRON_RE = re.compile(r"^" + r"\s+".join([_CRON_FIELD] * 5) + r"$")


def _cron(raw: str) -> str | None:
    raw = raw.strip()
    if raw.lower() == "none":
        return None
    if raw.startswith("@") and raw in {"@daily", "@hourly", "@weekly", "@monthly"}:
        return raw
    if not _CRON_RE.match(raw):
        raise ValueError(
            "a 5-field cron expression in UTC such as '0 2 * * *', @daily/@hourly, or none"
        )
    return raw


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return value

    return parse


# --- the settings ------------------------------------------------------------------------------


def _field(env: str, parse: Callable[[str], Any], default: Any, doc: str) -> Any:
    """Declare one setting: its env variable (without prefix), parser, default and meaning.

    A ``default`` that is callable is computed from the settings parsed before it, so
    derived defaults (``store_uri`` under ``home``) follow an overridden ``FRESHLM_HOME``.
    """
    return dataclasses.field(
        metadata={"env": ENV_PREFIX + env, "parse": parse, "default": default, "doc": doc}
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path = _field(
        "HOME",
        lambda raw: Path(_str(raw)).expanduser().resolve(),
        lambda s: Path(".freshlm").resolve(),
        "Root folder of everything the embedded mode writes (store, Airflow home, logs).",
    )
    store_uri: str = _field(
        "STORE_URI",
        _store_uri,
        lambda s: (s["home"] / "store").as_uri(),
        "Artifact store root: file:///abs/path (embedded) or s3://bucket/prefix.",
    )
    s3_endpoint_url: str | None = _field(
        "S3_ENDPOINT_URL",
        lambda raw: _http_url(raw) if raw.strip() else None,
        None,
        "S3 endpoint override for S3-compatible servers (SeaweedFS, MinIO); empty means AWS.",
    )
    s3_region: str = _field("S3_REGION", _str, "us-east-1", "S3 region name.")
    s3_max_attempts: int = _field(
        "S3_MAX_ATTEMPTS",
        _positive_int,
        5,
        "Attempts per S3 call, with exponential backoff, before a transient error is raised.",
    )
    s3_multipart_threshold_mb: int = _field(
        "S3_MULTIPART_THRESHOLD_MB",
        _positive_int,
        8,
        "Uploads at least this large go through boto3's multipart transfer manager.",
    )
    world_host: str = _field(
        "WORLD_HOST", _str, "127.0.0.1", "Interface the sandbox world server binds to."
    )
    world_port: int = _field("WORLD_PORT", _port, 8766, "Port of the sandbox world server.")
    world_url: str = _field(
        "WORLD_URL",
        _http_url,
        lambda s: f"http://{s['world_host']}:{s['world_port']}",
        "Base URL the crawlers use to reach the sandbox world.",
    )
    airflow_port: int = _field(
        "AIRFLOW_PORT", _port, 8080, "Port of the local Airflow API server and UI (make demo)."
    )
    airflow_parallelism: int = _field(
        "AIRFLOW_PARALLELISM",
        _positive_int,
        2,
        "LocalExecutor worker processes; the default suits a 2-core laptop.",
    )
    sources_file: Path = _field(
        "SOURCES_FILE",
        lambda raw: Path(_str(raw)).expanduser().resolve(),
        lambda s: Path(__file__).resolve().parent.parent / "crawlers" / "sources.yaml",
        "The crawl's sources file (feeds, Mastodon instances and hashtags, arXiv categories).",
    )
    crawl_schedule: str | None = _field(
        "CRAWL_SCHEDULE",
        _cron,
        "0 2 * * *",
        "Cron (UTC) of the nightly crawl; `none` for manual runs only (the demo and the tests"
        " drive the sandbox world's clock and trigger each night themselves).",
    )
    slack_conn_id: str = _field(
        "SLACK_CONN_ID", _str, "freshlm_slack", "Airflow connection id used for Slack alerts."
    )
    user_agent: str = _field(
        "USER_AGENT",
        _str,
        "FreshLM/0.1 (+https://github.com/freshlm/freshlm; research crawler)",
        "User-Agent the crawlers send.",
    )
    http_timeout_s: float = _field(
        "HTTP_TIMEOUT_S", _positive_float, 30.0, "Timeout of one outbound HTTP request, seconds."
    )
    log_level: str = _field(
        "LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info", "Log level."
    )

    @property
    def airflow_home(self) -> Path:
        """Where the embedded Airflow keeps its config, SQLite DB and logs."""
        return self.home / "airflow"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse every setting from ``environ`` (default ``os.environ``), in declaration order.

        Raises :class:`SettingsError` for the first invalid value.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            meta = f.metadata
            raw = environ.get(meta["env"])
            if raw is None or (raw == "" and meta["default"] is not None):
                default = meta["default"]
                values[f.name] = default(values) if callable(default) else default
                continue
            try:
                values[f.name] = meta["parse"](raw)
            except ValueError as exc:
                raise SettingsError(f"{meta['env']}={raw!r} is invalid: expected {exc}") from None
        return cls(**values)

    def as_env(self) -> dict[str, str]:
        """The settings as ``FRESHLM_*`` variables, to hand to subprocesses unchanged."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                env[f.metadata["env"]] = str(value)
            elif f.metadata["default"] is not None:
                env[f.metadata["env"]] = "none"  # explicitly switched off (crawl_schedule)
        return env


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, parsed once from the environment."""
    return Settings.from_env()


def markdown_table() -> str:
    """The configuration table for the README: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = f.metadata["default"]
        if callable(default):
            shown = {
                "home": "`./.freshlm`",
                "store_uri": "`file://$FRESHLM_HOME/store`",
                "world_url": "`http://$FRESHLM_WORLD_HOST:$FRESHLM_WORLD_PORT`",
                "sources_file": "`crawlers/sources.yaml`",
            }.get(f.name, "derived")
        else:
            shown = "(none)" if default is None else f"`{default}`"
        rows.append(f"| `{f.metadata['env']}` | {shown} | {f.metadata['doc']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--markdown" in argv:
        print(markdown_table())
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"freshlm: configuration error: {exc}", file=sys.stderr)
        return 2
    for key, value in sorted(settings.as_env().items()):
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
