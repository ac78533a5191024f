"""Fixtures for the console's tests: the app over a store with two nights of artifacts, mounted
at ``/freshlm`` as the plugin mounts it, callers with the permissions tests need, and a
recorder in place of Airflow's REST API for the actions."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from freshlm.alerts.links import CONSOLE_PREFIX
from freshlm.console import create_app
from freshlm.console.auth import TokenExpired, TokenInvalid
from freshlm.store import Store, open_store
from tests.console.artifacts import Night, build_night

#: token -> (user name, may read DAGs, DAGs the user may trigger)
USERS = {
    "admin-token": ("admin", True, {"freshlm_rollback", "freshlm_curate"}),
    "viewer-token": ("viewer", True, set()),
    "nobody-token": ("nobody", False, set()),
}


class TokenTable:
    """Answers for the console as an auth manager would, from :data:`USERS`; the token
    ``expired`` has expired and any other unknown token is invalid."""

    async def user_from_token(self, token: str) -> Any:
        if token == "expired":
            raise TokenExpired
        if token not in USERS:
            raise TokenInvalid
        return USERS[token]

    def user_name(self, user: Any) -> str:
        return user[0]

    def may_read(self, user: Any) -> bool:
        return user[1]

    def may_trigger(self, user: Any, dag_id: str) -> bool:
        return dag_id in user[2]


class TriggerRecorder:
    """Stands in for Airflow's ``POST /dags/{id}/dagRuns``: records each call, answers a run."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, dag_id: str, conf: dict, *, token: str, note: str) -> dict:
        self.calls.append({"dag_id": dag_id, "conf": conf, "token": token, "note": note})
        return {"dag_run_id": f"manual__{len(self.calls)}", "dag_id": dag_id, "state": "queued"}


@pytest.fixture(scope="session")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Night]:
    """A store after two nights, built once (the gate runs Great Expectations): tests only
    read it."""
    root = tmp_path_factory.mktemp("console-store")
    store = open_store((root / "store").as_uri())
    return store, build_night(store, root)


@pytest.fixture
def store(night: tuple[Store, Night]) -> Store:
    return night[0]


@pytest.fixture
def artifacts(night: tuple[Store, Night]) -> Night:
    return night[1]


@pytest.fixture
def trigger() -> TriggerRecorder:
    return TriggerRecorder()


@pytest.fixture
def console(store: Store, trigger: TriggerRecorder) -> FastAPI:
    """The console mounted on a parent app at ``/freshlm``, as the API server mounts it."""
    parent = FastAPI()
    parent.mount(
        CONSOLE_PREFIX, create_app(store=lambda: store, gatekeeper=TokenTable(), trigger=trigger)
    )
    return parent


def client_for(app: FastAPI, token: str | None = "admin-token") -> TestClient:
    """A client that sends ``token`` as the UI does, in the ``_token`` cookie."""
    client = TestClient(app, base_url="http://airflow.test")
    if token is not None:
        client.cookies.set("_token", token)
    return client


@pytest.fixture
def admin(console: FastAPI) -> TestClient:
    return client_for(console)
