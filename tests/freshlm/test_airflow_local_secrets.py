"""The local Airflow's secrets file and passwords file are owner-only from the moment they exist."""

from __future__ import annotations

import stat
from pathlib import Path

from freshlm.airflow_local import LocalAirflow


def test_secret_files_are_never_readable_by_others(tmp_path: Path, monkeypatch) -> None:
    # A chmod after the write would come too late: take it away and the mode must still be 0600.
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    airflow = LocalAirflow(tmp_path / "airflow", 18080)
    airflow.env()
    for name in ("freshlm-secrets.json", "passwords.json"):
        mode = stat.S_IMODE((tmp_path / "airflow" / name).stat().st_mode)
        assert mode == 0o600, f"{name} is {oct(mode)}"
