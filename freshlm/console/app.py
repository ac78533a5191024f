"""The console's FastAPI app: its pages, the error page, and what they read and call.

:func:`create_app` is what the plugin mounts at :data:`freshlm.alerts.links.CONSOLE_PREFIX`.
Building it does no I/O: the store is opened on first use and the auth manager is the API
server's, looked up per request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from freshlm.console import datasets, freshness, lineage, models, stored_files
from freshlm.console.airflow_api import DagTrigger
from freshlm.console.auth import AirflowGatekeeper, Gatekeeper, Reader
from freshlm.console.rendering import PageError, error_page, render
from freshlm.store import Store


def create_app(
    *,
    store: Callable[[], Store] | None = None,
    gatekeeper: Gatekeeper | None = None,
    trigger: Callable[..., dict[str, Any]] | None = None,
) -> FastAPI:
    """The console. ``store``: opens the artifact store (default: the settings' store);
    ``gatekeeper``: the auth manager's answers (default: Airflow's); ``trigger``: creates DAG
    runs as the caller (default: Airflow's REST API at ``[api] base_url``)."""
    app = FastAPI(
        title="FreshLM console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.open_store = store or _settings_store()
    app.state.gatekeeper = gatekeeper or AirflowGatekeeper()
    app.state.trigger = trigger or DagTrigger()

    @app.exception_handler(PageError)
    async def refused(request: Request, error: PageError):
        return error_page(request, error)

    @app.get("/", name="index")
    def index(request: Request, caller: Reader):
        return render(request, "index.html.j2", caller=caller)

    for module in (models, datasets, lineage, freshness, stored_files):
        app.include_router(module.router)
    return app


def _settings_store() -> Callable[[], Store]:
    opened: list[Store] = []

    def open_once() -> Store:
        if not opened:
            from freshlm.store import open_store

            opened.append(open_store())
        return opened[0]

    return open_once
