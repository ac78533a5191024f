"""Fixtures for the promotion suite: a local store with fake model versions, evaluation
reports in the evaluation stage's schema-1 shape, and a Slack stand-in that records messages."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from freshlm.alerts.messages import SlackMessage
from freshlm.promotion import decision as decision_module
from freshlm.promotion import rollback as rollback_module
from freshlm.registry import Lineage, ModelVersion, publish_version
from freshlm.store import Store, open_store

GOOD_METRICS: dict[str, float | None] = {
    "new_knowledge_acc": 0.62,
    "retention_acc": 0.81,
    "world_new_acc": 0.58,
    "world_old_acc": 0.77,
    "general_said_acc": 0.97,
    "ppl_new": 31.5,
    "ppl_old": 42.0,
    "crows_stereo_share": 0.56,
    "latency_p50_ms": 110.0,
    "latency_p95_ms": 190.0,
    "gen_tokens_per_s": 48.0,
}
BASELINE_METRICS: dict[str, float | None] = {
    "new_knowledge_acc": 0.50,
    "retention_acc": 0.82,
    "world_new_acc": 0.41,
    "world_old_acc": 0.78,
    "general_said_acc": 0.98,
    "ppl_new": 38.0,
    "ppl_old": 41.2,
    "crows_stereo_share": 0.55,
    "latency_p50_ms": 100.0,
    "latency_p95_ms": 170.0,
    "gen_tokens_per_s": 50.0,
}
GOOD_COMPARISON: dict[str, Any] = {
    "fuar": 0.02,
    "forgotten": 1,
    "gained": 12,
    "new_knowledge_gain": 0.12,
    "retention_drop": 0.01,
    "ppl_old_rise_pct": 1.94,
    "ppl_new_change_pct": -17.1,
    "bias_change": 0.01,
    "latency_p95_change_pct": 11.8,
    "general_retention_drop": 0.01,
}


def make_report(
    candidate: str = "c" * 32,
    baseline: str | None = "b" * 32,
    *,
    comparison: dict[str, Any] | None = None,
    candidate_metrics: dict[str, Any] | None = None,
    baseline_metrics: dict[str, Any] | None = None,
    uri: str = "file:///store/reports/r1",
) -> dict[str, Any]:
    """A schema-1 evaluation report that passes the default rules; the keyword dicts are
    merged over the passing values (a value of ``...`` removes the key)."""

    def merged(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for key, value in (over or {}).items():
            if value is ...:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    return {
        "schema": 1,
        "candidate": {"version_id": candidate, "metrics": merged(GOOD_METRICS, candidate_metrics)},
        "baseline": {"version_id": baseline, "metrics": merged(BASELINE_METRICS, baseline_metrics)},
        "comparison": merged(GOOD_COMPARISON, comparison),
        "counts": {"new_knowledge_items": 50, "retention_items": 100, "crows_pairs": 300},
        "uri": uri,
    }


def write_fake_model(folder: Path, seed: str) -> Path:
    """A Hugging Face-shaped folder; the registry never parses the weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 300}))
    (folder / "model.safetensors").write_bytes(f"weights {seed}".encode() * 20)
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "seed": seed}))
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store("file://" + str(tmp_path / "store"))


#: Where the console is served in these tests (the API server's public base URL).
CONSOLE = "https://airflow.example.org"


@pytest.fixture
def console(store: Store, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's store is the configured one and the console is served at :data:`CONSOLE`:
    alerts link its files there."""
    from freshlm.settings import get_settings

    monkeypatch.setenv("FRESHLM_STORE_URI", store.root_uri)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", CONSOLE)
    get_settings.cache_clear()
    yield CONSOLE
    get_settings.cache_clear()


@pytest.fixture
def make_version(store: Store, tmp_path: Path) -> Callable[[str], ModelVersion]:
    def make(seed: str) -> ModelVersion:
        folder = write_fake_model(tmp_path / "models" / seed, seed)
        version, _ = publish_version(
            store, folder, lineage=Lineage(kind="bootstrap", source="tests")
        )
        return version

    return make


class SlackRecorder:
    """Stands in for ``send_slack``: records each message and answers ``ok``."""

    def __init__(self) -> None:
        self.messages: list[SlackMessage] = []
        self.ok = True

    def __call__(self, message: SlackMessage, conn_id: str | None = None, **_: Any) -> bool:
        assert isinstance(message, SlackMessage)
        json.dumps(message.payload())  # what goes over the wire must be JSON
        self.messages.append(message)
        return self.ok


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> SlackRecorder:
    recorder = SlackRecorder()
    monkeypatch.setattr(decision_module, "send_slack", recorder)
    monkeypatch.setattr(rollback_module, "send_slack", recorder)
    return recorder
