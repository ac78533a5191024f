"""Every route refuses a caller the auth manager does not vouch for, and actions need the
permission to trigger their DAG and a form this site served."""

from __future__ import annotations

from fastapi import FastAPI

from freshlm.alerts import links
from tests.console.artifacts import Night
from tests.console.conftest import client_for
from tests.console.routes import console_routes


def test_every_route_refuses_anonymous_expired_and_forged_callers(console: FastAPI):
    for token, status in ((None, 401), ("expired", 401), ("forged", 403)):
        client = client_for(console, token)
        for method, path in console_routes():
            response = client.request(method, path)
            assert response.status_code == status, (token, method, path)


def test_a_bearer_token_wins_over_the_cookie(console: FastAPI):
    client = client_for(console, "admin-token")
    response = client.get(links.models_url(""), headers={"Authorization": "Bearer forged"})
    assert response.status_code == 403
    assert (
        client_for(console, None)
        .get(links.models_url(""), headers={"Authorization": "Bearer admin-token"})
        .status_code
        == 200
    )


def test_a_user_who_may_not_read_dags_sees_no_page(console: FastAPI):
    client = client_for(console, "nobody-token")
    for method, path in console_routes():
        response = client.request(method, path)
        assert response.status_code == 403, (method, path)
        assert "may not read DAGs" in response.text


def test_actions_need_the_permission_to_trigger_their_dag(console: FastAPI, artifacts: Night):
    viewer = client_for(console, "viewer-token")
    assert viewer.get(links.models_url("")).status_code == 200
    form = viewer.get(links.rollback_url(""))
    assert form.status_code == 403 and "may not trigger the DAG freshlm_rollback" in form.text
    accept = viewer.get(links.accept_batch_url(artifacts.quarantined_id, ""))
    assert accept.status_code == 403 and "may not trigger the DAG freshlm_curate" in accept.text


def test_a_post_without_this_sessions_form_token_or_from_another_site_is_refused(
    console: FastAPI, trigger, artifacts: Night
):
    admin = client_for(console)
    missing = admin.post(links.rollback_url(""), data={"reason": "bad model"})
    assert missing.status_code == 403 and "form token" in missing.text
    form_token = _form_token(admin.get(links.rollback_url("")).text)
    other_site = admin.post(
        links.rollback_url(""),
        data={"reason": "bad model", "form_token": form_token},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403 and "evil.example" in other_site.text
    sandboxed = admin.post(
        links.rollback_url(""),
        data={"reason": "bad model", "form_token": form_token},
        headers={"Origin": "null"},
    )
    assert sandboxed.status_code == 403
    # another user's form token does not pass either
    viewer_like = admin.post(
        links.rollback_url(""), data={"reason": "bad model", "form_token": "0" * 64}
    )
    assert viewer_like.status_code == 403
    assert trigger.calls == []


def _form_token(page: str) -> str:
    import re

    return re.search(r'name="form_token" value="([0-9a-f]+)"', page).group(1)
