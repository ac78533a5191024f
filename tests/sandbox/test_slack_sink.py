"""The Slack sink answers like Slack, so slack_sdk's own clients work against it unchanged."""

from __future__ import annotations

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from sandbox.server import WorldServer

TOKEN = "xoxb-1234-5678-sandbox"
HOOK = "/services/T0FRESH/B0GATE/abcDEF123"


def _messages(world: WorldServer) -> list[dict]:
    return requests.get(f"{world.url}/_world/slack/messages", timeout=5).json()


def test_web_client_posts_and_the_sink_records(tiny: WorldServer) -> None:
    client = WebClient(token=TOKEN, base_url=tiny.url + "/api/")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*gate failed*"}}]
    response = client.chat_postMessage(channel="#freshlm-alerts", text="gate failed", blocks=blocks)
    assert response["ok"] is True
    assert response["channel"].startswith("C")
    assert response["message"]["text"] == "gate failed"
    assert response["ts"] == response["message"]["ts"]
    [message] = _messages(tiny)
    assert message["channel"] == "#freshlm-alerts"
    assert message["channel_id"] == response["channel"]
    assert message["text"] == "gate failed" and message["blocks"] == blocks
    assert message["via"] == "web_api"
    assert message["received_at"] == "2026-11-02T00:00:00.000Z"  # world time
    assert client.auth_test()["ok"] is True


def test_form_encoded_calls_work_too(tiny: WorldServer) -> None:
    response = requests.post(
        f"{tiny.url}/api/chat.postMessage",
        data={"token": TOKEN, "channel": "C0123456789", "text": "hello"},
        timeout=5,
    ).json()
    assert response["ok"] is True and response["channel"] == "C0123456789"


@pytest.mark.parametrize(
    ("token", "payload", "error"),
    [
        (None, {"channel": "#a", "text": "x"}, "not_authed"),
        ("not-a-token", {"channel": "#a", "text": "x"}, "invalid_auth"),
        (TOKEN, {"text": "x"}, "channel_not_found"),
        (TOKEN, {"channel": "#a"}, "no_text"),
    ],
)
def test_web_api_errors_are_http_200_with_ok_false(
    tiny: WorldServer, token: str | None, payload: dict, error: str
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(
        f"{tiny.url}/api/chat.postMessage", json=payload, headers=headers, timeout=5
    )
    assert response.status_code == 200
    assert response.json() == {"ok": False, "error": error}
    assert _messages(tiny) == []


def test_web_client_raises_slack_api_error_on_bad_token(tiny: WorldServer) -> None:
    client = WebClient(token="bogus", base_url=tiny.url + "/api/")
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="#a", text="x")
    assert caught.value.response["error"] == "invalid_auth"


def test_webhook_client_posts_and_the_sink_records(tiny: WorldServer) -> None:
    response = WebhookClient(tiny.url + HOOK).send(text="model promoted")
    assert response.status_code == 200 and response.body == "ok"
    [message] = _messages(tiny)
    assert message["via"] == "webhook" and message["webhook"] == HOOK
    assert message["text"] == "model promoted"
    empty = WebhookClient(tiny.url + HOOK).send_dict({"unfurl_links": False})
    assert (empty.status_code, empty.body) == (400, "no_text")
    broken = requests.post(tiny.url + HOOK, data=b"{nope", timeout=5)
    assert (broken.status_code, broken.text) == (400, "invalid_payload")
    unknown = requests.post(tiny.url + "/services/nope", json={"text": "x"}, timeout=5)
    assert (unknown.status_code, unknown.text) == (404, "no_service")


def test_delete_clears_the_recorded_messages(tiny: WorldServer) -> None:
    WebhookClient(tiny.url + HOOK).send(text="one")
    cleared = requests.delete(f"{tiny.url}/_world/slack/messages", timeout=5).json()
    assert cleared == {"ok": True, "cleared": 1}
    assert _messages(tiny) == []
