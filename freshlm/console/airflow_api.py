"""The console's actions: DAG runs created through Airflow's REST API as the logged-in user.

The caller's own JWT is forwarded, so Airflow checks their permission again, records them as
the run's triggering user (the audit log and the gate's acceptance name them) and validates
the conf against the DAG's Params. Airflow's refusal becomes the console's, with its detail.
"""

from __future__ import annotations

from typing import Any

import requests

from freshlm.console.rendering import PageError


class DagTrigger:
    """``POST {api_url}/api/v2/dags/{dag_id}/dagRuns`` with the caller's token.

    ``api_url``: where the API server answers itself; default ``FRESHLM_CONSOLE_API_URL``,
    else ``[api] base_url`` (the address users reach, which a pod may not)."""

    def __init__(self, api_url: str | None = None, timeout_s: float = 30.0) -> None:
        self._api_url = api_url
        self.timeout_s = timeout_s

    @property
    def api_url(self) -> str:
        if self._api_url is None:
            from freshlm.alerts.links import airflow_base_url
            from freshlm.settings import get_settings

            self._api_url = get_settings().console_api_url or airflow_base_url()
        return self._api_url.rstrip("/")

    def __call__(self, dag_id: str, conf: dict[str, Any], *, token: str, note: str) -> dict:
        """The created DAG run (Airflow's JSON); :class:`PageError` if Airflow refused."""
        url = f"{self.api_url}/api/v2/dags/{dag_id}/dagRuns"
        try:
            resp = requests.post(
                url,
                json={"logical_date": None, "conf": conf, "note": note},
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise PageError(
                502, "Airflow unreachable", f"Triggering {dag_id} at {url} failed: {exc}"
            ) from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text[:500]
            status = resp.status_code if resp.status_code in (400, 401, 403, 404, 409) else 502
            raise PageError(status, f"Airflow refused to trigger {dag_id}", str(detail))
        return resp.json()
