"""Zero-downtime swaps under load, and a failed load that keeps the old version serving.

Four client threads ask the real server questions over loopback for the whole test while
``production`` is promoted and rolled back twice: no request fails, every answer names the
version that produced it, each switch lands within :data:`SWITCH_BUDGET_S` of the alias move,
and afterwards the process holds one model's weights again.
"""

from __future__ import annotations

import threading
import time

import requests

from freshlm.registry import PRODUCTION, Lineage, move_alias, publish_version, rollback
from freshlm.serving.app import VERSION_HEADER
from tests.serving.conftest import TOKEN, Served

CLIENTS = 4
#: Seconds from the alias move to the first answer by the new version: one poll interval
#: (0.5 s), the load and warm-up of a tiny model, and slack for a busy 2-core machine.
SWITCH_BUDGET_S = 15.0
QUESTION = {"messages": [{"role": "user", "content": "What did Orrin Labs launch?"}]}


class Load:
    """Bounded load: ``CLIENTS`` threads asking in a loop until stopped (at most 5 minutes)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.answers: list[tuple[float, float, str, str]] = []  # start, end, header, body model
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._ask) for _ in range(CLIENTS)]

    def _ask(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            try:
                r = session.post(
                    f"{self.url}/v1/chat/completions",
                    json={**QUESTION, "max_tokens": 4},
                    timeout=60,
                )
                ok = r.status_code == 200
                row = (began, time.monotonic(), r.headers.get(VERSION_HEADER), r.json()["model"])
            except Exception as exc:
                ok, row = False, None
                error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if ok:
                    self.answers.append(row)
                else:
                    self.failures.append(error if row is None else f"HTTP {r.status_code} {r.text}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def wait_for(self, version: str, since: float) -> float:
        """Seconds from ``since`` to the first answer by ``version`` that started after it."""
        deadline = since + SWITCH_BUDGET_S
        while time.monotonic() < deadline:
            with self._lock:
                ends = [
                    end
                    for start, end, _, model in self.answers
                    if model == version and start >= since
                ]
            if ends:
                return min(ends) - since
            time.sleep(0.05)
        raise AssertionError(f"{version} did not answer within {SWITCH_BUDGET_S}s of the move")

    def answers_after(self, since: float) -> list[str]:
        """The versions of the first ``CLIENTS`` answers to requests started after ``since``."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self._lock:
                later = [model for start, _, _, model in self.answers if start > since]
            if len(later) >= CLIENTS:
                return later
            time.sleep(0.05)
        raise AssertionError("the clients got no answers for 30 s")


def _metrics(url: str) -> dict[str, float]:
    values = {}
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_promotions_and_rollbacks_under_load_drop_no_request(served: Served):
    before = _metrics(served.url)
    assert before["freshlm_serve_models_loaded"] == 1
    one_model = before["freshlm_serve_model_weight_bytes"]
    moves = [
        ("promote", served.candidate),
        ("roll back", served.base),
        ("promote", served.candidate),
        ("roll back", served.base),
    ]
    switch_s = []
    with Load(served.url) as load:
        time.sleep(1.0)  # load on the old version first
        for action, version in moves:
            moved_at = time.monotonic()
            if action == "promote":
                move_alias(served.store, PRODUCTION, version, actor="tests", reason="under load")
            else:
                rollback(served.store, actor="tests", reason="under load")
            switch_s.append(load.wait_for(version, moved_at))
            # Every request that starts once the new version has answered gets the new one.
            later = load.answers_after(time.monotonic())
            assert set(later) == {version}, (action, set(later))
    assert load.failures == [], load.failures[:5]
    assert len(load.answers) > 20
    for _, _, header, model in load.answers:
        assert header == model and model in (served.base, served.candidate)
    assert max(switch_s) < SWITCH_BUDGET_S, switch_s
    after = _metrics(served.url)
    # The drained versions' weights were freed: one model's footprint again.
    assert after["freshlm_serve_models_loaded"] == 1
    assert after["freshlm_serve_model_weight_bytes"] == one_model
    assert after['freshlm_serve_swaps_total{result="swapped"}'] >= 4
    print(f"switch after the alias move: {', '.join(f'{s:.2f}s' for s in switch_s)}")


def test_a_damaged_version_keeps_the_old_one_serving_and_alerts_once(
    served: Served, world, tmp_path
):
    import shutil

    # A third version whose weights are damaged in the store after publishing.
    folder = tmp_path / "damaged"
    shutil.copytree(served.folders["candidate"], folder)
    (folder / "generation_config.json").write_text('{"damaged": true}')
    version, _ = publish_version(
        served.store, folder, lineage=Lineage(kind="bootstrap", source="tests: damaged")
    )
    damaged = version.version_id
    weights = served.store.root_uri.removeprefix("file://") + f"/models/{damaged}/model.safetensors"
    with open(weights, "r+b") as f:
        f.seek(100)
        f.write(b"\x00" * 64)
    requests.delete(f"{world.url}/_world/slack/messages", timeout=5).raise_for_status()
    serving = requests.get(f"{served.url}/healthz", timeout=5).json()["version"]

    move_alias(served.store, PRODUCTION, damaged, actor="tests", reason="damaged on purpose")
    deadline = time.monotonic() + SWITCH_BUDGET_S
    messages: list[dict] = []
    while time.monotonic() < deadline and not messages:
        messages = requests.get(f"{world.url}/_world/slack/messages", timeout=5).json()
        time.sleep(0.2)
    time.sleep(4 * 0.5)  # several more polls: still one alert
    messages = requests.get(f"{world.url}/_world/slack/messages", timeout=5).json()
    assert len(messages) == 1, messages
    alert = messages[0]["text"] + str(messages[0].get("blocks"))
    assert damaged in alert and serving in alert and "damaged" in alert
    answer = requests.post(f"{served.url}/v1/chat/completions", json=QUESTION, timeout=30)
    assert answer.status_code == 200 and answer.json()["model"] == serving

    # An explicit reload of it fails the same way, and says so; the old version still serves.
    r = requests.post(
        f"{served.url}/v1/admin/reload",
        json={"version": damaged, "actor": "tests"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert r.status_code == 500 and r.json()["result"] == "failed"
    assert r.json()["serving"] == serving and "does not match its manifest" in r.json()["error"]
    assert requests.get(f"{served.url}/healthz", timeout=5).json()["version"] == serving
    # A reload of a good version by id (what freshlm_deploy sends) swaps at once.
    r = requests.post(
        f"{served.url}/v1/admin/reload",
        json={"version": served.candidate, "actor": "tests", "reason": "recover"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert r.status_code == 200 and r.json()["serving"] == served.candidate
    records = list(served.store.list("serving/deployments/"))
    assert any(f"-failed-{damaged}" in key for key in records)
    assert any(f"-swapped-{served.candidate}" in key for key in records)
