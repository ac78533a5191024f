"""``make demo``: the embedded FreshLM on one machine, with no environment needed.

Brings up the sandbox world (news site, Mastodon, arXiv API and Slack sink on one port) and a
real local Airflow (API server, scheduler, DAG processor, triggerer; LocalExecutor; SQLite)
with FreshLM's DAGs, prints where the UI is and the login, and runs the main job: three
simulated nights of the whole loop (night 1 good data, night 2 the bad batch, night 3 good
again), bootstrapping the base model meanwhile, then prints the scoreboard and exits
(``--serve`` keeps the UI up afterwards; ``--up-only`` only brings everything up, with the
pre-flight run, and serves until Ctrl-C).

Everything is written under ``FRESHLM_HOME`` (default ``./.freshlm``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from freshlm.airflow_client import AirflowClient
from freshlm.airflow_local import AirflowStartError, LocalAirflow
from freshlm.alerts.embedded import sink_connection_env
from freshlm.settings import Settings, SettingsError

log = logging.getLogger("sandbox.demo")


class DemoError(RuntimeError):
    """The demo cannot start; the message says what to do."""


def _require_free(host: str, port: int, what: str, variable: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex((host, port)) == 0:
            raise DemoError(
                f"port {port} on {host} is already in use, so the {what} cannot start there; "
                f"stop whatever listens on it or set {variable} to a free port"
            )


def _banner(
    settings: Settings, airflow: LocalAirflow, world_url: str, took_s: float, main_job: bool
) -> str:
    then = (
        "Now running three nights of the whole loop (crawl, curate, train, evaluate)."
        if main_job
        else "Press Ctrl-C to stop."
    )
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
            then,
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


def _fresh_home(home: Path) -> Path | None:
    """Each demo starts from an empty ``FRESHLM_HOME`` (a second night 1 would find its
    documents already published and deduplicate them all away); the last run's home is kept
    beside it as ``<home>.previous``."""
    if not home.exists() or not any(home.iterdir()):
        return None
    previous = home.with_name(home.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    home.rename(previous)
    return previous


def _bootstrap_in_background(settings: Settings) -> tuple[threading.Thread, dict[str, Any]]:
    """Publish the archive as the base corpus and bring up the configured base model
    (``FRESHLM_BASE_MODEL``) while Airflow starts and the first night crawls."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            from freshlm.store import open_store
            from sandbox.base_model import demo_base

            result["summary"] = demo_base(open_store(settings.store_uri), settings.base_model)
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    thread = threading.Thread(target=work, name="bootstrap", daemon=True)
    thread.start()
    return thread, result


def _print_night(night: Any) -> None:
    print(
        f"night {night.number}: {night.crawled} crawled, {night.kept} kept, "
        f"{night.quarantined} quarantined, gate {night.gate}; {night.decision} "
        f"({night.seconds:.0f}s)",
        flush=True,
    )


def run_main_job(
    settings: Settings, client: AirflowClient, world_url: str, bootstrap: Any, started: float
) -> int:
    """Three nights of the whole loop, then the scoreboard and the fact questions."""
    from freshlm.registry import PRODUCTION, read_alias
    from freshlm.store import open_store
    from sandbox import demo_nights, demo_serving
    from sandbox.scenario import load_scenario

    thread, result = bootstrap
    days = load_scenario().days
    store = open_store(settings.store_uri)
    demo_nights.prepare_airflow(client, hold=[demo_nights.TRAIN])
    serving = demo_serving.start(settings, client, world_url)
    nights = []
    for number in (1, 2, 3):
        if number == 1:
            # Night 1 crawls and curates while the base model finishes; training needs it.
            night_runner = demo_nights.start_night(client, world_url, number, days[0].date)
            thread.join()
            if "error" in result:
                raise DemoError(f"bootstrapping the base model failed: {result['error']}")
            base = result["summary"]["version_id"]
            log.info("base model %s is production; training may start", base)
            serving.ask(number, "before")
            demo_nights.release(client, demo_nights.TRAIN, "freshlm://datasets")
            night = night_runner.finish()
        else:
            serving.ask(number, "before")
            night = demo_nights.run_night(client, world_url, number, days[number - 1].date)
        nights.append(night)
        _print_night(night)
        serving.ask(number, "after")

    production = read_alias(store, PRODUCTION)
    facts = demo_nights.fact_answers(
        store,
        world_url,
        {"before night 1": base, "after night 3": production.version_id},
        work_dir=settings.home / "work" / "evaluation",
    )
    print(demo_nights.final_report(nights, facts, settings, time.monotonic() - started))
    print(serving.report())
    return 0 if demo_nights.story_holds(nights) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--up-only",
        action="store_true",
        help="only bring up the world and Airflow (and the pre-flight run), then serve until "
        "Ctrl-C; run nights by hand from the UI",
    )
    mode.add_argument(
        "--exit-when-ready",
        action="store_true",
        help="stop everything after the banner and the pre-flight run (for smoke tests)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="after the three nights, keep the UI and the world up until Ctrl-C",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    main_job = not (args.up_only or args.exit_when_ready)

    started = time.monotonic()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"freshlm demo: configuration error: {exc}", file=sys.stderr)
        return 2

    from sandbox.server import WorldServer  # the world loads its scenario on import

    world = None
    airflow = None

    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        _require_free(
            settings.world_host, settings.world_port, "sandbox world", "FRESHLM_WORLD_PORT"
        )
        _require_free(
            "127.0.0.1", settings.airflow_port, "Airflow API server", "FRESHLM_AIRFLOW_PORT"
        )
        if main_job:
            previous = _fresh_home(settings.home)
            if previous is not None:
                log.info("the last demo's FRESHLM_HOME was moved to %s", previous)
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
        world = WorldServer(host=settings.world_host, port=settings.world_port)
        world.start()
        log.info("sandbox world serving at %s (world time %s)", world.url, world.clock.now())
        if main_job:
            # Every request the crawlers make would scroll the scoreboard's story away.
            logging.getLogger("sandbox").setLevel(logging.WARNING)
        bootstrap = _bootstrap_in_background(settings) if main_job else None
        airflow.start()
        airflow.wait_ready()
        client = AirflowClient(airflow.base_url, airflow.username, airflow.password)
        failed: list[str] = []
        if not main_job:
            states = run_preflight(client)
            failed = [t for t, s in states.items() if s != "success"]
        print(
            _banner(settings, airflow, world.url, time.monotonic() - started, main_job),
            flush=True,
        )
        if failed:
            print(f"pre-flight tasks not successful: {failed}; see the task logs in the UI")
            if args.exit_when_ready:
                return 1
        code = 0
        if main_job:
            code = run_main_job(settings, client, world.url, bootstrap, started)
        if args.up_only or args.serve:
            print("Serving until Ctrl-C.", flush=True)
            while True:
                time.sleep(1.0)
        return code
    except (DemoError, AirflowStartError) as exc:
        print(f"freshlm demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        log.info("stopping Airflow and the sandbox world")
        if airflow is not None:
            airflow.stop()
        if world is not None:
            world.stop()


if __name__ == "__main__":
    raise SystemExit(main())
