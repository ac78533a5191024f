"""Fixtures for the registry suite: the same tests run on a local folder and on a real S3."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from freshlm.registry import Lineage, ModelVersion, publish_version
from freshlm.settings import Settings
from freshlm.store import Store, open_store


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """An empty store: the embedded default folder, or a fresh bucket on SeaweedFS."""
    if request.param == "local":
        return open_store(settings=Settings.from_env({"FRESHLM_HOME": str(tmp_path)}))
    server = request.getfixturevalue("s3_server")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(
        {
            "FRESHLM_STORE_URI": f"s3://{server.create_bucket()}/freshlm",
            "FRESHLM_S3_ENDPOINT_URL": server.endpoint_url,
            "FRESHLM_S3_MAX_ATTEMPTS": "2",
        }
    )
    return open_store(settings=settings)


def write_fake_model(folder: Path, seed: str) -> Path:
    """A folder with the files of a Hugging Face model; the registry never parses the weights,
    so arbitrary bytes (distinct per ``seed``) stand in for them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 300}))
    (folder / "model.safetensors").write_bytes(f"weights {seed}".encode() * 100)
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "seed": seed}))
    return folder


@pytest.fixture
def make_version(store: Store, tmp_path: Path) -> Callable[..., ModelVersion]:
    """Publish a fake model version; ``make_version("a")`` twice gives the same version."""

    def make(seed: str = "a", **lineage_fields) -> ModelVersion:
        folder = write_fake_model(tmp_path / "models" / seed, seed)
        lineage = Lineage(**{"kind": "bootstrap", "source": "tests", **lineage_fields})
        version, _ = publish_version(
            store, folder, lineage=lineage, metrics={"heldout_perplexity": 42.5}
        )
        return version

    return make
