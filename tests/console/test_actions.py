"""Roll back and Accept batch: checked against the store, then the DAG triggered as the caller
with the Params it takes; bad input is a 4xx that says what was wrong and triggers nothing."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from freshlm.alerts import links
from tests.console.artifacts import Night
from tests.console.conftest import TriggerRecorder


def _post(client: TestClient, url: str, **fields: str):
    token = re.search(r'name="form_token" value="([0-9a-f]+)"', client.get(url).text).group(1)
    # as a browser sends the form it was served: same origin, with the page's form token
    return client.post(
        url, data={**fields, "form_token": token}, headers={"Origin": "http://airflow.test"}
    )


def test_roll_back_to_previous_triggers_freshlm_rollback_as_the_user(
    admin: TestClient, trigger: TriggerRecorder, artifacts: Night
):
    page = _post(admin, links.rollback_url(""), version="", reason="answers went wrong")
    assert page.status_code == 200, page.text
    (call,) = trigger.calls
    assert call["dag_id"] == "freshlm_rollback"
    assert call["conf"] == {
        "version": artifacts.base.version_id,
        "reason": "answers went wrong",
        "allow_rejected": False,
    }
    assert call["token"] == "admin-token"  # the caller's own JWT, forwarded
    assert "/dags/freshlm_rollback/runs/manual__1" in page.text


def test_roll_back_refuses_an_unknown_version_the_production_one_and_no_reason(
    admin: TestClient, trigger: TriggerRecorder, artifacts: Night
):
    url = links.rollback_url("")
    unknown = _post(admin, url, version="e" * 32, reason="because")
    assert unknown.status_code == 404 and f"No model version {'e' * 32}" in unknown.text
    current = _post(admin, url, version=artifacts.tuned.version_id, reason="because")
    assert current.status_code == 400 and "is production already" in current.text
    silent = _post(admin, url, version=artifacts.base.version_id, reason="  ")
    assert silent.status_code == 400 and "A reason is required" in silent.text
    assert trigger.calls == []


def test_accept_batch_reruns_curation_on_its_shards_with_the_reason(
    admin: TestClient, trigger: TriggerRecorder, artifacts: Night
):
    url = links.accept_batch_url(artifacts.quarantined_id, "")
    form = admin.get(url)
    assert form.status_code == 200 and "duplicate_ratio" in form.text
    page = _post(admin, url, accept_reason="the flood is the festival, checked by hand")
    assert page.status_code == 200, page.text
    (call,) = trigger.calls
    assert call["dag_id"] == "freshlm_curate"
    assert call["conf"] == {
        "shards": sorted(artifacts.bad_shards),
        "window_start": "2026-11-03T00:00:00Z",
        "window_end": "2026-11-04T00:00:00Z",
        "accept_batch": True,
        "accept_reason": "the flood is the festival, checked by hand",
    }


def test_accept_batch_needs_a_reason_and_a_quarantined_batch(
    admin: TestClient, trigger: TriggerRecorder, artifacts: Night
):
    empty = _post(admin, links.accept_batch_url(artifacts.quarantined_id, ""), accept_reason=" ")
    assert empty.status_code == 400 and "accept_reason is empty" in empty.text
    published = admin.get(links.accept_batch_url(artifacts.dataset_id, ""))
    assert published.status_code == 409 and "published already" in published.text
    unknown = admin.get(links.accept_batch_url("no-such-batch", ""))
    assert unknown.status_code == 404
    assert trigger.calls == []
