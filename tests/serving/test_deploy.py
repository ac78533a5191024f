"""The reload call freshlm_deploy makes, against the real server: what it returns, and the
message each failure gives the operator."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from freshlm.airflow_local import free_port
from freshlm.alerts.callbacks import AlertedFailure
from freshlm.serving.deploy import DeployError, LoadFailed, reload_server
from freshlm.settings import Settings
from tests.serving.conftest import TOKEN, Served


def settings(tmp_path, url: str, token: str = TOKEN) -> Settings:
    return Settings.from_env(
        {"FRESHLM_HOME": str(tmp_path), "FRESHLM_SERVE_URL": url, "FRESHLM_SERVE_TOKEN": token}
    )


def test_the_call_returns_what_the_server_serves(served: Served, tmp_path):
    result = reload_server(
        version=None, actor="tests", reason="check", settings=settings(tmp_path, served.url)
    )
    assert result["result"] == "unchanged" and result["serving"] == served.base


def test_failures_say_what_to_do(served: Served, tmp_path):
    with pytest.raises(DeployError, match="FRESHLM_SERVE_TOKEN differ"):
        reload_server(
            version=None, actor="t", reason="", settings=settings(tmp_path, served.url, "wrong")
        )
    dead = settings(tmp_path, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DeployError, match=r"no model server answered.*freshlm\.serving"):
        reload_server(version=None, actor="t", reason="", settings=dead)
    with pytest.raises(DeployError, match=r"HTTP 404.*no model version"):
        reload_server(
            version="f" * 32, actor="t", reason="", settings=settings(tmp_path, served.url)
        )


def test_a_failed_load_fails_the_task_once_without_a_second_alert():
    # The server alerted Slack itself: the failure callback stays quiet (AlertedFailure) and
    # Airflow does not retry a load that would fail the same way (AirflowFailException).
    assert issubclass(LoadFailed, AlertedFailure) and issubclass(LoadFailed, AirflowFailException)
