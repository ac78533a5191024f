"""The task extra links: which tasks carry them, and that each opens the console page for
what the task produced (built from the task's return value, as Airflow does on the worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from freshlm.alerts.links import CONSOLE_PREFIX
from freshlm.settings import get_settings
from freshlm.store import Store
from freshlm.task_links import DataDocsLink, EvaluationReportLink, ModelCardLink
from tests.console.artifacts import Night

DAGS = Path(__file__).resolve().parents[2] / "dags"
BASE = "https://airflow.example"


def _links_of(dag_file: str) -> dict[str, list[str]]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / dag_file))
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    return {t.task_id: [link.name for link in t.operator_extra_links] for t in dag.tasks}


def test_the_gate_evaluate_and_promote_tasks_carry_their_links():
    curate = _links_of("freshlm_curate.py")
    assert curate["gate_batch"] == ["Data Docs"]
    assert all(not names for task, names in curate.items() if task != "gate_batch")
    evaluate = _links_of("freshlm_evaluate.py")
    assert evaluate["evaluate"] == ["Evaluation report"]
    assert evaluate["promote"] == ["Model card"]


@pytest.fixture
def returned(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the task returned (its ``return_value`` XCom), as the link reads it."""
    from airflow.sdk.execution_time import xcom

    values: dict[str, Any] = {}

    def get_value(*, ti_key: Any, key: str) -> Any:
        assert key == "return_value"
        return values.get("value")

    monkeypatch.setattr(xcom.XCom, "get_value", get_value)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
    return values


@pytest.fixture
def settings_store(store: Store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FRESHLM_STORE_URI", store.root_uri)
    get_settings.cache_clear()
    yield store
    get_settings.cache_clear()


def _open(admin: TestClient, url: str):
    assert url.startswith(BASE + CONSOLE_PREFIX + "/"), url
    return admin.get(url.removeprefix(BASE))


def test_data_docs_link_opens_the_gate_reports_site(
    returned, settings_store, admin: TestClient, artifacts: Night
):
    returned["value"] = {"passed": False, "data_docs_url": artifacts.data_docs_uri}
    page = _open(admin, DataDocsLink().get_link(None, ti_key=object()))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_evaluation_report_link_opens_the_report(returned, admin: TestClient, artifacts: Night):
    returned["value"] = {
        "candidate": {"version_id": artifacts.tuned.version_id},
        "baseline": {"version_id": artifacts.base.version_id},
    }
    page = _open(admin, EvaluationReportLink().get_link(None, ti_key=object()))
    assert page.status_code == 200 and "Evaluation report" in page.text


def test_model_card_link_opens_the_promoted_versions_page(
    returned, admin: TestClient, artifacts: Night
):
    returned["value"] = {"outcome": "promoted", "production_after": artifacts.tuned.version_id}
    page = _open(admin, ModelCardLink().get_link(None, ti_key=object()))
    assert page.status_code == 200 and "Model card" in page.text


def test_a_task_that_returned_nothing_has_an_empty_link(returned):
    for link in (DataDocsLink(), EvaluationReportLink(), ModelCardLink()):
        assert link.get_link(None, ti_key=object()) == ""
