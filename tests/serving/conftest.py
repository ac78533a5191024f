"""A real ``freshlm serve`` process over a store with two tiny model versions.

The versions are the evaluation tests' tiny GPT-2s (``baseline`` and ``candidate``, built in
seconds and shared with them); ``production`` starts at the baseline. The server polls the
alias every :data:`POLL_S` seconds and alerts through the sandbox world's Slack sink. One
server per session: the API tests run first and leave ``production`` where they found it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from freshlm.airflow_local import free_port
from freshlm.alerts.embedded import sink_connection_env
from freshlm.registry import PRODUCTION, Lineage, move_alias, publish_version
from freshlm.serving.launch import ServerProcess
from freshlm.store import Store, open_store
from tests.freshlm.evaluation.tiny_models import model_dirs

POLL_S = 0.5
TOKEN = "test-reload-token-4242"


@dataclasses.dataclass
class Served:
    server: ServerProcess
    store: Store
    base: str
    candidate: str
    folders: dict[str, Path]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, world) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("serve-home")
    store = open_store((home / "store").as_uri())
    folders = dict(zip(("base", "candidate"), model_dirs(), strict=True))
    ids = {}
    for name, folder in folders.items():
        version, _ = publish_version(
            store, folder, lineage=Lineage(kind="bootstrap", source=f"tests: {name}")
        )
        ids[name] = version.version_id
    move_alias(store, PRODUCTION, ids["base"], actor="tests", reason="start")
    server = ServerProcess(
        free_port(),
        home / "serve.log",
        env={
            "FRESHLM_HOME": str(home),
            "FRESHLM_STORE_URI": store.root_uri,
            "FRESHLM_SERVE_POLL_S": str(POLL_S),
            "FRESHLM_SERVE_TOKEN": TOKEN,
            "FRESHLM_SERVE_BACKEND": "transformers",
            "PYTHONDONTWRITEBYTECODE": "1",
            **sink_connection_env("freshlm_slack", world.url),
        },
    ).start()
    try:
        assert server.wait_ready(timeout_s=180) == ids["base"]
        yield Served(server, store, ids["base"], ids["candidate"], folders)
    finally:
        server.stop()
