"""FreshLM's Airflow plugin: the console's pages on the API server and in the UI's navigation.

The console (:mod:`freshlm.console`) is mounted at ``/freshlm``; it authenticates every
request itself with Airflow's auth manager. The task extra links ("Data Docs", "Evaluation
report", "Model card") are attached to their tasks in the DAG files
(:mod:`freshlm.task_links`): Airflow 3 builds them on the worker and keeps them in XCom, so
they need no registration here. The nightly chain's deadline reference is registered here:
the scheduler only evaluates custom references a plugin names.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from freshlm.alerts.links import CONSOLE_PREFIX
from freshlm.alerts.nightly_reference import NightlyDeadline
from freshlm.console import create_app

#: The UI's navigation: each entry opens a console page (``url_route`` is the UI's own path).
_PAGES = (
    ("Models", "models", "freshlm-models"),
    ("Datasets", "datasets", "freshlm-datasets"),
    ("Freshness", "freshness", "freshlm-freshness"),
)


class FreshLMConsolePlugin(AirflowPlugin):
    name = "freshlm_console"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": CONSOLE_PREFIX, "name": "FreshLM console"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": f"FreshLM {title}",
            "href": f"{CONSOLE_PREFIX}/{path}",
            "destination": "nav",
            "category": "FreshLM",
            "url_route": route,
        }
        for title, path, route in _PAGES
    ]
    #: The nightly chain's deadline (``FRESHLM_NIGHTLY_DEADLINE``): the scheduler evaluates it
    #: from this registered class when a run of the chain is created.
    deadline_references: ClassVar[list[type]] = [NightlyDeadline]
