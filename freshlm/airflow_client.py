"""A small client for Airflow 3's REST API v2: what the demo and the integration tests need.

Task code cannot use the metadata-DB ORM in Airflow 3, so everything that drives or inspects
Airflow from outside (``make demo``, tests, later the operator plugin) goes through this API.
Errors raise :class:`AirflowAPIError` with the method, path, status and Airflow's own detail.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import requests

TERMINAL_RUN_STATES = {"success", "failed"}
TERMINAL_TASK_STATES = {
    "success",
    "failed",
    "skipped",
    "upstream_failed",
    "removed",
}


class AirflowAPIError(RuntimeError):
    """An Airflow REST call failed; carries the HTTP status and Airflow's detail."""

    def __init__(self, method: str, path: str, status: int, detail: Any) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class AirflowClient:
    """REST API v2 client with a bearer token from ``/auth/token`` (renewed on 401)."""

    def __init__(self, base_url: str, username: str, password: str, timeout_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._token: str | None = None

    # --- plumbing ----------------------------------------------------------------------------

    def token(self) -> str:
        resp = self._session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self._password},
            timeout=self.timeout_s,
        )
        if resp.status_code not in (200, 201):
            raise AirflowAPIError("POST", "/auth/token", resp.status_code, _detail(resp))
        self._token = resp.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{path}`` and return the decoded JSON (or text for non-JSON bodies)."""
        if self._token is None:
            self.token()
        url = f"{self.base_url}/api/v2{path}"
        for attempt in (1, 2):
            resp = self._session.request(
                method,
                url,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=self.timeout_s,
                **kwargs,
            )
            if resp.status_code == 401 and attempt == 1:
                self.token()  # expired token: renew once
                continue
            break
        if resp.status_code >= 400:
            raise AirflowAPIError(method, path, resp.status_code, _detail(resp))
        if "json" in resp.headers.get("content-type", ""):
            return resp.json()
        return resp.text

    # --- DAGs --------------------------------------------------------------------------------

    def dags(self) -> list[dict]:
        return self.request("GET", "/dags", params={"limit": 100})["dags"]

    def import_errors(self) -> list[dict]:
        return self.request("GET", "/importErrors", params={"limit": 100})["import_errors"]

    def wait_for_dags(self, dag_ids: Iterable[str], timeout_s: float = 120.0) -> None:
        """Wait until the DAG processor has parsed and serialized every DAG in ``dag_ids``."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout_s
        while True:
            seen = {d["dag_id"] for d in self.dags()}
            if wanted <= seen:
                return
            errors = self.import_errors()
            if errors:
                raise AirflowAPIError(
                    "GET", "/importErrors", 200, [(e["filename"], e["stack_trace"]) for e in errors]
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAGs not parsed after {timeout_s:.0f}s: {wanted - seen}")
            time.sleep(1.0)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def clear_queued_asset_events(self, dag_id: str) -> None:
        """Drop the Asset events queued for ``dag_id`` (e.g. while it was paused), so that
        unpausing it does not start runs for them."""
        try:
            self.request("DELETE", f"/dags/{dag_id}/assets/queuedEvents")
        except AirflowAPIError as exc:
            if exc.status != 404:  # 404: nothing queued
                raise

    # --- runs --------------------------------------------------------------------------------

    def trigger(
        self,
        dag_id: str,
        conf: dict | None = None,
        *,
        run_id: str | None = None,
        logical_date: str | None = None,
    ) -> dict:
        """Trigger a run. ``logical_date`` None means 'now' as in the UI's trigger button."""
        body: dict[str, Any] = {"conf": conf or {}, "logical_date": logical_date}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout_s: float = 300.0, poll_s: float = 1.0
    ) -> dict:
        """Block until the run ends; returns the final DAG run. Raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            if time.monotonic() > deadline:
                states = {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}
                raise TimeoutError(
                    f"{dag_id}/{run_id} still {run['state']} after {timeout_s:.0f}s: {states}"
                )
            time.sleep(poll_s)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}``; mapped tasks appear as ``task_id[map_index]``."""
        states = {}
        for ti in self.task_instances(dag_id, run_id):
            key = (
                ti["task_id"]
                if ti.get("map_index", -1) < 0
                else f"{ti['task_id']}[{ti['map_index']}]"
            )
            states[key] = ti["state"]
        return states

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as plain text (one line per structured event)."""
        body = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
        )
        if isinstance(body, str):
            return body
        return "\n".join(_format_log_event(event) for event in body.get("content", []))

    # --- assets ------------------------------------------------------------------------------

    def asset(self, uri: str) -> dict | None:
        """The asset with exactly this URI, or None if Airflow has not seen it."""
        # only_active=false: assets created at run time through an AssetAlias become active
        # only after the next scheduler loop, but their events are recorded from the start.
        params = {"uri_pattern": uri, "limit": 100, "only_active": "false"}
        for entry in self.request("GET", "/assets", params=params)["assets"]:
            # Airflow normalizes a URI without a path to end in "/".
            if entry["uri"].rstrip("/") == uri.rstrip("/"):
                return entry
        return None

    def create_asset_event(self, uri: str, extra: dict | None = None) -> dict:
        """Announce the asset with this URI through the API (as a task's outlet would), so the
        DAGs scheduled on it run."""
        asset = self.asset(uri)
        if asset is None:
            raise AirflowAPIError("POST", "/assets/events", 404, f"no asset with URI {uri}")
        return self.request(
            "POST", "/assets/events", json={"asset_id": asset["id"], "extra": extra or {}}
        )

    def asset_events(self, uri: str) -> list[dict]:
        """Events of the asset with this URI, oldest first (empty if none)."""
        asset = self.asset(uri)
        if asset is None:
            return []
        return self.request(
            "GET",
            "/assets/events",
            params={"asset_id": asset["id"], "order_by": "timestamp", "limit": 1000},
        )["asset_events"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        entry = self.request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        )
        return entry["value"]


# Keys every structured log event carries; they only repeat what the caller asked for.
_CONTEXT_KEYS = {
    "event",
    "timestamp",
    "level",
    "logger",
    "sources",
    "error_detail",
    "ti",
    "ti_id",
    "try_number",
    "task_id",
    "map_index",
    "run_id",
    "dag_id",
    "filename",
    "lineno",
}


def _format_log_event(event: Any) -> str:
    """One line per structured log event: level, message, extra fields, and any exception."""
    if not isinstance(event, dict):
        return str(event)
    line = f"{event.get('level', '')} {event.get('event', '')}".strip()
    extras = {k: v for k, v in event.items() if k not in _CONTEXT_KEYS}
    if extras:
        line += f" {extras}"
    for err in event.get("error_detail") or []:
        line += f"\n  {err.get('exc_type')}: {err.get('exc_value')}"
    return line


def _detail(resp: requests.Response) -> Any:
    try:
        return resp.json().get("detail", resp.json())
    except ValueError:
        return resp.text[:500]
