"""Sending through the real provider hooks to the world's Slack sink, for both connection
types; outages, bad tokens and missing connections are logged (without secrets) and return
False, never raise."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import pytest
import requests

from freshlm.alerts.messages import SlackMessage
from freshlm.alerts.sender import send_slack
from sandbox.server import WorldServer

WORLD_LOGGER = "sandbox"
TOKEN = "xoxb-4242-freshlm-sandbox-token"
HOOK_SECRET = "T0FRESH/B0GATE/hookSecret4242"
MESSAGE = SlackMessage(
    text="gate failed",
    blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*gate failed*"}}],
)


def sink(world: WorldServer) -> list[dict]:
    return requests.get(f"{world.url}/_world/slack/messages", timeout=5).json()


def connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> str:
    """Define ``conn_id`` the way a deployment does: an AIRFLOW_CONN_* variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    return conn_id


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture) -> Iterator[object]:
    """Everything our side logs at any level, through stdlib logging or to the process's
    streams. The sandbox Slack's own access log (``sandbox``) is left out: it stands for
    Slack's servers, which see the webhook path by definition."""
    caplog.set_level(logging.DEBUG)

    class Logs:
        def text(self) -> str:
            out, err = capfd.readouterr()
            ours = [
                caplog.handler.format(r)
                for r in caplog.records
                if not r.name.startswith(WORLD_LOGGER)
            ]
            streams = [line for line in (out + err).splitlines() if f"[{WORLD_LOGGER}]" not in line]
            return "\n".join(ours + streams)

    yield Logs()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_web_api_connection_reaches_the_sink(
    world_at_start: WorldServer, monkeypatch: pytest.MonkeyPatch, logs
) -> None:
    conn_id = connection(
        monkeypatch,
        "freshlm_slack_web",
        conn_type="slack",
        password=TOKEN,
        extra={"base_url": f"{world_at_start.url}/api/", "channel": "#freshlm-gate"},
    )
    assert send_slack(MESSAGE, conn_id) is True
    [message] = sink(world_at_start)
    assert message["via"] == "web_api" and message["channel"] == "#freshlm-gate"
    assert message["text"] == "gate failed" and message["blocks"] == MESSAGE.blocks
    assert TOKEN not in logs.text()


def test_webhook_connection_reaches_the_sink(
    world_at_start: WorldServer, monkeypatch: pytest.MonkeyPatch, logs
) -> None:
    conn_id = connection(
        monkeypatch,
        "freshlm_slack_hook",
        conn_type="slackwebhook",
        host=f"{world_at_start.url}/services",
        password=HOOK_SECRET,
    )
    assert send_slack(MESSAGE, conn_id) is True
    [message] = sink(world_at_start)
    assert message["via"] == "webhook" and message["webhook"] == f"/services/{HOOK_SECRET}"
    assert message["blocks"] == MESSAGE.blocks
    assert "hookSecret4242" not in logs.text()


def test_a_webhook_given_as_full_url_works_too(
    world_at_start: WorldServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = connection(
        monkeypatch,
        "freshlm_slack_hook_url",
        conn_type="slackwebhook",
        password=f"{world_at_start.url}/services/{HOOK_SECRET}",
    )
    assert send_slack(MESSAGE, conn_id) is True
    assert [m["via"] for m in sink(world_at_start)] == ["webhook"]


def test_the_default_connection_id_comes_from_settings(
    world_at_start: WorldServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from freshlm.settings import get_settings

    connection(
        monkeypatch,
        get_settings().slack_conn_id,
        conn_type="slack",
        password=TOKEN,
        extra={"base_url": f"{world_at_start.url}/api/"},
    )
    assert send_slack(MESSAGE) is True
    assert [m["channel"] for m in sink(world_at_start)] == ["#freshlm-alerts"]


@pytest.mark.parametrize("conn_type", ["slack", "slackwebhook"])
def test_a_slack_outage_is_logged_and_returns_false(
    monkeypatch: pytest.MonkeyPatch, logs, conn_type: str
) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    if conn_type == "slack":
        fields = {"password": TOKEN, "extra": {"base_url": f"{down}/api/"}}
    else:
        fields = {"host": f"{down}/services", "password": HOOK_SECRET}
    conn_id = connection(
        monkeypatch, f"freshlm_slack_down_{conn_type}", conn_type=conn_type, **fields
    )
    assert send_slack(MESSAGE, conn_id) is False
    text = logs.text()
    assert f"Slack alert not sent through connection '{conn_id}'" in text
    assert "Connection refused" in text
    assert TOKEN not in text and "hookSecret4242" not in text


def test_a_bad_token_is_logged_and_returns_false(
    world_at_start: WorldServer, monkeypatch: pytest.MonkeyPatch, logs
) -> None:
    bad = "not-a-slack-token-0042"
    conn_id = connection(
        monkeypatch,
        "freshlm_slack_badtoken",
        conn_type="slack",
        password=bad,
        extra={"base_url": f"{world_at_start.url}/api/"},
    )
    assert send_slack(MESSAGE, conn_id) is False
    text = logs.text()
    assert "SlackApiError" in text and "invalid_auth" in text
    assert bad not in text
    assert sink(world_at_start) == []


def test_a_wrong_webhook_is_logged_and_returns_false(
    world_at_start: WorldServer, monkeypatch: pytest.MonkeyPatch, logs
) -> None:
    conn_id = connection(
        monkeypatch,
        "freshlm_slack_badhook",
        conn_type="slackwebhook",
        host=f"{world_at_start.url}/services",
        password="wrong/hookSecret4242",
    )
    assert send_slack(MESSAGE, conn_id) is False
    text = logs.text()
    assert "Status Code: 404" in text and "hookSecret4242" not in text


def test_a_missing_or_unsuitable_connection_is_logged_and_returns_false(
    monkeypatch: pytest.MonkeyPatch, logs
) -> None:
    assert send_slack(MESSAGE, "freshlm_slack_nowhere") is False
    assert "no Airflow connection 'freshlm_slack_nowhere'" in logs.text()
    conn_id = connection(monkeypatch, "freshlm_slack_http", conn_type="http", password=TOKEN)
    assert send_slack(MESSAGE, conn_id) is False
    text = logs.text()
    assert "has type 'http'" in text and TOKEN not in text
