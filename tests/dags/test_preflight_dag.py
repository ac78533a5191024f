"""The pre-flight DAG, run by a real Airflow against the session's store and sandbox world."""

from __future__ import annotations

import pytest

from tests.support.airflow_server import dump_failure

pytestmark = [pytest.mark.airflow]

DAG_ID = "freshlm_preflight"


def test_preflight_run_succeeds_and_reports_numbers(airflow_client):
    airflow_client.wait_for_dags([DAG_ID])
    airflow_client.unpause(DAG_ID)
    run = airflow_client.trigger(DAG_ID, run_id="test__preflight__1")
    final = airflow_client.wait_for_run(DAG_ID, run["dag_run_id"], timeout_s=240)
    assert final["state"] == "success", dump_failure(airflow_client, DAG_ID, run["dag_run_id"])
    assert airflow_client.task_states(DAG_ID, run["dag_run_id"]) == {
        "check_settings": "success",
        "check_store": "success",
        "check_world": "success",
    }
    store_report = airflow_client.xcom(DAG_ID, run["dag_run_id"], "check_store")
    assert store_report["store_uri"].startswith("file://")
    assert store_report["write_ms"] >= 0 and store_report["read_ms"] >= 0
    log = airflow_client.task_log(DAG_ID, run["dag_run_id"], "check_store")
    assert "store OK" in log
