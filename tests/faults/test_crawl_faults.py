"""Crawl faults with real processes on loopback: SIGTERMed, past its time, and hung crawls.

Each runs ``python -m crawlers.run`` for real against a scripted news site on loopback and checks
what an operator would see: nothing half-published, the cursor unchanged, the retry fetching the
whole window, and no process of the crawl left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from crawlers.launch import CrawlFailed, crawl_in_subprocess
from crawlers.run import cursor_key, shard_prefix
from freshlm.records import parse_utc
from freshlm.store import open_store
from tests.crawlers.loopback_http import LoopbackServer

REPO = Path(__file__).resolve().parents[2]
WINDOW = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
ARTICLES = 6
PAGE = (
    "<html><body><article><h1>Story {i}</h1><p>The Tessford harbour board met on Monday and "
    "agreed item {i} of the winter ferry plan after a long and careful debate.</p>"
    "<p>Residents can read the full minutes at the library.</p></article></body></html>"
)


def feed(site: str) -> str:
    items = "".join(
        f"<item><title>Story {i}</title><link>{site}/a{i}</link><guid>a{i}</guid>"
        f"<pubDate>Mon, 02 Nov 2026 {8 + i:02d}:00:00 GMT</pubDate></item>"
        for i in range(ARTICLES)
    )
    channel = f"<channel><title>t</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


class NewsSite(LoopbackServer):
    """The feed and its articles; each article answers after ``delay_s`` (a slow server)."""

    def __init__(self) -> None:
        super().__init__()
        self.delay_s = 0.0
        self.routes["/feed.rss"] = lambda *_: (200, {}, feed(self.url))
        for i in range(ARTICLES):
            self.routes[f"/a{i}"] = self._article(i)

    def _article(self, i: int):
        def answer(*_):
            time.sleep(self.delay_s)
            return 200, {"Content-Type": "text/html"}, PAGE.format(i=i)

        return answer


@pytest.fixture
def site():
    with NewsSite() as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, site: NewsSite, monkeypatch) -> dict[str, str]:
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n"
        "  - name: slow-news\n"
        "    spider: news\n"
        f"    args: {{feeds: ['{site.url}/feed.rss']}}\n"
        "    politeness: {download_delay_s: 0, autothrottle: false, timeout_s: 300}\n"
    )
    values = {
        "FRESHLM_HOME": str(tmp_path / "home"),
        "FRESHLM_SOURCES_FILE": str(sources),
        "FRESHLM_CRAWL_ALLOW_PRIVATE": f"127.0.0.1:{site.port}",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


def store_of(env: dict[str, str]):
    return open_store((Path(env["FRESHLM_HOME"]) / "store").as_uri())


def prefix() -> str:
    return shard_prefix("slow-news", parse_utc("s", WINDOW["start"]), parse_utc("e", WINDOW["end"]))


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose command line carries ``marker`` (the run id)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def run_crawl(env: dict[str, str], run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "crawlers.run", "--source", "slow-news"),
            *("--window-start", WINDOW["start"], "--window-end", WINDOW["end"]),
            *("--run-id", run_id),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def summary_of(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("FRESHLM-SHARD ")]
    return json.loads(lines[-1].removeprefix("FRESHLM-SHARD "))


def test_a_sigtermed_crawl_publishes_nothing_and_the_retry_fetches_everything(site, env):
    site.delay_s = 1.0
    proc = run_crawl(env, "sigterm-run")
    deadline = time.monotonic() + 60
    while "/a0" not in site.paths() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "/a0" in site.paths(), "the crawl never reached the articles"
    proc.send_signal(signal.SIGTERM)  # what a worker does to a task it stops
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 4, stderr[-2000:]
    assert "ended early (shutdown); nothing was published" in stderr
    store = store_of(env)
    assert store.read_manifest(prefix()) is None
    assert not store.exists(cursor_key("slow-news"))

    site.delay_s = 0.0
    retry = run_crawl(env, "sigterm-retry")
    stdout, stderr = retry.communicate(timeout=120)
    assert retry.returncode == 0, stderr[-2000:]
    summary = summary_of(stdout)
    assert summary["already_published"] is False
    assert summary["records"] == ARTICLES
    assert store.read_manifest(prefix(), verify=True).fields["records"] == ARTICLES


def test_a_crawl_past_its_time_closes_itself_and_publishes_nothing(site, env, monkeypatch):
    site.delay_s = 4.0
    monkeypatch.setenv("FRESHLM_CRAWL_TIMEOUT_S", "2")
    with pytest.raises(CrawlFailed) as failed:
        crawl_in_subprocess("slow-news", WINDOW, "closes-itself", timeout_s=60)
    assert "ended early (closespider_timeout); nothing was published" in str(failed.value)
    assert store_of(env).read_manifest(prefix()) is None


def test_a_hung_crawl_is_killed_with_every_process_it_started(site, env, monkeypatch):
    site.routes["/feed.rss"] = lambda *_: (time.sleep(90), (200, {}, ""))[1]  # never answers
    monkeypatch.setenv("FRESHLM_CRAWL_TIMEOUT_S", "2")
    marker = f"hung-{uuid.uuid4().hex}"
    outcome: dict[str, BaseException] = {}

    def task() -> None:
        try:
            crawl_in_subprocess("slow-news", WINDOW, marker, timeout_s=6)
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    started = time.monotonic()
    worker = threading.Thread(target=task, daemon=True)
    worker.start()
    worker.join(timeout=40)
    assert not worker.is_alive(), "crawl_in_subprocess did not return after its timeout"
    assert time.monotonic() - started < 30
    assert isinstance(outcome.get("error"), CrawlFailed)
    assert "timed out" in str(outcome["error"]) and "killed" in str(outcome["error"])
    assert processes_with(marker) == []
    assert store_of(env).read_manifest(prefix()) is None


def test_the_next_crawl_removes_the_staging_folder_a_killed_crawl_left(
    site, env, monkeypatch, tmp_path
):
    worker_tmp = tmp_path / "worker-tmp"  # the worker's temp dir, as the crawls see it
    worker_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(worker_tmp))
    answers = site.routes["/feed.rss"]
    site.routes["/feed.rss"] = lambda *_: (time.sleep(90), (200, {}, ""))[1]  # never answers
    monkeypatch.setenv("FRESHLM_CRAWL_TIMEOUT_S", "2")
    with pytest.raises(CrawlFailed, match="killed"):
        crawl_in_subprocess("slow-news", WINDOW, f"killed-{uuid.uuid4().hex}", timeout_s=6)
    [left] = worker_tmp.glob("freshlm-crawl-slow-news-*")  # SIGKILL: no cleanup ran

    site.routes["/feed.rss"] = answers
    monkeypatch.setenv("FRESHLM_CRAWL_TIMEOUT_S", "120")
    summary = crawl_in_subprocess("slow-news", WINDOW, "after-the-kill", timeout_s=120)

    assert summary["records"] == ARTICLES
    assert not left.exists()
    assert list(worker_tmp.iterdir()) == []  # its own folder went too
