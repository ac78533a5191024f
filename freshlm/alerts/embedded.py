"""The Slack connection of the embedded mode: the sandbox world's Slack sink.

In production the ``freshlm_slack`` connection is an Airflow connection with a real token or
webhook; ``make demo`` and the tests define it through the environment, pointing the provider's
own Web API client at the world's ``/api/`` so every message lands in the sink unchanged.
"""

from __future__ import annotations

import json


def sink_connection_env(conn_id: str, world_url: str) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` for a Slack Web API connection to the sandbox sink."""
    conn = {
        "conn_type": "slack",
        "password": "xoxb-freshlm-sandbox",  # the sink accepts any xoxb- token
        "extra": {"base_url": f"{world_url.rstrip('/')}/api/", "channel": "#freshlm-alerts"},
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}
