"""Where the console's actions reach Airflow's REST API: the users' address unless the
deployment names one reachable from inside the cluster."""

from __future__ import annotations

import pytest

from freshlm import settings as settings_module
from freshlm.console.airflow_api import DagTrigger


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    parsed = settings_module.Settings.from_env(env)
    monkeypatch.setattr(settings_module, "get_settings", lambda: parsed)


def test_actions_go_to_airflow_s_public_base_url_by_default(monkeypatch):
    _settings(monkeypatch, {})
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    assert DagTrigger().api_url == "https://airflow.example.com"


def test_a_console_api_url_setting_wins_over_the_public_address(monkeypatch):
    _settings(monkeypatch, {"FRESHLM_CONSOLE_API_URL": "http://localhost:8080/"})
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    assert DagTrigger().api_url == "http://localhost:8080"
    # An address given by the caller wins over both.
    assert DagTrigger("http://127.0.0.1:9/").api_url == "http://127.0.0.1:9"


def test_a_malformed_console_api_url_names_the_variable():
    with pytest.raises(settings_module.SettingsError, match="FRESHLM_CONSOLE_API_URL"):
        settings_module.Settings.from_env({"FRESHLM_CONSOLE_API_URL": "localhost:8080"})
