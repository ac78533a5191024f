"""The console inside a real Airflow: the plugin mounts it on the API server and the UI's
navigation, Airflow's auth manager decides who gets in on every route, and an action's DAG run
is created as the logged-in user."""

from __future__ import annotations

import jwt
import pytest
import requests

from freshlm.airflow_client import AirflowClient
from freshlm.alerts import links
from freshlm.console.airflow_api import DagTrigger
from freshlm.console.rendering import PageError
from tests.console.routes import console_routes

pytestmark = [pytest.mark.airflow]

#: Pages with no path parameter: a logged-in user sees each (the store may be empty).
PAGES = ("models", "models/rollback", "datasets", "freshness", "")


def _forged(token: str) -> str:
    """The same claims as a real token, signed with a key Airflow does not have."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, "not-airflows-secret-" * 4, algorithm=header["alg"])


def test_every_route_refuses_anonymous_and_forged_callers_and_admits_a_user(
    airflow, airflow_client: AirflowClient
):
    token = airflow_client.token()
    forged = _forged(token)
    session = requests.Session()
    for method, path in console_routes():
        url = airflow.base_url + path
        anonymous = session.request(method, url, timeout=30)
        assert anonymous.status_code == 401, (method, path, anonymous.text[:300])
        by_header = session.request(
            method, url, headers={"Authorization": f"Bearer {forged}"}, timeout=30
        )
        assert by_header.status_code in (401, 403), (method, path, by_header.status_code)
        by_cookie = requests.request(method, url, cookies={"_token": forged}, timeout=30)
        assert by_cookie.status_code in (401, 403), (method, path, by_cookie.status_code)
        admitted = session.request(
            method, url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        # past authentication: a page, or a 4xx about the sample parameters or the missing form
        assert admitted.status_code not in (401, 403) or "form token" in admitted.text, (
            method,
            path,
            admitted.status_code,
        )
    for page in PAGES:
        response = requests.get(
            links.console_url(page, airflow.base_url), cookies={"_token": token}, timeout=30
        )
        assert response.status_code == 200, (page, response.text[:500])
        assert "FreshLM" in response.text
        # links between pages are built from the site root the request came through
        assert f'href="{links.datasets_url("")}"' in response.text


def test_the_plugin_puts_the_pages_in_the_navigation(airflow_client: AirflowClient):
    plugins = airflow_client.request("GET", "/plugins")["plugins"]
    (console,) = [p for p in plugins if p["name"] == "freshlm_console"]
    assert {v["href"] for v in console["external_views"]} == {
        "/freshlm/models",
        "/freshlm/datasets",
        "/freshlm/freshness",
    }
    assert console["fastapi_apps"][0]["url_prefix"] == "/freshlm"


def test_an_action_creates_the_run_as_the_logged_in_user(airflow, airflow_client: AirflowClient):
    dag_id = "freshlm_rollback"
    airflow_client.wait_for_dags([dag_id])
    if not airflow_client.request("GET", f"/dags/{dag_id}")["is_paused"]:
        pytest.skip(f"{dag_id} was unpaused by another test; a run here would execute")
    trigger = DagTrigger(airflow.base_url)
    with pytest.raises(PageError) as refused:
        trigger(dag_id, {"reason": "x"}, token=_forged(airflow_client.token()), note="forged")
    assert refused.value.status in (401, 403)
    run = trigger(
        dag_id,
        {"version": None, "reason": "console test: never runs, the DAG is paused"},
        token=airflow_client.token(),
        note="console test",
    )
    try:
        stored = airflow_client.run(dag_id, run["dag_run_id"])
        assert stored["triggering_user_name"] == airflow.username
        assert stored["conf"]["reason"].startswith("console test")
    finally:
        deleted = requests.delete(
            f"{airflow.base_url}/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}",
            headers={"Authorization": f"Bearer {airflow_client.token()}"},
            timeout=30,
        )
        assert deleted.status_code == 204, deleted.text


def test_airflow_shows_the_extra_links_of_the_gate_evaluate_and_promote_tasks(
    airflow, airflow_client: AirflowClient
):
    """A run's task instances offer the links; each shows the URL its task pushed to XCom
    (pushed here by hand: the run is of a paused DAG and never executes)."""
    expected = {
        "freshlm_curate": {"gate_batch": ("Data Docs", "_link_DataDocsLink"), "decide": None},
        "freshlm_evaluate": {
            "evaluate": ("Evaluation report", "_link_EvaluationReportLink"),
            "promote": ("Model card", "_link_ModelCardLink"),
        },
    }
    airflow_client.wait_for_dags(expected)
    for dag_id, tasks in expected.items():
        if not airflow_client.request("GET", f"/dags/{dag_id}")["is_paused"]:
            pytest.skip(f"{dag_id} was unpaused by another test; a run here would execute")
        run_id = airflow_client.trigger(dag_id, run_id="console_test__extra_links")["dag_run_id"]
        try:
            for task_id, link in tasks.items():
                ti = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
                shown = airflow_client.request("GET", f"{ti}/links")["extra_links"]
                if link is None:
                    assert shown == {}, (task_id, shown)
                    continue
                name, xcom_key = link
                assert shown == {name: None}, (task_id, shown)  # not run: no link yet
                url = links.console_url(f"test/{task_id}", airflow.base_url)
                airflow_client.request(
                    "POST", f"{ti}/xcomEntries", json={"key": xcom_key, "value": url}
                )
                assert airflow_client.request("GET", f"{ti}/links")["extra_links"] == {name: url}
        finally:
            requests.delete(
                f"{airflow.base_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}",
                headers={"Authorization": f"Bearer {airflow_client.token()}"},
                timeout=30,
            )
