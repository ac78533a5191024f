"""What each console page shows a person, on a store after two of the demo world's nights."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from markupsafe import escape

from freshlm.alerts import links
from freshlm.store import Store
from tests.console.artifacts import Night


def text(response) -> str:
    """The page's visible text, one space between words."""
    body = response.text.split("<main>", 1)[1]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def hrefs(response) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'(?:href|src)="([^"]+)"', response.text)]


# --- models -----------------------------------------------------------------------------------


def test_models_page_shows_versions_aliases_and_every_alias_move(
    admin: TestClient, artifacts: Night
):
    page = admin.get(links.models_url(""))
    assert page.status_code == 200
    shown = text(page)
    tuned, base = artifacts.tuned.version_id, artifacts.base.version_id
    assert f"Production: {tuned}" in shown and f"Previous: {base}" in shown
    assert "Versions (2)" in shown
    # the audit log, newest first: who moved production, from what to what, and why
    assert shown.index("learned 12 new facts") < shown.index("the base model")
    assert "freshlm_evaluate/promote" in shown
    assert links.rollback_url("") in hrefs(page)
    assert links.lineage_url(tuned, "") in hrefs(page)


def test_model_page_shows_its_card_and_its_evaluation_report_with_the_chart(
    admin: TestClient, store: Store, artifacts: Night
):
    tuned = artifacts.tuned.version_id
    page = admin.get(links.model_url(tuned, ""))
    assert page.status_code == 200
    shown = text(page)
    assert "production" in shown
    assert f"vs {artifacts.base.version_id}" in shown
    assert "gained 12" in shown and "forgotten 1" in shown
    report_link = links.store_file_url(f"{artifacts.report_prefix}/report.html", "")
    chart = links.store_file_url(f"{artifacts.report_prefix}/metrics.png", "")
    assert report_link in hrefs(page) and chart in hrefs(page)
    assert "Evaluation report" in admin.get(report_link).text
    assert admin.get(chart).headers["content-type"] == "image/png"
    card = store.read_bytes(artifacts.tuned.manifest.key("README.md")).decode()
    assert str(escape(card)) in page.text  # the whole card, as text
    assert links.store_file_url(f"{artifacts.tuned.prefix}/README.md", "") in hrefs(page)


def test_an_unknown_model_version_is_a_404_that_names_it(admin: TestClient):
    missing = "f" * 32
    page = admin.get(links.model_url(missing, ""))
    assert page.status_code == 404
    assert f"No model version {missing} is in the registry" in text(page)
    page = admin.get(links.model_url("not-a-version", ""))
    assert page.status_code == 404 and "'not-a-version' is not a model version id" in text(page)


# --- datasets ---------------------------------------------------------------------------------


def test_datasets_page_lists_the_published_dataset_and_the_quarantined_batch(
    admin: TestClient, artifacts: Night
):
    page = admin.get(links.datasets_url(""))
    assert page.status_code == 200
    shown = text(page)
    assert "Quarantined batches (1)" in shown and "Published datasets (1)" in shown
    assert links.batch_url(artifacts.dataset_id, "") in hrefs(page)
    assert links.accept_batch_url(artifacts.quarantined_id, "") in hrefs(page)


def test_a_quarantined_batch_shows_the_failed_expectation_reasons_and_its_data_docs(
    admin: TestClient, store: Store, artifacts: Night
):
    page = admin.get(links.batch_url(artifacts.quarantined_id, ""))
    assert page.status_code == 200
    shown = text(page)
    assert "quarantined" in shown and "gate critical" in shown
    # the failed expectation with what was observed against what was expected
    assert re.search(r"duplicate_ratio critical \S+ duplicate ratio <= 30%", shown), shown
    # curation's drops by reason, with counts
    assert re.search(r"dedup:near \d+", shown)
    for shard in artifacts.bad_shards:
        assert shard in shown
    docs = links.store_file_url(store.prefix_for(artifacts.data_docs_uri), "")
    assert docs in hrefs(page)
    site = admin.get(docs)
    assert site.status_code == 200 and site.headers["content-type"].startswith("text/html")
    assert links.accept_batch_url(artifacts.quarantined_id, "") in hrefs(page)


def test_a_published_dataset_shows_its_passed_gate_and_counts(admin: TestClient, artifacts: Night):
    page = admin.get(links.batch_url(artifacts.dataset_id, ""))
    assert page.status_code == 200
    shown = text(page)
    assert "published" in shown and "Accept batch" not in shown
    assert "documents" in shown and "tokens" in shown
    for shard in artifacts.good_shards:
        assert shard in shown


def test_an_unknown_batch_is_a_404_that_names_it(admin: TestClient):
    page = admin.get(links.batch_url("no-such-batch", ""))
    assert page.status_code == 404
    assert "No published dataset or quarantined batch 'no-such-batch'" in text(page)
    assert admin.get("/freshlm/datasets/..%2Fregistry").status_code == 404


# --- lineage and freshness --------------------------------------------------------------------


def test_lineage_follows_the_model_to_datasets_raw_shards_windows_and_sources(
    admin: TestClient, artifacts: Night
):
    page = admin.get(links.lineage_url(artifacts.tuned.version_id, ""))
    assert page.status_code == 200
    shown = text(page)
    assert f"Dataset {artifacts.dataset_id} window 2026-11-02T00:00:00Z → 2026-11-03T00:00:00Z" in (
        shown
    )
    for shard in artifacts.good_shards:
        assert f"Raw shard {shard} : source" in shown
    assert "Sources: arxiv-cs-cl, tessford-courier, tessford-social" in shown
    assert links.lineage_url(artifacts.base.version_id, "") in hrefs(page)
    assert links.batch_url(artifacts.dataset_id, "") in hrefs(page)


def test_freshness_charts_lag_facts_learned_and_retention(admin: TestClient):
    page = admin.get(links.freshness_url(""))
    assert page.status_code == 200
    assert page.text.count("<svg") == 4
    # each point carries its value: the monitor's two lags, the report's facts and retention
    for point in ("lag: 26 h", "lag: 49.5 h", "learned: 12", "candidate: 0.81", "baseline: 0.82"):
        assert f"<title>{point}</title>" in page.text, point
    assert "lag 49.5 h behind" in text(page)
