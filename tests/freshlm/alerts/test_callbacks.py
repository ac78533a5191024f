"""The failure callback alerts only when the task has no retries left."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from freshlm.alerts import callbacks
from freshlm.alerts.messages import SlackMessage
from sandbox.server import WorldServer

LOG_URL = "http://airflow.test/dags/freshlm_crawl/runs/r1/tasks/crawl?try_number=3"


def context(try_number: int, max_tries: int | None, **ti: Any) -> dict[str, Any]:
    fields = {
        "dag_id": "freshlm_crawl",
        "run_id": "r1",
        "task_id": "crawl",
        "map_index": -1,
        "try_number": try_number,
        "log_url": LOG_URL,
    }
    if max_tries is not None:
        fields["max_tries"] = max_tries
    fields.update(ti)
    return {
        "ti": SimpleNamespace(**fields),
        "task": SimpleNamespace(retries=2),
        "exception": ValueError("feed answered 503"),
    }


def sent_by(ctx: dict[str, Any]) -> list[SlackMessage]:
    sent: list[SlackMessage] = []

    def send(message: SlackMessage) -> bool:
        sent.append(message)
        return True

    callbacks._alert_if_final(ctx, send)
    return sent


@pytest.mark.parametrize("try_number", [1, 2])
def test_no_alert_while_retries_are_left(try_number: int) -> None:
    assert sent_by(context(try_number, max_tries=2)) == []


def test_the_last_try_alerts_with_the_task_and_error() -> None:
    [message] = sent_by(context(3, max_tries=2))
    assert "freshlm_crawl.crawl" in message.blocks[0]["text"]["text"]
    assert "ValueError: feed answered 503" in message.text and LOG_URL in message.text
    assert "3 of 3" in json.dumps(message.blocks)


def test_without_max_tries_the_task_s_retries_decide() -> None:
    assert sent_by(context(2, max_tries=None)) == []
    assert len(sent_by(context(3, max_tries=None))) == 1


def test_a_task_without_retries_alerts_on_its_only_try() -> None:
    assert len(sent_by(context(1, max_tries=0))) == 1


def test_a_thin_context_never_raises() -> None:
    assert sent_by({}) == []  # no task instance: nothing to say
    # Tries unknown: alert anyway (a missed final failure costs more than an extra message).
    [message] = sent_by({"ti": object()})
    assert "?" in message.text


def test_on_task_failure_reaches_slack_and_never_raises(
    world_at_start: WorldServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from freshlm.settings import get_settings

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{get_settings().slack_conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "slack",
                "password": "xoxb-callback-test",
                "extra": {"base_url": f"{world_at_start.url}/api/"},
            }
        ),
    )
    callbacks.on_task_failure(context(1, max_tries=2))  # retries left: nothing sent
    callbacks.on_task_failure(context(3, max_tries=2))
    messages = requests.get(f"{world_at_start.url}/_world/slack/messages", timeout=5).json()
    assert len(messages) == 1
    assert "ValueError: feed answered 503" in messages[0]["text"]
