"""Approvals: only the users in FRESHLM_APPROVERS are assigned the approval step, and who
approved goes into the audit log (the alias move's actor) and the decision record."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from freshlm.promotion import decide, load_rules, outcome
from freshlm.promotion.outcome import (
    ApprovalMissing,
    approval_assignees,
    approval_record,
    promote_candidate,
)
from freshlm.registry import ABSENT, PRODUCTION, move_alias, read_alias, read_audit
from freshlm.settings import Settings
from tests.freshlm.promotion.conftest import make_report
from tests.support.slack_text import text_of

RUN = "manual__2026-11-03T09:00:00+00:00"
WHEN = dt.datetime(2026, 11, 3, 9, 30, tzinfo=dt.UTC)
APPROVED = {
    "chosen_options": ["Approve"],
    "params_input": {},
    "responded_by_user": {"id": "mira", "name": "Mira Chen"},
    "responded_at": WHEN,
}


def settings(approvers: str = "") -> Settings:
    return Settings.from_env({"FRESHLM_APPROVERS": approvers})


def test_assigned_users_come_from_the_setting() -> None:
    assert approval_assignees(settings()) is None  # anyone allowed to act on the DAG
    assert approval_assignees(settings("mira,ops-lead")) == [
        {"id": "mira", "name": "mira"},
        {"id": "ops-lead", "name": "ops-lead"},
    ]


def test_the_approval_names_who_and_when_or_refuses() -> None:
    assert approval_record(None, settings()) is None  # no approval step ran
    assert approval_record(APPROVED, settings("mira")) == {
        "approved_by": {"id": "mira", "name": "Mira Chen"},
        "responded_at": "2026-11-03T09:30:00+00:00",
        "chosen_options": ["Approve"],
    }
    with pytest.raises(ApprovalMissing, match="'eve', who is not in FRESHLM_APPROVERS"):
        approval_record({**APPROVED, "responded_by_user": {"id": "eve"}}, settings("mira"))
    with pytest.raises(ApprovalMissing, match="without naming who approved"):
        approval_record({**APPROVED, "responded_by_user": None}, settings())


def test_the_approver_is_in_the_audit_log_and_the_decision_record(
    store, make_version, slack, monkeypatch
) -> None:
    base, cand = make_version("base").version_id, make_version("cand").version_id
    move_alias(store, PRODUCTION, base, actor="bootstrap", reason="first", expected_from=ABSENT)
    report = make_report(cand, base)
    decision = decide(report, load_rules())
    monkeypatch.setattr(outcome, "open_store", lambda: store)
    monkeypatch.setattr(outcome, "load_report", lambda _store, _summary: report)
    monkeypatch.setattr(outcome, "get_settings", lambda: settings("mira"))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.test:8080")
    ctx = {
        "ti": SimpleNamespace(dag_id="freshlm_evaluate", run_id=RUN, task_id="promote"),
        "dag_run": SimpleNamespace(triggering_user_name=None),
    }
    summary = {"candidate": {"version_id": cand}, "baseline": {"version_id": base}}

    result = promote_candidate(ctx, summary, {**decision.to_dict()}, APPROVED)

    assert read_alias(store, PRODUCTION).version_id == cand
    actor = f"dag:freshlm_evaluate/approved_by:mira/run:{RUN}"
    assert read_audit(store, PRODUCTION)[-1].actor == actor
    stored = store.read_json(result["key"])
    assert stored["actor"] == actor
    assert stored["approval"]["approved_by"] == {"id": "mira", "name": "Mira Chen"}
    assert f"*By*\n{actor}" in text_of(slack.messages[0])  # the Slack summary names them too


PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(json.dumps(bag.dags["freshlm_evaluate"].get_task("await_approval").assigned_users))
"""


def test_the_dag_assigns_the_approval_step_to_the_approvers(tmp_path) -> None:
    repo = Path(__file__).resolve().parents[3]
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"), FRESHLM_APPROVERS="mira,ops")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(repo / "dags" / "freshlm_evaluate.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assigned = proc.stdout.strip().splitlines()[-1]
    assert assigned == '[{"id": "mira", "name": "mira"}, {"id": "ops", "name": "ops"}]'
