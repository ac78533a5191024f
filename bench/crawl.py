"""Crawl throughput: FreshLM's full news spider (pipelines included) vs a bare Scrapy spider.

Both fetch the same pages from the same sandbox world server (a separate process) in the same
run, with politeness delays off and the same concurrency; the bare spider does nothing with
a response. The figure is full/bare pages per second: how much FreshLM's parsing, article
extraction, validation and shard writing cost on top of Scrapy's own fetching.

    .venv/bin/python bench/crawl.py [--rounds 3] [--concurrency 8]

Each crawl runs in its own process (Scrapy's reactor cannot restart); rounds alternate the
order, and the medians are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import describe  # noqa: E402

FEEDS = [
    "/news/feeds/all.rss",
    "/news/feeds/tech.rss",
    "/news/feeds/business.atom",
    "/news/feeds/local.rss",
    "/news/feeds/culture.atom",
]
# Every article the world has published by the end of day 4, archive included.
WINDOW = ("2000-01-01T00:00:00Z", "2026-11-06T00:00:00Z")


def _no_delay_settings(concurrency: int) -> dict:
    return {
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "LOG_LEVEL": "WARNING",
        "ROBOTSTXT_OBEY": True,
        # The world runs on loopback, which the address guard refuses unless allowed.
        "FRESHLM_CRAWL_ALLOW_PRIVATE": "127.0.0.1",
    }


def _parse_window():
    from freshlm.records import parse_utc

    return parse_utc("start", WINDOW[0]), parse_utc("end", WINDOW[1])


def run_full(world: str, concurrency: int) -> dict:
    from crawlers.run import run_spider
    from crawlers.sources import Politeness, Source

    source = Source(
        name="bench-news",
        spider="news",
        args={"feeds": [world + f for f in FEEDS]},
        politeness=Politeness(
            download_delay_s=0, concurrency_per_domain=concurrency, autothrottle=False
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        _, stats = run_spider(
            source, _parse_window(), {}, Path(tmp), _no_delay_settings(concurrency)
        )
        shard_bytes = sum(p.stat().st_size for p in Path(tmp).iterdir())
    return _figures(stats) | {
        "records": int(stats.get("freshlm/records_valid", 0)),
        "shard_bytes": shard_bytes,
    }


def run_bare(urls: list[str], concurrency: int) -> dict:
    """Fetch ``urls`` with a spider that parses nothing and yields nothing."""
    import scrapy
    from scrapy.crawler import CrawlerProcess

    class BareSpider(scrapy.Spider):
        name = "bare"

        async def start(self):
            for url in urls:
                yield scrapy.Request(url, callback=self.parse, dont_filter=True)

        def parse(self, response):
            return None

    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawlers.settings")
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    settings.set("ITEM_PIPELINES", {}, priority="cmdline")
    settings.setdict(_no_delay_settings(concurrency), priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler)
    process.start()
    return _figures(crawler.stats.get_stats())


def _figures(stats: dict) -> dict:
    pages = int(stats.get("downloader/response_count", 0))
    elapsed = (stats["finish_time"] - stats["start_time"]).total_seconds()
    return {"pages": pages, "seconds": round(elapsed, 3), "pages_per_s": round(pages / elapsed, 1)}


def _world_json(world: str, path: str, method: str = "GET") -> object:
    req = urllib.request.Request(world + path, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def _child(mode: str, world: str, concurrency: int, urls_file: Path | None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--world",
        world,
        "--concurrency",
        str(concurrency),
    ]
    if urls_file:
        cmd += ["--urls", str(urls_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{mode} crawl failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("BENCH "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--child", choices=["full", "bare"])
    parser.add_argument("--world")
    parser.add_argument("--urls", type=Path)
    args = parser.parse_args()

    if args.child == "full":
        print("BENCH " + json.dumps(run_full(args.world, args.concurrency)))
        return 0
    if args.child == "bare":
        urls = args.urls.read_text().split()
        print("BENCH " + json.dumps(run_bare(urls, args.concurrency)))
        return 0

    from freshlm.airflow_local import free_port

    port = free_port()
    world_url = f"http://127.0.0.1:{port}"
    world = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(port),
            "--start",
            "day:4",
            "--rate-limit",
            "1000000",
            "--crawl-delay",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                _world_json(world_url, "/_world/health")
                break
            except OSError:
                time.sleep(0.1)
        full, bare = [], []
        with tempfile.TemporaryDirectory() as tmp:
            urls_file = Path(tmp) / "urls.txt"
            # The first full crawl also tells which pages it fetched: the bare crawl's list.
            _world_json(world_url, "/_world/requests", "DELETE")
            full.append(_child("full", world_url, args.concurrency, None))
            urls_file.write_text(
                "\n".join(
                    world_url + r["path"]
                    for r in _world_json(world_url, "/_world/requests")
                    if r["status"] == 200 and r["path"] != "/robots.txt"
                )
            )
            # Then alternate, so neither side always runs on a warmer machine.
            for round_no in range(args.rounds * 2 - 1):
                if round_no % 2 == 0:
                    bare.append(_child("bare", world_url, args.concurrency, urls_file))
                else:
                    full.append(_child("full", world_url, args.concurrency, None))
    finally:
        world.terminate()
        world.wait(10)

    full_pps = statistics.median(r["pages_per_s"] for r in full)
    bare_pps = statistics.median(r["pages_per_s"] for r in bare)
    print(f"machine: {describe()}")
    print(
        f"world: sandbox world at day 4, news site, {len(FEEDS)} feeds, concurrency "
        f"{args.concurrency}, delays off"
    )
    for name, runs in (
        ("full (FreshLM news spider + pipelines)", full),
        ("bare Scrapy spider", bare),
    ):
        for r in runs:
            print(
                f"  {name:40s} pages={r['pages']:4d} seconds={r['seconds']:6.2f} "
                f"pages/s={r['pages_per_s']:7.1f}"
                + (f" records={r['records']}" if "records" in r else "")
            )
    print(f"median pages/s: full {full_pps:.1f}, bare {bare_pps:.1f}")
    print(f"ratio full/bare: {full_pps / bare_pps:.2f}  (goal >= 0.90)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
