"""Control endpoints, the world clock over HTTP, probes, fault injection, and the CLI."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from lxml import etree

from sandbox.server import WorldServer
from tests.sandbox import tiny_scenario


def _post(world: WorldServer, path: str, payload) -> requests.Response:
    return requests.post(world.url + path, json=payload, timeout=10)


def test_health(world_at_start: WorldServer) -> None:
    health = requests.get(f"{world_at_start.url}/_world/health", timeout=5).json()
    assert health["ok"] is True and health["url"] == world_at_start.url
    assert health["scenario"] == world_at_start.scenario.name


def test_content_appears_day_by_day_over_http(world_at_start: WorldServer) -> None:
    """The packaged scenario, moved a day at a time through the control endpoint."""
    world = world_at_start
    url = world.url
    assert requests.get(f"{url}/_world/clock", timeout=5).json()["now"] == "2026-11-02T00:00:00Z"
    seen_items, seen_posts, seen_papers = [], [], []
    for _day in world.scenario.days:
        clock = _post(world, "/_world/clock", {"advance": {"days": 1}}).json()
        feed = etree.fromstring(requests.get(f"{url}/news/feeds/all.rss", timeout=5).content)
        seen_items.append({i.findtext("link") for i in feed.iter("item")})
        statuses = requests.get(f"{url}/api/v1/timelines/public?limit=40", timeout=5).json()
        seen_posts.append(max(int(s["id"]) for s in statuses) if statuses else 0)
        query = requests.get(
            f"{url}/api/query", params={"search_query": "cat:cs", "max_results": 0}, timeout=5
        )
        total = etree.fromstring(query.content).findtext(
            "{http://a9.com/-/spec/opensearch/1.1/}totalResults"
        )
        seen_papers.append(int(total))
        assert clock["now"].endswith("T00:00:00Z")
    for earlier, later in itertools.pairwise(seen_items):
        assert later - earlier  # each night's feed has stories the night before did not
    assert seen_posts == sorted(seen_posts) and seen_posts[0] < seen_posts[-1]
    assert seen_papers == sorted(seen_papers) and seen_papers[0] < seen_papers[-1]


def test_clock_control_syntax(tiny: WorldServer) -> None:
    assert _post(tiny, "/_world/clock", {"now": "day:2"}).json() == {
        "now": "2026-11-04T00:00:00Z",
        "start": "2026-11-02T00:00:00Z",
        "day": 3,
    }
    assert _post(tiny, "/_world/clock", {"now": "day:1@09:30"}).json()["now"] == (
        "2026-11-02T09:30:00Z"
    )
    assert _post(tiny, "/_world/clock", {"advance": "1d6h"}).json()["now"] == (
        "2026-11-03T15:30:00Z"
    )
    assert _post(tiny, "/_world/clock", {"reset": True}).json()["now"] == "2026-11-02T00:00:00Z"


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"now": "yesterday"}, "'yesterday'"),
        ({"now": "2026-11-03T02:00:00"}, "no timezone"),
        ({"now": "day:9"}, "days 1 to 3"),
        ({"now": 5}, '"now" must be a string'),
        ({"advance": "soon"}, "not a duration"),
        ({"advance": {"weeks": 1}}, "unknown: weeks"),
        ({"advance": {"days": -1}}, '"advance".days'),
        ({"now": "day:1", "advance": "1d"}, "exactly one of"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_clock_control_rejects_bad_input_naming_it(tiny: WorldServer, payload, named) -> None:
    response = _post(tiny, "/_world/clock", payload)
    assert response.status_code == 400
    assert named in response.json()["error"]
    assert tiny.clock.now() == tiny.clock.start  # nothing moved


def test_invalid_json_and_unknown_endpoints(tiny: WorldServer) -> None:
    broken = requests.post(f"{tiny.url}/_world/clock", data=b"{", timeout=5)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    missing = requests.get(f"{tiny.url}/_world/nothing", timeout=5)
    assert missing.status_code == 404 and "/_world/clock" in missing.json()["endpoints"]


def test_probes_are_those_available_at_now(tiny: WorldServer) -> None:
    probes = requests.get(f"{tiny.url}/_world/probes", timeout=5).json()["probes"]
    assert probes == []
    tiny.clock.set(tiny_scenario.DAY2)
    [probe] = requests.get(f"{tiny.url}/_world/probes", timeout=5).json()["probes"]
    assert probe["key"] == "price" and probe["answer"] == "$649"
    assert probe["distractors"] == ["$549"] and probe["persona"] == "support"
    assert probe["available_at"] == "2026-11-02T01:00:00Z"
    assert probe["current"] is True and probe["supersedes"] is None
    urls = {e["ref"]: e["url"] for e in probe["evidence"]}
    assert urls["article:tech-one"] == f"{tiny.url}/news/tech/tech-one.html"
    edited = tiny.scenario.post("edited")
    assert urls["post:edited"] == f"{tiny.url}/api/v1/statuses/{edited.id}"
    assert requests.get(urls["post:edited"], timeout=5).status_code == 200


def test_fault_rules_hit_the_first_n_matching_requests(tiny: WorldServer) -> None:
    armed = _post(
        tiny,
        "/_world/faults",
        [
            {"path_prefix": "/news/feeds/", "status": 503, "times": 2, "retry_after": 7},
            {"path_prefix": "/api/query", "status": 500, "body": "boom", "method": "GET"},
        ],
    )
    assert armed.status_code == 200 and len(armed.json()["rules"]) == 2
    first = requests.get(f"{tiny.url}/news/feeds/all.rss", timeout=5)
    assert (first.status_code, first.headers["Retry-After"], first.text) == (
        503,
        "7",
        "Service Unavailable",
    )
    assert requests.get(f"{tiny.url}/news/feeds/tech.rss", timeout=5).status_code == 503
    assert requests.get(f"{tiny.url}/news/feeds/all.rss", timeout=5).status_code == 200
    boom = requests.get(f"{tiny.url}/api/query?search_query=cat:cs.CL", timeout=5)
    assert (boom.status_code, boom.text) == (500, "boom")
    rules = requests.get(f"{tiny.url}/_world/faults", timeout=5).json()["rules"]
    assert [r["remaining"] for r in rules] == [0, 0]
    # /_world/ itself is never faulted, and DELETE disarms everything.
    _post(tiny, "/_world/faults", {"path_prefix": "/", "status": 500, "times": 100})
    assert requests.get(f"{tiny.url}/_world/health", timeout=5).status_code == 200
    assert requests.get(f"{tiny.url}/robots.txt", timeout=5).status_code == 500
    requests.delete(f"{tiny.url}/_world/faults", timeout=5)
    assert requests.get(f"{tiny.url}/robots.txt", timeout=5).status_code == 200


def test_fault_delays_and_dropped_connections(tiny: WorldServer) -> None:
    _post(tiny, "/_world/faults", {"rules": [{"path_prefix": "/robots.txt", "delay_s": 0.3}]})
    started = time.monotonic()
    slow = requests.get(f"{tiny.url}/robots.txt", timeout=5)
    assert slow.status_code == 200 and time.monotonic() - started >= 0.3
    with pytest.raises(requests.exceptions.Timeout):
        _post(tiny, "/_world/faults", {"path_prefix": "/robots.txt", "delay_s": 1.0})
        requests.get(f"{tiny.url}/robots.txt", timeout=0.2)
    _post(tiny, "/_world/faults", {"path_prefix": "/news/", "drop": True})
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{tiny.url}/news/feeds/all.rss", timeout=5)
    assert requests.get(f"{tiny.url}/news/feeds/all.rss", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"status": 503}, "path_prefix"),
        ({"path_prefix": "news"}, "path_prefix"),
        ({"path_prefix": "/x", "status": 999}, "status"),
        ({"path_prefix": "/x", "status": 503, "times": 0}, "times"),
        ({"path_prefix": "/x", "delay_s": 100}, "delay_s"),
        ({"path_prefix": "/x"}, "at least one of"),
        ({"path_prefix": "/x", "status": 503, "colour": "red"}, "colour"),
        ({"path_prefix": "/_world/clock", "status": 503}, "/_world/"),
    ],
)
def test_fault_rules_are_validated(tiny: WorldServer, rule: dict, named: str) -> None:
    response = _post(tiny, "/_world/faults", [rule])
    assert response.status_code == 400
    assert response.json()["error"].startswith("rule 0:") and named in response.json()["error"]
    assert requests.get(f"{tiny.url}/_world/faults", timeout=5).json()["rules"] == []


def test_request_log_records_what_crawlers_did(tiny: WorldServer) -> None:
    requests.get(f"{tiny.url}/robots.txt", headers={"User-Agent": "FreshLMBot/1"}, timeout=5)
    log = requests.get(f"{tiny.url}/_world/requests", timeout=5).json()
    assert [(e["method"], e["path"], e["status"], e["user_agent"]) for e in log] == [
        ("GET", "/robots.txt", 200, "FreshLMBot/1")
    ]


def test_cli_serves_and_logs_one_line_per_request() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--start",
            "day:1",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            url = match.group(1) if match else None
        assert url, "the server did not say where it listens"
        assert (
            requests.get(f"{url}/_world/clock", timeout=5).json()["now"] == "2026-11-03T00:00:00Z"
        )
        while "GET /_world/clock 200" not in process.stderr.readline():
            pass
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_cli_rejects_a_bad_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--port", "0", "--start", "someday"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "'someday'" in result.stderr
