"""One of every FreshLM Slack alert, built from hostile-looking inputs, for the tests that hold
all of them to the same rules (links, buttons, language, limits)."""

from __future__ import annotations

from collections.abc import Callable

from expectations.alert import gate_alert
from freshlm.alerts.deadline import deadline_alert
from freshlm.alerts.messages import SlackMessage, task_failure_alert, task_log_url
from freshlm.monitoring.messages import monitor_alert
from freshlm.promotion import decide, load_rules
from freshlm.promotion.messages import promotion_summary, rejection_alert, rollback_notice
from freshlm.serving.messages import load_failed_alert
from tests.freshlm.promotion.conftest import make_report

STORE = "s3://freshlm-store/prod"
CONSOLE = "https://airflow.example.org"
HOSTILE = "<!channel> & <https://evil.example|click>"
RUN_ID = "scheduled__2026-11-03T02:00:00+00:00"
LOG_URL = task_log_url(CONSOLE, "freshlm_curate", RUN_ID, "gate_batch", 1)
CAND, BASE = "c" * 32, "b" * 32
CANDIDATE = "9f" * 16
DATA_DOCS = f"{STORE}/gate-reports/{CANDIDATE}/{RUN_ID}/data_docs/index.html"


def _gate(severity: str, override: dict | None = None) -> dict:
    failure = {
        "check": "residual_pii",
        "severity": severity if severity != "ok" else "warning",
        "column": "text",
        "observed": HOSTILE,
        "expected": "0 documents",
        "examples": [HOSTILE],
    }
    return {
        "severity": severity,
        "passed": severity != "critical",
        "override": override,
        "failures": [failure],
        "statistics": {
            "documents": 40,
            "quarantined": 3,
            "window": {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"},
            "sources": {"tessford-courier": {"volume": 43, "kept": 40, "quarantined": 3}},
            "quarantined_by_reason": {"dedup:near": 3},
        },
        "data_docs_index": DATA_DOCS,
    }


def _gate_alert(severity: str, override: dict | None = None) -> SlackMessage:
    return gate_alert(
        _gate(severity, override),
        dag_id="freshlm_curate",
        run_id=RUN_ID,
        task_id="quarantine_batch",
        log_url=LOG_URL,
        candidate_id=CANDIDATE,
    )


def _report(**kwargs) -> dict:
    return make_report(CAND, BASE, uri=f"{STORE}/reports/{CAND}/{BASE}", **kwargs)


def _rejected() -> SlackMessage:
    report = _report(comparison={"retention_drop": 0.2})
    return rejection_alert(
        report,
        decide(report, load_rules()),
        actor=HOSTILE,
        run_id=RUN_ID,
        log_url=LOG_URL,
        record_uri=f"{STORE}/registry/decisions/{CAND}.json",
    )


def _promoted() -> SlackMessage:
    report = _report()
    return promotion_summary(
        report, decide(report, load_rules()), actor=HOSTILE, run_id=RUN_ID, log_url=LOG_URL
    )


ALERTS: dict[str, Callable[[], SlackMessage]] = {
    "task failure": lambda: task_failure_alert(
        dag_id="freshlm_crawl",
        run_id=RUN_ID,
        task_id="crawl",
        try_number=3,
        max_tries=2,
        exception=RuntimeError(HOSTILE),
        log_url=LOG_URL,
        map_index=1,
    ),
    "gate refused": lambda: _gate_alert("critical"),
    "gate warned": lambda: _gate_alert("warning"),
    "gate accepted": lambda: _gate_alert("critical", {"user": HOSTILE, "reason": HOSTILE}),
    "promoted": _promoted,
    "rejected": _rejected,
    "rolled back": lambda: rollback_notice(
        {
            "from_version": CAND,
            "to_version": BASE,
            "reason": HOSTILE,
            "actor": HOSTILE,
            "run_id": RUN_ID,
            "served_before": False,
            "was_rejected": True,
        },
        log_url=LOG_URL,
    ),
    "monitor": lambda: monitor_alert(
        {
            "findings": [{"severity": "warning", "what": HOSTILE, "action": "retrain"}],
            "freshness": {"production": CAND, "lag_hours": 50.0, "newest_document": HOSTILE},
            "canaries": {"accuracy": 0.5, "correct": 1, "asked": 2},
            "retrain": {"dag_id": "freshlm_train"},
        },
        log_url=LOG_URL,
    ),
    "model load failed": lambda: load_failed_alert(
        wanted=CAND, serving=BASE, error=HOSTILE, actor=HOSTILE, server_url="http://serve:8767"
    ),
    "deadline missed": lambda: deadline_alert(
        dag_id="freshlm_crawl",
        run_id=RUN_ID,
        state="running",
        deadline="2026-11-03T08:00:00+00:00",
        started="2026-11-03T02:00:03+00:00",
        stuck={"crawl_0": "running", "crawl_1": "queued"},
        base_url=CONSOLE,
    ),
}


def buttons(message: SlackMessage) -> list[dict]:
    """Every button of the message's actions blocks."""
    return [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
