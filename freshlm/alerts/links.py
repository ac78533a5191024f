"""Where the Airflow UI and FreshLM's console pages are, for the links alerts and reports carry.

The console is the FreshLM plugin's FastAPI app, mounted on the Airflow API server at
:data:`CONSOLE_PREFIX`. Every link an alert, a report or a task's extra link carries is built
here, from the API server's public base URL, so it is an ``https://`` (or ``http://``) address a
person can click whatever the store's backend is: a stored file (Data Docs, a report) is served
by the console under ``files/<store key>``, never linked as its ``s3://`` or ``file://`` URI.
The console's routes are declared against these builders (its tests check each one resolves).
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlencode

#: Where the plugin mounts the console on the API server.
CONSOLE_PREFIX = "/freshlm"


def airflow_base_url() -> str:
    """The API server's public base URL (``[api] base_url``), as the UI links are built from.

    The environment variable is read first: task processes get it from the deployment (and
    the embedded mode), and reading it needs no Airflow configuration import.
    """
    base = os.environ.get("AIRFLOW__API__BASE_URL")
    if base:
        return base
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080")


def console_url(path: str = "", base_url: str | None = None, **query: str) -> str:
    """``{base}/freshlm/{path}[?query]``; ``path`` segments are quoted, ``/`` kept."""
    base = (base_url if base_url is not None else airflow_base_url()).rstrip("/")
    url = f"{base}{CONSOLE_PREFIX}/{quote(path.lstrip('/'), safe='/')}"
    pairs = {key: value for key, value in query.items() if value is not None}
    return f"{url}?{urlencode(pairs)}" if pairs else url


def models_url(base_url: str | None = None) -> str:
    """Models: versions, aliases, the audit log, the Roll back action."""
    return console_url("models", base_url)


def model_url(version_id: str, base_url: str | None = None) -> str:
    """One model version: its card, evaluation reports and lineage."""
    return console_url(f"models/{version_id}", base_url)


def rollback_url(base_url: str | None = None) -> str:
    """The Roll back form (GET shows it, POST triggers ``freshlm_rollback``)."""
    return console_url("models/rollback", base_url)


def datasets_url(base_url: str | None = None) -> str:
    """Datasets: every published and quarantined batch with its gate verdict."""
    return console_url("datasets", base_url)


def batch_url(candidate_id: str, base_url: str | None = None) -> str:
    """One curated batch: its gate verdict, failed expectations, quarantine reasons."""
    return console_url(f"datasets/{candidate_id}", base_url)


def accept_batch_url(candidate_id: str, base_url: str | None = None) -> str:
    """The Accept batch form of a quarantined batch (GET shows it, POST triggers the rerun)."""
    return console_url(f"datasets/{candidate_id}/accept", base_url)


def lineage_url(version_id: str, base_url: str | None = None) -> str:
    """Model → training set → datasets → raw shards → crawl windows and sources."""
    return console_url(f"lineage/{version_id}", base_url)


def freshness_url(base_url: str | None = None) -> str:
    """The monitor's history as charts (lag, facts learned per night, retention)."""
    return console_url("freshness", base_url)


def store_file_url(key: str, base_url: str | None = None) -> str:
    """A published file of the store (a Data Docs page, an evaluation report, a model card)
    served by the console; ``key`` is its store key (``Store.key_for(uri)``)."""
    return console_url(f"files/{key}", base_url)
