"""The end of a ``freshlm_curate`` run: publish the candidate, or record the refused batch.

Called from the DAG's last two tasks with the gate's settled verdict (``gate.json``, possibly
with an operator's acceptance: :func:`expectations.verdict.settle`); everything else they need
is in the batch, candidate and gate summaries (XComs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from freshlm.curation import publish as publishing
from freshlm.store import open_store


def _gated(run_id: str, batch: Mapping, candidate: Mapping, gate: Mapping) -> publishing.GatedBatch:
    return publishing.GatedBatch(
        candidate=candidate["uri"],
        report_uri=gate["report_uri"],
        window=batch["window"],
        shards=batch["shards"],
        run_id=run_id,
    )


def publish(
    run_id: str, batch: Mapping, candidate: Mapping, gate: Mapping, verdict: dict[str, Any]
) -> dict[str, Any]:
    """Publish the candidate as ``datasets/<id>``; the verdict must have passed."""
    return publishing.publish_dataset(open_store(), _gated(run_id, batch, candidate, gate), verdict)


def quarantine(
    run_id: str, batch: Mapping, candidate: Mapping, gate: Mapping, verdict: dict[str, Any]
) -> dict[str, Any]:
    """Record the refused batch under ``quarantine/batches/``; nothing is published."""
    return publishing.quarantine_batch(
        open_store(), _gated(run_id, batch, candidate, gate), verdict
    )
