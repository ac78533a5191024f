"""Pre-flight checks fail with messages an operator can act on."""

from __future__ import annotations

import pytest

from freshlm import preflight
from freshlm.airflow_local import free_port
from freshlm.settings import Settings


def test_check_settings_reports_invalid_configuration(monkeypatch):
    monkeypatch.setenv("FRESHLM_STORE_URI", "ftp://nope")
    with pytest.raises(preflight.PreflightError, match="FRESHLM_STORE_URI='ftp://nope' is invalid"):
        preflight.check_settings()


def test_check_store_round_trips_a_probe(tmp_path):
    settings = Settings.from_env({"FRESHLM_HOME": str(tmp_path)})
    report = preflight.check_store(settings, run_id="manual__1")
    assert report["store_uri"] == (tmp_path / "store").as_uri()
    assert report["write_ms"] >= 0
    # The probe does not linger in the store.
    assert not (tmp_path / "store" / "_preflight" / "probe.json").exists()


def test_check_world_names_the_url_and_the_fix_when_unreachable(tmp_path):
    port = free_port()  # nothing listens there
    settings = Settings.from_env({"FRESHLM_HOME": str(tmp_path), "FRESHLM_WORLD_PORT": str(port)})
    with pytest.raises(preflight.PreflightError) as err:
        preflight.check_world(settings)
    assert f"http://127.0.0.1:{port}/_world/health" in str(err.value)
    assert "python -m sandbox" in str(err.value)
