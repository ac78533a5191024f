"""The nightly deadline's budget and its alert, without Airflow running (the alert under a real
Airflow is tests/dags/test_deadline.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
from pathlib import Path

import pytest

from freshlm.alerts import deadline as nightly
from freshlm.alerts.nightly_reference import NightlyDeadline, next_deadline
from freshlm.settings import Settings, SettingsError

UTC = dt.UTC
PLUGIN_FILE = Path(__file__).resolve().parents[3] / "plugins" / "freshlm_console.py"


@pytest.mark.parametrize(
    ("created", "deadline", "due"),
    [
        ("2026-11-03T02:00:00", "08:00", "2026-11-03T08:00:00"),  # the scheduled crawl
        ("2026-11-03T07:59:59", "08:00", "2026-11-03T08:00:00"),  # a stage queued just before
        ("2026-11-03T08:00:00", "08:00", "2026-11-04T08:00:00"),  # at or after: the next night
        ("2026-11-03T12:30:00", "08:00", "2026-11-04T08:00:00"),  # a manual rerun at noon
        ("2026-11-03T22:30:00", "01:00", "2026-11-04T01:00:00"),  # past midnight
    ],
)
def test_a_run_is_due_at_the_first_deadline_after_it_was_created(created, deadline, due):
    settings = Settings.from_env({"FRESHLM_NIGHTLY_DEADLINE": deadline})
    moment = dt.datetime.fromisoformat(created).replace(tzinfo=UTC)
    expected = dt.datetime.fromisoformat(due).replace(tzinfo=UTC)
    assert next_deadline(moment, settings.nightly_deadline) == expected


def test_the_deadline_serializes_as_the_scheduler_reads_it_and_the_plugin_registers_it():
    from airflow.serialization.encoders import encode_deadline_alert

    alert = nightly.nightly_deadline(dt.time(7, 30))
    assert alert.interval == dt.timedelta(0)
    assert alert.callback.path == "freshlm.alerts.deadline.on_deadline_missed"
    # Through Airflow's own serialization (the scheduler's side finds the class through the
    # plugin, which registers it).
    encoded = encode_deadline_alert(alert)
    reference = encoded["reference"]
    assert reference["time_of_day"] == "07:30:00"
    assert reference["__class_path"] == "freshlm.alerts.nightly_reference.NightlyDeadline"
    decoded = NightlyDeadline.deserialize_reference(reference)
    assert decoded == NightlyDeadline("07:30:00")
    before = dt.datetime.now(UTC)
    due = decoded._evaluate_with(session=None)
    assert before < due <= before + dt.timedelta(days=1) and due.time() == dt.time(7, 30)
    assert NightlyDeadline in _console_plugin().deadline_references


def _console_plugin():
    """The FreshLM plugin class, loaded from its file as Airflow's plugin manager loads it."""
    spec = importlib.util.spec_from_file_location("freshlm_console", PLUGIN_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FreshLMConsolePlugin


def test_the_deadline_can_be_switched_off_and_a_bad_value_names_the_setting():
    assert (
        nightly.nightly_deadline(settings=Settings.from_env({"FRESHLM_NIGHTLY_DEADLINE": "none"}))
        is None
    )
    for bad in ("8am", "25:00", "08:60", "8:00"):
        with pytest.raises(SettingsError, match=f"FRESHLM_NIGHTLY_DEADLINE='{bad}'.*HH:MM"):
            Settings.from_env({"FRESHLM_NIGHTLY_DEADLINE": bad})
    default = Settings.from_env({})
    assert default.nightly_deadline == dt.time(8, 0)
    assert Settings.from_env(default.as_env()).nightly_deadline == dt.time(8, 0)


def test_the_missed_deadline_callback_names_what_is_unfinished(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org")
    sent = []
    context = {
        "dag_run": {"dag_id": "freshlm_crawl", "dag_run_id": "scheduled__x", "state": "running"},
        "deadline": {"deadline_time": "2026-11-03T08:00:00+00:00"},
    }
    states = {"plan_crawl": "success", "crawl_0": "running", "crawl_1": "queued", "x": "failed"}
    assert nightly.alert_missed_deadline(context, lambda d, r: states, sent.append) is None
    (message,) = sent
    assert "crawl_0 (running), crawl_1 (queued)" in message.text
    assert "plan_crawl" not in message.text and "2026-11-03T08:00:00+00:00" in message.text

    # Without an answer from Airflow the lateness is still reported.
    def no_answer(dag_id, run_id):
        raise ConnectionError("supervisor gone")

    nightly.alert_missed_deadline(context, no_answer, sent.append)
    assert "? (unknown)" in sent[-1].text
    # A context that cannot even make a message never raises in the triggerer.
    assert asyncio.run(nightly.on_deadline_missed({"dag_run": "not a run"})) is None


def test_a_run_that_ended_before_its_deadline_is_not_late(caplog):
    # A refused batch or a failed task alerted when it ended; a newer run may have made it good.
    sent = []
    for state in ("failed", "success"):
        context = {
            "dag_run": {"dag_id": "freshlm_curate", "dag_run_id": "asset__x", "state": state},
            "deadline": {"deadline_time": "2026-11-03T08:00:00+00:00"},
        }
        with caplog.at_level("INFO", logger="freshlm.alerts.deadline"):
            assert nightly.alert_missed_deadline(context, lambda d, r: {}, sent.append) is None
        assert f"freshlm_curate run asset__x had ended ({state})" in caplog.text
    assert sent == []
