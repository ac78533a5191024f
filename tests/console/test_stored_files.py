"""Stored files: published files served with their type, verified; anything else is a 404."""

from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.testclient import TestClient

from freshlm.alerts import links
from freshlm.console import create_app
from freshlm.store import Store, open_store
from tests.console.artifacts import Night
from tests.console.conftest import TokenTable, client_for


def test_data_docs_are_served_as_html_in_a_sandbox(
    admin: TestClient, store: Store, artifacts: Night
):
    key = store.prefix_for(artifacts.data_docs_uri)
    page = admin.get(links.store_file_url(key, ""))
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.content == store.read_bytes(key)
    assert page.headers["content-security-policy"].startswith("sandbox")


def test_a_file_is_found_by_its_name_in_the_artifact(admin: TestClient, artifacts: Night):
    page = admin.get(links.store_file_url(f"{artifacts.report_prefix}/report.json", ""))
    assert page.status_code == 200 and page.headers["content-type"].startswith("application/json")
    assert page.json()["candidate"]["version_id"] == artifacts.tuned.version_id


def test_traversal_unpublished_objects_manifests_and_weights_are_404s(
    admin: TestClient, artifacts: Night
):
    tuned = artifacts.tuned
    refused = {
        # .. segments, encoded so that the client does not resolve them itself
        f"/freshlm/files/{artifacts.report_prefix}/%2E%2E/%2E%2E/registry/aliases/production.json": "'..' segments",  # noqa: E501
        "/freshlm/files/registry/aliases/production.json": "only files under",
        f"/freshlm/files/{artifacts.report_prefix}/_MANIFEST.json": "has no such file",
        f"/freshlm/files/{tuned.prefix}/model.safetensors": "model weights are not served",
        "/freshlm/files/reports/nothing/here.html": "no published artifact holds it",
    }
    for url, why in refused.items():
        page = admin.get(url)
        assert page.status_code == 404, url
        assert why in html.unescape(page.text), (url, page.text)


def test_a_file_changed_in_the_store_after_publishing_is_refused(
    admin: TestClient, store: Store, tmp_path, artifacts: Night
):
    # A copy of the report in a store of its own, so the shared fixture stays intact.
    own = open_store((tmp_path / "store").as_uri())
    manifest = store.read_manifest(artifacts.report_prefix)
    with own.publisher(artifacts.report_prefix, kind=manifest.kind) as pub:
        for entry in manifest.files:
            pub.write_bytes(entry.name, store.read_bytes(manifest.key(entry.name)))
    own.write_bytes(f"{artifacts.report_prefix}/report.html", b"<html>tampered</html>")

    parent = FastAPI()
    parent.mount("/freshlm", create_app(store=lambda: own, gatekeeper=TokenTable()))
    page = client_for(parent).get(
        links.store_file_url(f"{artifacts.report_prefix}/report.html", "")
    )
    assert page.status_code == 502
    assert "does not match the manifest" in page.text
