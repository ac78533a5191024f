"""Fixtures for the store suite: the same tests run against a local folder and a real S3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from freshlm.settings import Settings
from freshlm.store import Store, open_store
from tests.support.s3_server import S3Server

MULTIPART_THRESHOLD_MB = 5  # S3's minimum part size; keeps multipart tests small


def s3_settings(server: S3Server, bucket: str, **env: str) -> Settings:
    """Settings for a store in ``bucket`` on ``server``, as a deployment would set them."""
    return Settings.from_env(
        {
            "FRESHLM_STORE_URI": f"s3://{bucket}/freshlm",
            "FRESHLM_S3_ENDPOINT_URL": server.endpoint_url,
            "FRESHLM_S3_MAX_ATTEMPTS": "2",
            "FRESHLM_S3_MULTIPART_THRESHOLD_MB": str(MULTIPART_THRESHOLD_MB),
            **env,
        }
    )


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> None:
    """boto3 finds the test server's (fake) credentials in the environment, as in production."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def make_s3_store(s3_server: S3Server, s3_credentials: None) -> Callable[..., Store]:
    """Open a store in a fresh bucket of the shared server; keyword args become FRESHLM_* env."""

    def make(bucket: str | None = None, **env: str) -> Store:
        bucket = bucket or s3_server.create_bucket()
        return open_store(settings=s3_settings(s3_server, bucket, **env))

    return make


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """An empty store on each backend: the embedded default folder, and S3 on SeaweedFS."""
    if request.param == "local":
        # No FRESHLM_STORE_URI: the embedded default under FRESHLM_HOME.
        return open_store(settings=Settings.from_env({"FRESHLM_HOME": str(tmp_path)}))
    return request.getfixturevalue("make_s3_store")()
