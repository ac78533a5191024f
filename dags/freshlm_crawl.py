"""
### FreshLM nightly crawl

Stage 1 of the loop: fetch what changed in the world during the run's data interval, from every
source in the sources file (news feeds, Mastodon timelines, arXiv categories), and publish one
immutable **raw shard** per source (JSONL.gz + manifest with counts, errors by kind, pages/s and
the cursor it advanced to).

* One task per source (dynamic task mapping); each runs its Scrapy spider in its own process.
  A source that stays unreachable after retries fails its own task with the spider's error,
  while the other sources still complete.
* Re-running a night fetches nothing twice: a published shard for the same window is reused,
  and per-source cursors in the store remember what was already seen.
* Nights the scheduler missed (`catchup=False` runs only the latest) are not lost: the news
  and Mastodon cursors take every item not seen yet, and the arXiv crawl starts where its
  cursor says the last fetched window ended (at most 7 days back, what the gate accepts as
  late arrivals), recording that stretch as `folded` in the shard; `freshlm_monitor` alerts
  while such nights stay uncurated.
* Each shard is announced as the Asset `freshlm://raw/<source>` (counts in the event's extra);
  `announce_batch` then announces `freshlm://raw/batch` with every shard of the night, which
  the curation DAG is scheduled on; `all_sources_crawled` fails the run if any source failed,
  so a partial night is visible in the UI while the good shards still move on.
* A task that fails for good posts one Slack alert (the failure callback of `dag_defaults()`);
  a night still crawling at `FRESHLM_NIGHTLY_DEADLINE` (08:00 UTC by default) posts one naming
  the tasks it is stuck on.

**Params (manual runs):** `sources` (names; empty = all) and an optional window override
(`window_start`, `window_end`, ISO 8601 UTC; both or neither).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetAlias, Param, dag, get_current_context, task
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

from freshlm.alerts.deadline import nightly_deadline
from freshlm.artifacts import CRAWL_BATCH_ASSET, dag_defaults, raw_source_asset
from freshlm.settings import get_settings

RAW_SHARDS = AssetAlias("freshlm-raw-shards")
_CRON = get_settings().crawl_schedule
# After the spider's own close (FRESHLM_CRAWL_TIMEOUT_S) and the kill a minute later.
_CRAWL_TASK_TIMEOUT = timedelta(seconds=get_settings().crawl_timeout_s + 120)


@dag(
    dag_id="freshlm_crawl",
    schedule=CronDataIntervalTimetable(_CRON, timezone="UTC") if _CRON else None,
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["freshlm", "crawl"],
    doc_md=__doc__,
    default_args=dag_defaults(retries=2, retry_exponential_backoff=True),
    deadline=nightly_deadline(),
    params={
        "sources": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"},
            uniqueItems=True,
            description="Sources to crawl, by name from the sources file; empty means all.",
        ),
        "window_start": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Override the window start (ISO 8601 UTC, e.g. 2026-11-02T00:00:00Z).",
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            format="date-time",
            description="Override the window end (exclusive); give both or neither.",
        ),
    },
)
def freshlm_crawl():
    @task(retries=0)
    def plan_crawl() -> dict:
        from crawlers.launch import plan

        ctx = get_current_context()
        return plan(ctx["params"], ctx.get("data_interval_start"), ctx.get("data_interval_end"))

    @task
    def source_names(crawl_plan: dict) -> list[str]:
        return crawl_plan["sources"]

    @task(
        outlets=[RAW_SHARDS],
        map_index_template="{{ source }}",
        execution_timeout=_CRAWL_TASK_TIMEOUT,
    )
    def crawl(source: str, crawl_plan: dict) -> dict:
        from crawlers.launch import asset_extra, crawl_in_subprocess

        ctx = get_current_context()
        summary = crawl_in_subprocess(source, crawl_plan["window"], ctx["run_id"])
        extra = asset_extra(summary)
        ctx["outlet_events"][RAW_SHARDS].add(raw_source_asset(source), extra=extra)
        return extra

    # all_done_min_one_success: announce the sources that did crawl even when some failed; when
    # the plan itself failed there is nothing to announce, and the task ends upstream_failed
    # instead of failing (on-call gets one alert, the plan's). No retries: it only gathers
    # results, and a retry cannot bring back a plan or a crawl that failed.
    @task(trigger_rule="all_done_min_one_success", outlets=[CRAWL_BATCH_ASSET], retries=0)
    def announce_batch(crawl_plan: dict, shards: list[dict]) -> dict:
        from crawlers.launch import batch_summary

        ctx = get_current_context()
        batch = batch_summary(crawl_plan, [s for s in shards if s])
        ctx["outlet_events"][CRAWL_BATCH_ASSET].extra = batch
        return batch

    @task(retries=0)
    def all_sources_crawled(batch: dict) -> None:
        """Fail the run (after the batch is announced) when any source failed. Each failed
        crawl task already alerted Slack with its error; this failure adds no second alert."""
        from freshlm.alerts.callbacks import AlertedFailure

        if batch["failed_sources"]:
            raise AlertedFailure(
                f"sources failed: {batch['failed_sources']}; their crawl tasks have the errors"
            )

    crawl_plan = plan_crawl()
    shards = crawl.partial(crawl_plan=crawl_plan).expand(source=source_names(crawl_plan))
    all_sources_crawled(announce_batch(crawl_plan, shards))


freshlm_crawl()
