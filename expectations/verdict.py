"""The gate stage's verdict on a curated candidate, as the ``freshlm_curate`` DAG runs it.

* :func:`gate_candidate` — the Great Expectations gate on a candidate (``candidates/<id>/``),
  published as ``gate-reports/<candidate_id>/<run>/``: ``gate.json`` (the
  :class:`~expectations.gate.GateResult`, read back with
  :func:`freshlm.artifacts.read_gate_report`) and ``data_docs/**`` (the Great Expectations
  site), linked from alerts and from the dataset. Curation publishes or quarantines from it.
  A retry of the same run replaces its report in one swap, never deleting it first: the new
  files lie together under the report's ``_attempts/<id>/`` (readers find them through the
  manifest, and ``data_docs_index`` names the site's front page).
* :func:`settle` — the verdict that decides: the report's, or an operator's acceptance of a
  refused batch (reason and user recorded).
* :func:`alert` / :func:`alert_if_warned` / :func:`refused` — the Slack alert for a refused,
  warned or accepted batch, and the task failure that follows a refusal.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from freshlm.artifacts import (
    GATE_JSON,
    GATE_REPORTS,
    HELDOUT_FILE,
    QUARANTINE_FILE,
    TRAIN_FILE,
    ArtifactNotFound,
    published_datasets,
    read_gate_report,
)
from freshlm.records import parse_utc
from freshlm.store import Store

log = logging.getLogger(__name__)

#: Published batches whose per-source volumes form the history a new batch is compared with.
HISTORY_BATCHES = 7
#: The Data Docs site's front page, relative to the gate report.
DATA_DOCS_INDEX = "data_docs/index.html"


def volume_history(store: Store, before: str) -> dict[str, list[int]]:
    """Per-source volumes of the last published batches whose window ended by ``before``."""
    history: dict[str, list[int]] = {}
    earlier = [d for d in published_datasets(store) if d.window["end"] <= before]
    for dataset in earlier[-HISTORY_BATCHES:]:
        volumes = dataset.fields.get("gate", {}).get("volume_by_source", {})
        for source, volume in volumes.items():
            history.setdefault(source, []).append(int(volume))
    return history


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:120]


def gate_candidate(
    store: Store,
    candidate: str,
    *,
    window: dict[str, str],
    allowed_sources: list[str],
    run_id: str,
) -> dict[str, Any]:
    """Run the Great Expectations gate on a candidate and store its report and Data Docs.

    Returns ``{"severity", "passed", "report_uri", "data_docs_url", "candidate_uri"}``; the
    full :class:`~expectations.gate.GateResult` is ``gate.json`` in the report.
    """
    from expectations.config import GateContext
    from expectations.gate import run_gate

    cand_prefix = store.prefix_for(candidate)
    manifest = store.read_manifest(cand_prefix)
    if manifest is None:
        raise ArtifactNotFound(f"candidate {candidate} is not published; curate the batch first")
    context = GateContext(
        window_start=parse_utc("window.start", window["start"]),
        window_end=parse_utc("window.end", window["end"]),
        allowed_sources=allowed_sources,
        volume_history=volume_history(store, window["start"]),
        run_name=run_id,
    )
    report_prefix = f"{GATE_REPORTS}/{manifest.artifact_id}/{_safe(run_id)}"
    with tempfile.TemporaryDirectory(prefix="freshlm-gate-") as tmp:
        folder = Path(tmp)
        for name in (TRAIN_FILE, HELDOUT_FILE, QUARANTINE_FILE):
            with store.open_artifact_file(manifest, name) as src, (folder / name).open("wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
        result = run_gate(
            [folder / TRAIN_FILE, folder / HELDOUT_FILE],
            context=context,
            quarantine=folder / QUARANTINE_FILE,
            data_docs_dir=folder / "data_docs",
        )
        # A retry of the same run replaces its own report (Data Docs carry run timestamps) in
        # one swap: the old report stays readable until the new one is complete.
        docs_root = folder / "data_docs"
        with store.publisher(
            report_prefix,
            kind="gate-report",
            created_by={"run_id": run_id},
            replace=True,
            keep_together=True,
        ) as pub:
            # Skip the gate's own bookkeeping (dot files such as its rebuild marker).
            site_files = (p for p in docs_root.rglob("*") if p.is_file())
            for path in sorted(p for p in site_files if not p.name.startswith(".")):
                pub.write_bytes(
                    f"data_docs/{path.relative_to(docs_root).as_posix()}", path.read_bytes()
                )
            data_docs_url = store.uri_for(pub.stored_key(DATA_DOCS_INDEX))
            result_dict = result.to_dict()
            result_dict["data_docs_index"] = data_docs_url
            pub.write_bytes(GATE_JSON, json.dumps(result_dict, indent=2, sort_keys=True).encode())
            pub.set_manifest_fields(
                candidate=store.uri_for(cand_prefix),
                severity=result.severity,
                window=window,
                failures=len(result.failures),
            )
    log.info(
        "gate %s for candidate %s: %d failures (%d critical); report %s",
        result.severity,
        manifest.artifact_id,
        len(result.failures),
        len(result.critical_failures),
        store.uri_for(report_prefix),
    )
    return {
        "severity": result.severity,
        "passed": result.passed,
        "candidate_uri": store.uri_for(cand_prefix),
        "report_uri": store.uri_for(report_prefix),
        "data_docs_url": data_docs_url,
    }


def settle(ctx: Mapping[str, Any], batch: Mapping[str, Any], gate: Mapping[str, Any]) -> dict:
    """The verdict that decides publish or quarantine: ``gate.json`` of the run's gate report,
    accepted by the operator who triggered the run when the gate refused the batch and the run
    asked for it (``batch["accept"]``: ``{"reason": ...}``)."""
    from freshlm.store import open_store

    result = read_gate_report(open_store(), gate["report_uri"])
    if batch.get("accept") and not result["passed"]:
        from expectations.gate import GateResult, accept_override

        user = getattr(ctx.get("dag_run"), "triggering_user_name", None) or "operator"
        accepted = accept_override(
            GateResult.from_dict(result),
            batch["accept"]["reason"],
            user,
            accepted_at=ctx["dag_run"].run_after,
        )
        result = accepted.to_dict()
        log.warning(
            "gate %s overridden by %s: %s", gate["severity"], user, batch["accept"]["reason"]
        )
    return result


def alert(ctx: Mapping[str, Any], result: Mapping[str, Any], data_docs_url: str) -> bool:
    """Send the gate's Slack alert for ``result``; True when Slack took it. ``data_docs_url`` is
    the Data Docs' store URI: the alert links the console's copy, and its *Accept batch…*
    button the candidate it belongs to."""
    from expectations.alert import gate_alert
    from freshlm.alerts.links import airflow_base_url
    from freshlm.alerts.messages import task_log_url
    from freshlm.alerts.pages import store_key
    from freshlm.alerts.sender import send_slack

    ti = ctx["ti"]
    message = gate_alert(
        result,
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        log_url=task_log_url(airflow_base_url(), ti.dag_id, ti.run_id, "gate_batch"),
        data_docs_url=data_docs_url,
        candidate_id=candidate_of_report(store_key(data_docs_url) or ""),
    )
    return send_slack(message)


def candidate_of_report(key: str) -> str | None:
    """The candidate id in a gate report's store key (``gate-reports/<candidate>/…``)."""
    parts = key.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == GATE_REPORTS and parts[1] else None


def alert_if_warned(
    ctx: Mapping[str, Any], result: Mapping[str, Any], data_docs_url: str
) -> bool | None:
    """After a publish: alert when the gate warned or an operator accepted a refused batch
    (None when there was nothing to say)."""
    if result["severity"] == "ok" and not result.get("override"):
        return None
    return alert(ctx, result, data_docs_url)


def refused(window: Mapping[str, str], result: Mapping[str, Any], quarantine_uri: str):
    """The task failure that ends a run whose batch the gate refused (its alert already sent:
    the failure callback stays quiet)."""
    from freshlm.alerts.callbacks import AlertedFailure

    critical = sorted({f["check"] for f in result["failures"] if f["severity"] == "critical"})
    return AlertedFailure(
        f"gate refused the batch for {window['start']}..{window['end']} "
        f"({', '.join(critical)}); quarantined at {quarantine_uri}; nothing published. "
        "Rerun after fixing the source, or trigger with accept_batch and accept_reason."
    )
