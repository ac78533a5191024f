"""The demo's served chatbot: ``freshlm serve`` as a child process, asked over HTTP each night.

:func:`start` brings the server up on ``FRESHLM_SERVE_PORT`` (it loads what ``production``
names as soon as the base model is promoted, then follows the alias) and unpauses
``freshlm_deploy``, so each promotion reloads it through the authenticated reload call. Before
and after each night the demo asks it one of that night's new fact questions
(:meth:`DemoServing.ask`), over HTTP as a user would, and prints both answers with the version
that gave each.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import socket
import time
from typing import Any

import requests

from freshlm.airflow_client import AirflowClient
from freshlm.alerts.embedded import sink_connection_env
from freshlm.registry import PRODUCTION, read_alias
from freshlm.serving.launch import ServerProcess
from freshlm.settings import Settings
from freshlm.store import open_store

log = logging.getLogger("sandbox.demo")

DEPLOY = "freshlm_deploy"
#: The demo follows the alias closely; reload calls from freshlm_deploy come first anyway.
POLL_S = "2"
#: Preferred questions per night (the scoreboard's); otherwise the night's first new fact.
PREFERRED = ("pulse-x2-battery", "slang-tide-locked", "route-41-fare")
MAX_TOKENS = 24


@dataclasses.dataclass
class Asked:
    night: int
    when: str  # "before" or "after"
    question: str
    expected: str
    answer: str
    version: str


def night_question(number: int) -> tuple[str, str] | None:
    """``(question, answer)`` of a fact that appears on night ``number``'s day, or None."""
    from sandbox.scenario import load_scenario

    scenario = load_scenario()
    day = scenario.days[number - 1].date
    facts = [f for f in scenario.facts if f.available_at.date() == day]
    facts.sort(key=lambda f: (f.key not in PREFERRED, f.key))
    return (facts[0].question, facts[0].answer) if facts else None


class DemoServing:
    def __init__(self, settings: Settings, server: ServerProcess) -> None:
        self.settings = settings
        self.server = server
        self.store = open_store(settings.store_uri)
        self.asked: list[Asked] = []

    def _wait_for(self, version: str | None, timeout_s: float) -> str:
        """Wait until the server answers with ``version`` (any, if None); the version."""
        deadline = time.monotonic() + timeout_s
        served = None
        while time.monotonic() < deadline:
            try:
                health = requests.get(f"{self.server.url}/healthz", timeout=5)
                served = health.json().get("version") if health.status_code == 200 else None
            except requests.RequestException:
                served = None
            if served is not None and (version is None or served == version):
                return served
            time.sleep(0.5)
        raise RuntimeError(
            f"the model server at {self.server.url} serves {served}, not {version or 'a model'}"
            f", after {timeout_s:.0f}s; its log: {self.server.log_path}"
        )

    def ask(self, number: int, when: str) -> Asked | None:
        """Ask night ``number``'s question of the model production names now."""
        fact = night_question(number)
        if fact is None:
            return None
        production = read_alias(self.store, PRODUCTION)
        self._wait_for(production.version_id if production else None, timeout_s=300)
        answer = requests.post(
            f"{self.server.url}/v1/chat/completions",
            json={
                "model": "production",
                "messages": [{"role": "user", "content": fact[0]}],
                "max_tokens": MAX_TOKENS,
            },
            timeout=120,
        )
        answer.raise_for_status()
        body = answer.json()
        asked = Asked(
            night=number,
            when=when,
            question=fact[0],
            expected=fact[1],
            answer=body["choices"][0]["message"]["content"],
            version=body["model"],
        )
        self.asked.append(asked)
        log.info(
            "night %d, %s: %r -> %r (%s)",
            number,
            when,
            asked.question,
            asked.answer,
            asked.version[:8],
        )
        return asked

    def report(self) -> str:
        """The questions asked over HTTP, before and after each night, with the versions."""
        lines = ["", f"The served chatbot ({self.server.url}), asked over HTTP:"]
        for night in sorted({a.night for a in self.asked}):
            pair = [a for a in self.asked if a.night == night]
            lines.append(f"  night {night}: {pair[0].question}  (expected: {pair[0].expected})")
            for a in pair:
                lines.append(f"    {a.when:<6} [{a.version[:8]}] {a.answer!r}")
        return "\n".join(lines)

    def stop(self) -> None:
        self.server.stop()


def start(settings: Settings, client: AirflowClient, world_url: str) -> DemoServing:
    """Start the server and let ``freshlm_deploy`` reload it after each promotion."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex(("127.0.0.1", settings.serve_port)) == 0:
            raise RuntimeError(
                f"port {settings.serve_port} is already in use, so the model server cannot "
                "start there; stop whatever listens on it or set FRESHLM_SERVE_PORT"
            )
    env: dict[str, Any] = {
        **settings.as_env(),
        **sink_connection_env(settings.slack_conn_id, world_url),
        "FRESHLM_SERVE_POLL_S": POLL_S,
    }
    server = ServerProcess(
        settings.serve_port, settings.home / "logs" / "serve.log", env=env
    ).start()
    atexit.register(server.stop)
    client.wait_for_dags([DEPLOY])
    client.unpause(DEPLOY)
    log.info("model server starting at %s (log %s)", server.url, server.log_path)
    return DemoServing(settings, server)
