"""The demo's part of serving: each night's question, asked of the real server over HTTP."""

from __future__ import annotations

from freshlm.settings import Settings
from sandbox.demo_serving import DemoServing, night_question
from tests.serving.conftest import Served


def test_each_good_night_has_a_new_question_and_the_scoreboards_are_preferred():
    assert night_question(1) == ("What is the battery capacity of the Orrin Pulse X2?", "5,200 mAh")
    assert night_question(3)[1] == "$2.40"  # route-41-fare


def test_the_demo_asks_over_http_and_prints_the_answering_version(served: Served, tmp_path):
    settings = Settings.from_env(
        {"FRESHLM_HOME": str(tmp_path), "FRESHLM_STORE_URI": served.store.root_uri}
    )
    demo = DemoServing(settings, served.server)
    asked = demo.ask(1, "before")
    assert asked.version == served.base
    assert asked.question.startswith("What is the battery capacity")
    report = demo.report()
    assert "night 1:" in report and f"[{served.base[:8]}]" in report and "5,200 mAh" in report
