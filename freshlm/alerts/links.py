"""Where the Airflow UI is, for the links that alerts and reports carry."""

from __future__ import annotations

import os


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
