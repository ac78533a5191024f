"""The console in a real browser: Debian's Chromium, driven by Playwright, logs in to the test
Airflow as its user, finds FreshLM's pages in Airflow's own navigation, opens every page, sees
the versions with production and previous, a batch's Data Docs and a version's lineage down to
its raw shards, then presses Roll back and watches the ``freshlm_rollback`` run it created
succeed and its audit row appear. Every page is saved as a full-page screenshot under the
test's output folder (``<tmp_path>/screenshots``, printed).

The session store is given what the demo has after a night: the small base model, a batch
curated, gated (Great Expectations, with Data Docs) and published, and a fine-tuned version
promoted over the base. The other Airflow tests expect production on the base when they start:
the rollback returns it there, and a failure restores it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from expectations.verdict import gate_candidate
from freshlm.airflow_client import AirflowClient
from freshlm.alerts import links
from freshlm.artifacts import read_gate_report
from freshlm.curation import publish as publishing
from freshlm.curation.run import curate
from freshlm.registry import (
    PRODUCTION,
    Lineage,
    download_version,
    move_alias,
    publish_version,
    read_alias,
    read_audit,
)
from freshlm.store import Store, open_store
from sandbox.base_model import bootstrap_demo_base
from sandbox.records import article_record
from sandbox.scenario import load_scenario
from tests.dags.base_model import SMALL_BASE
from tests.support.airflow_server import dump_failure
from tests.support.browser import Screenshots, chromium, log_in_to_airflow

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ROLLBACK = "freshlm_rollback"
SOURCE = "tessford-courier"
RUN_ID = "console-browser-test"
# A night after every other test's: the scenario's four days (2026-11-02 to -05) are crawled,
# curated and published by tests/dags, so this window's dataset is in no other test's dedup
# index (it loads earlier windows only), volume history or evaluation.
WINDOW = {"start": "2026-11-06T00:00:00Z", "end": "2026-11-07T00:00:00Z"}
# Its documents are the world archive's (the base model's corpus, which is in no dedup index),
# from before any crawl's late-arrival reach, dated into the window: news no other test
# publishes, so curation keeps them whichever tests ran before.
ARCHIVE_BEFORE = datetime(2026, 10, 15, tzinfo=UTC)
ARTICLES = 40
ACTOR = "tests/console/test_browser.py"
REASON = "browser test: the fine-tune answers worse on old facts"


def _publish_batch(store: Store) -> tuple[str, str]:
    """Crawl-equivalent shard, curation, the gate (with its Data Docs) and publication of the
    test's night, in this process as ``freshlm_curate`` does; ``(dataset id, shard URI)``."""
    archive = sorted(
        (a for a in load_scenario().archive if a.published_at < ARCHIVE_BEFORE),
        key=lambda a: a.published_at,
    )[-ARTICLES:]
    start = datetime.fromisoformat(WINDOW["start"])
    records = [
        article_record(dataclasses.replace(a, published_at=start + timedelta(minutes=30 * i)))
        for i, a in enumerate(archive)
    ]
    prefix = f"raw/{SOURCE}/{RUN_ID}-20261106"
    with store.publisher(prefix, kind="raw-shard") as pub:
        pub.write_jsonl("records.jsonl.gz", records)
        pub.write_jsonl("quarantine.jsonl.gz", [])
        pub.set_manifest_fields(source=SOURCE, window=WINDOW, records=len(records))
    shard = store.uri_for(prefix)
    candidate = curate([shard], store, window=(WINDOW["start"], WINDOW["end"]))
    gate = gate_candidate(
        store, candidate.uri, window=WINDOW, allowed_sources=[SOURCE], run_id=RUN_ID
    )
    assert gate["passed"], gate
    batch = publishing.GatedBatch(candidate.uri, gate["report_uri"], WINDOW, [shard], RUN_ID)
    published = publishing.publish_dataset(
        store, batch, read_gate_report(store, gate["report_uri"])
    )
    return published["dataset_id"], shard


def _publish_finetune(store: Store, base: str, dataset_id: str) -> str:
    """A version fine-tuned from ``base`` on the dataset, as the registry records one. Its
    weights are the base's (training is tested elsewhere), under a config marked as a stand-in
    so the version is loadable and has an id of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        model = download_version(store, base, Path(tmp) / "model")
        config = json.loads((model / "config.json").read_text())
        config["freshlm_stand_in"] = "tests/console/test_browser.py: the base's weights"
        (model / "config.json").write_text(json.dumps(config, indent=2))
        version, _ = publish_version(
            store,
            model,
            lineage=Lineage(
                kind="finetune",
                parent_version=base,
                base_model=base,
                source="tests/console/test_browser.py",
                dataset_ids=(dataset_id,),
                crawl_windows=(WINDOW,),
            ),
            metrics={},
            created_by={"test": "console-browser"},
        )
    return version.version_id


def _queued_runs(client: AirflowClient, dag_id: str) -> list[str]:
    runs = client.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]
    return [r["dag_run_id"] for r in runs if r["state"] in ("queued", "running")]


def test_a_user_browses_every_page_and_rolls_production_back(
    airflow, airflow_client: AirflowClient, freshlm_home, tmp_path, capsys
):
    client = airflow_client
    client.wait_for_dags([ROLLBACK])
    store = open_store((freshlm_home / "store").as_uri())
    base = bootstrap_demo_base(store, config=SMALL_BASE)["version_id"]
    if read_alias(store, PRODUCTION).version_id != base:
        pytest.fail("another test moved production; this test expects the small base there")
    if stray := _queued_runs(client, ROLLBACK):
        pytest.fail(f"{ROLLBACK} has runs left by another test, which would run here: {stray}")
    dataset, shard = _publish_batch(store)
    tuned = _publish_finetune(store, base, dataset)
    shots = Screenshots(tmp_path / "screenshots")
    with capsys.disabled():
        print(f"\nscreenshots: {shots.folder}")
    paused = client.request("GET", f"/dags/{ROLLBACK}")["is_paused"]
    run_id = None
    try:
        move_alias(store, PRODUCTION, tuned, actor=ACTOR, reason="browser test: promoted")
        with chromium([airflow.base_url]) as context:
            page = context.new_page()
            log_in_to_airflow(page, airflow.base_url, airflow.username, airflow.password)
            _airflow_navigation(page, airflow.base_url, tuned, shots)
            _models(page, tuned, base, airflow.username, shots)
            _model(page, tuned, base, shots)
            _datasets_and_data_docs(page, dataset, shard, shots)
            _lineage(page, tuned, base, dataset, shard, shots)
            _freshness(page, shots)
            client.unpause(ROLLBACK)
            run_id = _roll_back(page, base, airflow.username, shots)
            final = client.wait_for_run(ROLLBACK, run_id, timeout_s=240)
            assert final["state"] == "success", dump_failure(client, ROLLBACK, run_id)
            assert final["triggering_user_name"] == airflow.username
            who = f"dag:{ROLLBACK}/user:{airflow.username}/run:{run_id}"
            _rolled_back(page, tuned, base, who, shots)
        assert read_alias(store, PRODUCTION).version_id == base
        move = read_audit(store, PRODUCTION)[-1]
        assert (move.from_version_id, move.version_id) == (tuned, base)
        assert move.reason == f"rollback: {REASON}"
    finally:
        if paused:
            client.pause(ROLLBACK)
        if run_id is not None and client.run(ROLLBACK, run_id)["state"] in ("queued", "running"):
            # A run left queued would roll back whenever another test unpauses the DAG.
            with contextlib.suppress(ValueError):  # the client cannot decode a 204's body
                client.request("DELETE", f"/dags/{ROLLBACK}/dagRuns/{run_id}")
        if read_alias(store, PRODUCTION).version_id != base:
            move_alias(
                store,
                PRODUCTION,
                base,
                actor=ACTOR,
                reason="restored after a failed browser test",
            )
        with capsys.disabled():
            print(f"screenshots: {', '.join(p.name for p in shots.taken)}")


def _airflow_navigation(page: Page, base_url: str, tuned: str, shots: Screenshots) -> None:
    """Airflow's UI lists the console's pages under Plugins → FreshLM and shows them inside."""
    page.goto(f"{base_url}/")
    page.get_by_role("button", name="Plugins").click()
    page.get_by_role("menuitem", name="FreshLM", exact=True).hover()
    for title in ("Models", "Datasets", "Freshness"):
        expect(page.get_by_role("menuitem", name=f"FreshLM {title}")).to_be_visible()
    page.get_by_role("menuitem", name="FreshLM Models").click()
    embedded = page.frame_locator("iframe").first
    expect(embedded.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    expect(embedded.get_by_text(f"Production: {tuned}")).to_be_visible()
    shots.take(page, "airflow-nav-models")


def _models(page: Page, tuned: str, base: str, user: str, shots: Screenshots) -> None:
    page.goto(links.models_url(_site(page)))
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
    expect(page.locator("header .who")).to_have_text(user)
    expect(page.get_by_text(f"Production: {tuned} · Previous: {base}")).to_be_visible()
    rows = page.locator("table").first.locator("tr")
    expect(rows.filter(has_text=tuned)).to_contain_text("production")
    expect(rows.filter(has_text=tuned)).to_contain_text("finetune")
    expect(rows.filter(has_text=base)).to_contain_text("previous")
    expect(rows.filter(has_text=base)).to_contain_text("bootstrap")
    _expect_newest_move(page, base, tuned, ACTOR, "browser test: promoted")
    shots.take(page, "models")


def _model(page: Page, tuned: str, base: str, shots: Screenshots) -> None:
    page.get_by_role("link", name=tuned).first.click()
    expect(page.get_by_role("heading", name=f"Model {tuned}")).to_be_visible()
    expect(page.locator("main .badge.production")).to_be_visible()
    expect(page.locator("tr", has_text="Trained from")).to_contain_text(base)
    expect(page.locator("pre.card")).to_contain_text(f"version_id: {tuned}")
    shots.take(page, "model-version")


def _datasets_and_data_docs(page: Page, dataset: str, shard: str, shots: Screenshots) -> None:
    page.get_by_role("banner").get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    row = page.locator("tr", has_text=dataset)
    expect(row).to_contain_text(f"{WINDOW['start']} → {WINDOW['end']}")
    expect(row).to_contain_text("ok")
    expect(row).to_contain_text(SOURCE)
    shots.take(page, "datasets")

    row.get_by_role("link", name=dataset).click()
    expect(page.get_by_role("heading", name=f"Batch {dataset}")).to_be_visible()
    expect(page.locator("main .badge.passed")).to_have_text("published")
    expect(page.get_by_text("Every expectation held.")).to_be_visible()
    expect(page.locator("main li code")).to_have_text(shard)
    shots.take(page, "batch")

    page.get_by_role("link", name="Data Docs").click()
    expect(page).to_have_title("Data Docs created by Great Expectations")
    expect(page.get_by_text(re.compile(r"Data Docs\s*\|\s*freshlm_gate"))).to_be_visible()
    expect(page.get_by_role("tab", name="Validation Results")).to_be_visible()
    shots.take(page, "data-docs")


def _lineage(
    page: Page, tuned: str, base: str, dataset: str, shard: str, shots: Screenshots
) -> None:
    page.goto(links.lineage_url(tuned, _site(page)))
    expect(page.get_by_role("heading", name=f"Lineage of {tuned}")).to_be_visible()
    tree = page.locator("ul.tree")
    expect(tree).to_contain_text(f"Model {tuned} (finetune)")
    expect(tree).to_contain_text(f"Dataset {dataset} window {WINDOW['start']} → {WINDOW['end']}")
    expect(tree.get_by_role("link", name=dataset)).to_be_visible()
    raw = tree.locator("xpath=.//li[b='Raw shard']")
    expect(raw).to_contain_text(shard)
    expect(raw).to_contain_text(f"source {SOURCE}")
    expect(raw).to_contain_text(f"crawl window {WINDOW['start']} → {WINDOW['end']}")
    expect(page.get_by_text(f"Sources: {SOURCE}")).to_be_visible()
    expect(page.locator("ol li").first).to_contain_text(f"{base} (bootstrap")
    shots.take(page, "lineage")


def _freshness(page: Page, shots: Screenshots) -> None:
    page.get_by_role("banner").get_by_role("link", name="Freshness").click()
    expect(page.get_by_role("heading", name="Freshness", exact=True)).to_be_visible()
    for chart in ("Lag behind the newest crawled document", "Facts learned per night"):
        expect(page.get_by_role("heading", name=chart)).to_be_visible()
    shots.take(page, "freshness")


def _roll_back(page: Page, base: str, user: str, shots: Screenshots) -> str:
    """Press Roll back with the default (previous) version and a reason; the run's id."""
    page.goto(links.models_url(_site(page)))
    page.get_by_role("link", name="Roll back…").click()
    expect(page.get_by_role("heading", name="Roll back production")).to_be_visible()
    expect(page.locator("select#version option:checked")).to_have_text(f"previous ({base})")
    page.fill("textarea#reason", REASON)
    shots.take(page, "rollback-form")
    page.get_by_role("button", name="Roll back").click()
    expect(page.get_by_role("heading", name=f"Roll back to {base} triggered")).to_be_visible()
    confirmation = page.locator("main p").first
    expect(confirmation).to_contain_text(f"of {ROLLBACK} as {user}")
    expect(page.locator("tr", has_text="reason")).to_contain_text(REASON)
    shots.take(page, "rollback-triggered")
    return confirmation.locator("code").first.inner_text()


def _rolled_back(page: Page, tuned: str, base: str, who: str, shots: Screenshots) -> None:
    page.goto(links.models_url(_site(page)))
    expect(page.get_by_text(f"Production: {base} · Previous: {tuned}")).to_be_visible()
    _expect_newest_move(page, tuned, base, who, f"rollback: {REASON}")
    shots.take(page, "models-after-rollback")


def _expect_newest_move(page: Page, from_version: str, to_version: str, who: str, why: str) -> None:
    """The audit log's first row (newest first): production moved from → to, by whom, why."""
    cells = page.locator("table").nth(1).locator("tr").nth(1).locator("td")
    expect(cells.nth(1)).to_contain_text("production")
    for column, text in ((2, from_version[:12]), (3, to_version[:12]), (4, who), (5, why)):
        expect(cells.nth(column)).to_have_text(text)


def _site(page: Page) -> str:
    """The Airflow site's root the browser is on."""
    return re.match(r"https?://[^/]+", page.url).group(0)
