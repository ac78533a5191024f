"""Run the sandbox world server: ``python -m sandbox`` (or ``freshlm-world``).

Serves the packaged scenario (or ``--scenario DIR``) on ``--host``/``--port`` (defaults:
``FRESHLM_WORLD_HOST``/``FRESHLM_WORLD_PORT`` from :mod:`freshlm.settings`), logs what it
serves and one line per request, and runs until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sandbox.mastodon_api import RateLimit

log = logging.getLogger("sandbox")


def _build_parser(host: str, port: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="freshlm-world",
        description="Serve the FreshLM sandbox world (news site, Mastodon, arXiv, Slack sink).",
    )
    parser.add_argument("--host", default=host, help=f"interface to bind (default {host})")
    parser.add_argument("--port", type=int, default=port, help=f"port, 0 for any (default {port})")
    parser.add_argument(
        "--start",
        help="initial world time: ISO timestamp with zone, a date, day:N or day:N@HH:MM "
        "(default: the scenario's start)",
    )
    parser.add_argument("--scenario", help="scenario folder (default: the packaged one)")
    parser.add_argument("--public-url", help="base URL for links in responses (default: bound)")
    parser.add_argument(
        "--rate-limit", type=int, default=300, help="Mastodon requests per client per period"
    )
    parser.add_argument(
        "--rate-period", type=float, default=300.0, help="Mastodon rate-limit period, seconds"
    )
    parser.add_argument(
        "--crawl-delay", type=float, default=1.0, help="Crawl-delay robots.txt asks for, seconds"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the server and block until SIGINT/SIGTERM. Returns an exit code."""
    from freshlm.settings import get_settings

    settings = get_settings()
    args = _build_parser(settings.world_host, settings.world_port).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    # Heavy-ish imports after argument parsing, so --help is instant.
    from sandbox.scenario import ScenarioError, load_scenario
    from sandbox.server import WorldServer

    try:
        scenario = load_scenario(args.scenario)
        rate_limit = RateLimit(args.rate_limit, args.rate_period)
        server = WorldServer(
            scenario,
            host=args.host,
            port=args.port,
            start=args.start,
            public_url=args.public_url,
            rate_limit=rate_limit,
            crawl_delay=args.crawl_delay,
        )
    except (ScenarioError, ValueError) as exc:
        print(f"freshlm-world: {exc}", file=sys.stderr)
        return 2
    try:
        server.start()
    except OSError as exc:
        print(f"freshlm-world: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2

    base = server.public_url
    log.info(
        "serving scenario %r on %s (world time %s)",
        scenario.name,
        server.url,
        server.clock.now().isoformat(),
    )
    for feed in scenario.feeds:
        log.info("  news feed    %s%s (%s)", base, feed.path, feed.format)
    log.info("  news pages   %s/  %s/robots.txt", base, base)
    log.info("  mastodon     %s/api/v1/timelines/public  %s/api/v1/timelines/tag/<tag>", base, base)
    log.info("  arxiv        %s/api/query?search_query=cat:cs.CL", base)
    log.info("  slack        %s/api/chat.postMessage  %s/services/T../B../..", base, base)
    log.info("  control      %s/_world/health  /_world/clock  /_world/probes  /_world/faults", base)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    log.info("stopping")
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
