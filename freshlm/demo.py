"""``make demo``: the embedded FreshLM on one machine, with no environment needed.

Brings up the sandbox world (news site, Mastodon, arXiv API and Slack sink on one port) and a
real local Airflow (API server, scheduler, DAG processor, triggerer; LocalExecutor; SQLite)
with FreshLM's DAGs, runs the pre-flight DAG to show the wiring works, prints where the UI is
and the login, then keeps serving until Ctrl-C.

Everything is written under ``FRESHLM_HOME`` (default ``./.freshlm``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time

from freshlm.airflow_client import AirflowClient
from freshlm.airflow_local import AirflowStartError, LocalAirflow
from freshlm.alerts.embedded import sink_connection_env
from freshlm.settings import Settings, SettingsError

log = logging.getLogger("freshlm.demo")


class DemoError(RuntimeError):
    """The demo cannot start; the message says what to do."""


def _require_free(host: str, port: int, what: str, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex((host, port)) == 0:
            raise DemoError(
                f"port {port} on {host} is already in use, so the {what} cannot start there; "
                f"stop whatever listens on it or set {variable} to a free port"
            )


def _banner(settings: Settings, airflow: LocalAirflow, world_url: str, took_s: float) -> str:
    return "\n".join(
        [
            "",
            "=" * 72,
            "FreshLM embedded demo is up",
            f"  Airflow UI       {airflow.base_url}",
            f"  login            {airflow.username} / {airflow.password}",
            f"  sandbox world    {world_url}  (clock: {world_url}/_world/clock,"
            f" Slack sink: {world_url}/_world/slack/messages)",
            f"  FRESHLM_HOME     {settings.home}",
            '  try a night      move the world clock (POST /_world/clock {"now": "day:1"}),'
            " then trigger freshlm_crawl with",
            "                   window_start 2026-11-02T00:00:00Z, window_end"
            " 2026-11-03T00:00:00Z; freshlm_curate follows",
            f"  component logs   {airflow.logs_dir}",
            f"  started in       {took_s:.1f}s",
            "Press Ctrl-C to stop.",
            "=" * 72,
        ]
    )


def run_preflight(client: AirflowClient, timeout_s: float = 300.0) -> dict[str, str | None]:
    """Trigger ``freshlm_preflight`` and wait for it; returns the task states."""
    client.wait_for_dags(["freshlm_preflight"])
    client.unpause("freshlm_preflight")
    run = client.trigger("freshlm_preflight", run_id=f"demo__preflight__{int(time.time())}")
    final = client.wait_for_run("freshlm_preflight", run["dag_run_id"], timeout_s=timeout_s)
    states = client.task_states("freshlm_preflight", run["dag_run_id"])
    log.info("pre-flight %s: %s", final["state"], states)
    return states


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m freshlm.demo", description=__doc__)
    parser.add_argument(
        "--exit-when-ready",
        action="store_true",
        help="stop everything after the banner and the pre-flight run (for smoke tests)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    started = time.monotonic()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"freshlm demo: configuration error: {exc}", file=sys.stderr)
        return 2

    from freshlm.world.server import WorldServer  # the world loads its scenario on import

    world = None
    env = settings.as_env()
    # The sandbox world's clock only moves when told, so a cron run for today's real date
    # would crawl it out of order: nights are triggered with explicit windows instead.
    if "FRESHLM_CRAWL_SCHEDULE" not in os.environ:
        env["FRESHLM_CRAWL_SCHEDULE"] = "none"
    # Alerts go to the world's Slack sink through the real provider hook.
    env.update(sink_connection_env(settings.slack_conn_id, settings.world_url))
    airflow = LocalAirflow(
        settings.airflow_home,
        settings.airflow_port,
        parallelism=settings.airflow_parallelism,
        extra_env=env,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        _require_free(
            settings.world_host, settings.world_port, "sandbox world", "FRESHLM_WORLD_PORT"
        )
        _require_free(
            "127.0.0.1", settings.airflow_port, "Airflow API server", "FRESHLM_AIRFLOW_PORT"
        )
        world = WorldServer(host=settings.world_host, port=settings.world_port)
        world.start()
        log.info("sandbox world serving at %s (world time %s)", world.url, world.clock.now())
        airflow.start()
        airflow.wait_ready()
        client = AirflowClient(airflow.base_url, airflow.username, airflow.password)
        states = run_preflight(client)
        print(_banner(settings, airflow, world.url, time.monotonic() - started), flush=True)
        failed = [t for t, s in states.items() if s != "success"]
        if failed:
            print(f"pre-flight tasks not successful: {failed}; see the task logs in the UI")
            if args.exit_when_ready:
                return 1
        if not args.exit_when_ready:
            while not stop.wait(1.0):
                pass
        return 0
    except (DemoError, AirflowStartError) as exc:
        print(f"freshlm demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        log.info("stopping Airflow and the sandbox world")
        airflow.stop()
        if world is not None:
            world.stop()


if __name__ == "__main__":
    raise SystemExit(main())
