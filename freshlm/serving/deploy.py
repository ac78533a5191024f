"""What ``freshlm_deploy`` runs: tell the model server to serve what ``production`` names.

The call is ``POST <FRESHLM_SERVE_URL>/v1/admin/reload`` with the bearer token of
``FRESHLM_SERVE_TOKEN``. Without a ``version`` the server loads what the alias names at the
moment of the call (the alias is the truth; an Asset event may be older than the latest move).
The server answers once the new version serves, and records the call in the store
(``serving/deployments/``); the result also goes to the task log and XCom.

Failures say what to do: a server that cannot be reached (start it; it also follows the alias
by polling once up), a refused token (the two sides disagree on ``FRESHLM_SERVE_TOKEN``), a
failed load (the old version keeps serving; the server has already alerted Slack, so the task
fails without retrying and without a second alert).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import requests
from airflow.sdk.exceptions import AirflowFailException

from freshlm.alerts.callbacks import AlertedFailure
from freshlm.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: Seconds to wait for the server to download, load and warm a version (a large model takes
#: minutes; the tiny one a second).
RELOAD_TIMEOUT_S = 900.0


class DeployError(RuntimeError):
    """The reload call could not be made or was refused; the message says what to do."""


class LoadFailed(AlertedFailure, AirflowFailException):
    """The server could not load the version and keeps serving the old one; it alerted Slack
    itself, and retrying the same load would fail the same way."""


def reload_server(
    *,
    version: str | None,
    actor: str,
    reason: str,
    settings: Settings | None = None,
    serve_url: str | None = None,
    timeout_s: float = RELOAD_TIMEOUT_S,
) -> dict[str, Any]:
    """Make the reload call; the server's result (``result``, ``serving``, ``previous``,
    ``load_s``, ``drain_s``), or :class:`DeployError` / :class:`LoadFailed`."""
    settings = settings or get_settings()
    url = f"{(serve_url or settings.serve_url).rstrip('/')}/v1/admin/reload"
    body = {"actor": actor, "reason": reason}
    if version:
        body["version"] = version
    try:
        answer = requests.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {settings.serve_token}"},
            timeout=(settings.http_timeout_s, timeout_s),
        )
    except requests.RequestException as exc:
        raise DeployError(
            f"no model server answered at {url} ({type(exc).__name__}: {exc}). Start it "
            "(`python -m freshlm.serving`, or check the freshlm-serve Deployment); once up it "
            "loads what production names by itself, then rerun this task to confirm"
        ) from None
    try:
        result: Any = answer.json()
    except ValueError:
        result = {"body": answer.text[:500]}
    if answer.status_code == 401:
        raise DeployError(
            f"{url} refused the reload token: Airflow's and the server's FRESHLM_SERVE_TOKEN "
            "differ; give both the same secret"
        )
    if answer.status_code == 500 and result.get("result") == "failed":
        raise LoadFailed(
            f"the server could not load {result.get('wanted')} and still serves "
            f"{result.get('serving')}: {result.get('error')}. Slack was alerted by the server"
        )
    if answer.status_code != 200:
        message = result.get("error", {}).get("message") if isinstance(result, Mapping) else None
        raise DeployError(f"{url} answered HTTP {answer.status_code}: {message or result}")
    log.info(
        "reload: %s; serving %s (was %s), loaded in %ss, old version drained in %ss",
        result["result"],
        result["serving"],
        result.get("previous"),
        result.get("load_s"),
        result.get("drain_s"),
    )
    return result


def deploy_production(ctx: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``reload`` task of ``freshlm_deploy``: the Param ``version`` pins one, else what
    ``production`` names now; the Param ``serve_url`` overrides ``FRESHLM_SERVE_URL``."""
    from airflow.sdk.log import mask_secret

    mask_secret(get_settings().serve_token)  # the task log never shows the reload token
    dag_id, run_id = ctx["dag"].dag_id, ctx["run_id"]
    version = params.get("version") or None
    reason = params.get("reason") or (
        f"pin {version}" if version else "production alias moved (or deploy run by hand)"
    )
    return reload_server(
        version=version,
        actor=f"dag:{dag_id}/run:{run_id}",
        reason=reason,
        serve_url=params.get("serve_url") or None,
    )
