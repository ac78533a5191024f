"""Every link FreshLM hands out (alerts, reports, extra links) opens a console route."""

from __future__ import annotations

from starlette.routing import Match

from freshlm.alerts import links
from freshlm.console import create_app
from tests.console.routes import console_routes

VERSION = "a" * 32


def _methods_matching(path: str) -> set[str]:
    app = create_app()
    methods = set()
    for route in app.routes:
        for method in ("GET", "POST"):
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            match, _ = route.matches(scope)
            if match == Match.FULL:
                methods.add(method)
    return methods


def test_every_link_builder_resolves_to_a_console_route():
    base = "https://airflow.example"
    expected = {
        links.models_url(base): {"GET"},
        links.model_url(VERSION, base): {"GET"},
        links.rollback_url(base): {"GET", "POST"},
        links.datasets_url(base): {"GET"},
        links.batch_url("cand-1", base): {"GET"},
        links.accept_batch_url("cand-1", base): {"GET", "POST"},
        links.lineage_url(VERSION, base): {"GET"},
        links.freshness_url(base): {"GET"},
        links.store_file_url("gate-reports/c/run/data_docs/index.html", base): {"GET"},
    }
    for url, methods in expected.items():
        path = url.removeprefix(base + links.CONSOLE_PREFIX)
        assert _methods_matching(path) == methods, url


def test_the_roll_back_form_is_not_taken_for_a_model_version():
    app = create_app()
    scope = {"type": "http", "path": "/models/rollback", "method": "GET", "root_path": ""}
    names = [r.name for r in app.routes if r.matches(scope)[0] == Match.FULL]
    assert names[0] == "rollback_form"


def test_the_route_list_covers_pages_and_actions():
    routes = console_routes()
    assert ("POST", "/freshlm/models/rollback") in routes
    assert ("POST", "/freshlm/datasets/no-such-batch/accept") in routes
    assert len(routes) >= 12
