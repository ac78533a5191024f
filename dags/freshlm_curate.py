"""
### FreshLM curation and gate

Stages 2 and 3 of the loop: the night's raw shards in, a **published dataset** (or a
**quarantined batch** and a Slack alert) out. Runs when `freshlm_crawl` announces
`freshlm://raw/batch`, or by hand with Params.

1. `curate_batch` — normalize, identify language, quality rules (per language and source kind),
   exact and near-duplicate removal (also against everything published before), PII scrubbing,
   toxicity screen, train/held-out split. Every dropped document goes to the candidate's
   quarantine file with its reason; the counts are in the task log and the candidate manifest.
2. `gate_batch` — Great Expectations suites on the candidate; the Data Docs are stored with
   the gate report and linked from alerts.
3. `publish_dataset` (gate passed, or accepted by an operator) — `datasets/<id>` with lineage
   back to the raw shards, announced as `freshlm://datasets`; a warning also alerts Slack.
   `quarantine_batch` (critical failure) — records the refused batch, alerts Slack with the
   failed expectations, and fails the run. Nothing is published.

**Params (manual runs):** `shards` + `window_start` + `window_end` to curate a given batch;
`accept_batch` with a mandatory `accept_reason` to publish a batch the gate refused (the
acceptance, with who and why, is recorded in the dataset's manifest).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Param, dag, get_current_context, task

from freshlm.alerts.deadline import nightly_deadline
from freshlm.artifacts import CRAWL_BATCH_ASSET, DATASETS_ASSET, dag_defaults
from freshlm.task_links import DataDocsLink, attach


@dag(
    dag_id="freshlm_curate",
    schedule=[CRAWL_BATCH_ASSET],
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "curate", "gate"],
    doc_md=__doc__,
    default_args=dag_defaults(),
    deadline=nightly_deadline(),
    params={
        "shards": Param(
            [],
            type="array",
            items={"type": "string", "minLength": 1, "maxLength": 2000},
            description="Raw shard URIs to curate (manual runs); empty: the triggering crawl's.",
        ),
        "window_start": Param(None, type=["null", "string"], format="date-time"),
        "window_end": Param(None, type=["null", "string"], format="date-time"),
        "accept_batch": Param(
            False, type="boolean", description="Publish even though the gate refused the batch."
        ),
        "accept_reason": Param(
            "",
            type="string",
            maxLength=2000,
            description="Required with accept_batch: why the batch is safe; it is recorded.",
        ),
    },
)
def freshlm_curate():
    @task(retries=0, inlets=[CRAWL_BATCH_ASSET])
    def resolve() -> dict:
        from freshlm.curation.batch import resolve_batch
        from freshlm.triggering_events import triggering_extras

        ctx = get_current_context()
        events = triggering_extras(ctx, CRAWL_BATCH_ASSET)
        return resolve_batch(ctx["params"], events)

    @task
    def curate_batch(batch: dict) -> dict:
        from freshlm.curation.run import curate
        from freshlm.store import open_store

        result = curate(
            batch["shards"], open_store(), window=(batch["window"]["start"], batch["window"]["end"])
        )
        return {k: v for k, v in result.summary.items() if k != "stats"}

    @task
    def gate_batch(batch: dict, candidate: dict) -> dict:
        from crawlers.sources import load_sources
        from expectations.verdict import gate_candidate
        from freshlm.store import open_store

        return gate_candidate(
            open_store(),
            candidate["uri"],
            window=batch["window"],
            allowed_sources=[s.name for s in load_sources()],
            run_id=get_current_context()["run_id"],
        )

    @task.branch
    def decide(batch: dict, gate: dict) -> str:
        return "publish_dataset" if gate["passed"] or batch["accept"] else "quarantine_batch"

    @task(outlets=[DATASETS_ASSET])
    def publish_dataset(batch: dict, candidate: dict, gate: dict) -> dict:
        from expectations import verdict
        from freshlm.curation import outcome

        ctx = get_current_context()
        result = verdict.settle(ctx, batch, gate)
        published = outcome.publish(ctx["run_id"], batch, candidate, gate, result)
        published["alerted"] = verdict.alert_if_warned(ctx, result, gate["data_docs_url"])
        ctx["outlet_events"][DATASETS_ASSET].extra = published
        return published

    @task(retries=0)
    def quarantine_batch(batch: dict, candidate: dict, gate: dict) -> dict:
        from expectations import verdict
        from freshlm.curation import outcome

        ctx = get_current_context()
        result = verdict.settle(ctx, batch, gate)
        record = outcome.quarantine(ctx["run_id"], batch, candidate, gate, result)
        verdict.alert(ctx, result, gate["data_docs_url"])
        raise verdict.refused(batch["window"], result, record["quarantine_uri"])

    batch = resolve()
    candidate = curate_batch(batch)
    gate = attach(gate_batch(batch, candidate), DataDocsLink())
    decide(batch, gate) >> [
        publish_dataset(batch, candidate, gate),
        quarantine_batch(batch, candidate, gate),
    ]


freshlm_curate()
