"""The demo's main job: simulated nights of the whole loop against the sandbox world.

Each night moves the world clock to the end of a scenario day and triggers ``freshlm_crawl`` for
that day's window; everything after it is the DAGs' own scheduling on Assets:
``freshlm_crawl`` → ``freshlm://raw/batch`` → ``freshlm_curate`` → ``freshlm://datasets`` →
``freshlm_train`` → ``freshlm://models/candidates`` → ``freshlm_evaluate``. This module only
waits for those runs and reads what they recorded (XComs, the store, the Slack sink) into a
:class:`Night` for the scoreboard.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests

from freshlm.airflow_client import AirflowAPIError, AirflowClient
from freshlm.promotion.rules import load_rules

log = logging.getLogger("sandbox.demo")

CRAWL, CURATE, TRAIN, EVALUATE = (
    "freshlm_crawl",
    "freshlm_curate",
    "freshlm_train",
    "freshlm_evaluate",
)
LOOP_DAGS = (CRAWL, CURATE, TRAIN, EVALUATE)
#: A refused batch publishes nothing, so no training run follows; this long without one (after
#: curation finished) confirms it.
NO_RUN_GRACE_S = 20.0


@dataclasses.dataclass
class Night:
    """What one night did, as the scoreboard shows it."""

    number: int
    window: dict[str, str]
    crawled: int = 0
    crawl_quarantined: int = 0
    kept: int = 0
    dropped: int = 0
    gate: str = "-"
    gate_passed: bool | None = None
    dataset_id: str | None = None
    candidate: str | None = None
    production_before: str | None = None
    candidate_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    production_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The report's ``controls`` (the new facts asked under another fact's question).
    controls: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Device-hours and kWh of the night's training and evaluation runs (freshlm.footprint).
    cost: dict[str, float] = dataclasses.field(default_factory=dict)
    #: The training run's throughput over its ranks, as it published it in its metrics.
    train_tokens_per_s: float | None = None
    decision: str = "-"
    reasons: list[str] = dataclasses.field(default_factory=list)
    report_uri: str | None = None
    slack: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    runs: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def quarantined(self) -> int:
        """Records set aside before the gate: dropped by curation (spam, duplicates, PII...)
        plus those the crawler quarantined (malformed items). ``crawled = kept + quarantined``;
        a batch the gate refuses is not trained on, kept documents included (the decision
        column says so)."""
        return self.dropped + self.crawl_quarantined


def day_window(day: date) -> dict[str, str]:
    end = day + timedelta(days=1)
    return {"start": f"{day:%Y-%m-%d}T00:00:00Z", "end": f"{end:%Y-%m-%d}T00:00:00Z"}


def _run_ids(client: AirflowClient, dag_id: str) -> set[str]:
    runs = client.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 200})["dag_runs"]
    return {r["dag_run_id"] for r in runs}


def _next_run(client: AirflowClient, dag_id: str, seen: set[str], timeout_s: float) -> str | None:
    """The first run of ``dag_id`` not in ``seen`` (None if none starts within the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = sorted(_run_ids(client, dag_id) - seen)
        if new:
            return new[0]
        time.sleep(1.0)
    return None


def _xcom(client: AirflowClient, dag_id: str, run_id: str, task_id: str) -> Any:
    try:
        return client.xcom(dag_id, run_id, task_id)
    except AirflowAPIError:
        return None


def _slack_messages(world_url: str) -> list[dict[str, Any]]:
    return requests.get(f"{world_url}/_world/slack/messages", timeout=10).json()


def prepare_airflow(client: AirflowClient, *, hold: list[str] | tuple[str, ...] = ()) -> None:
    """Unpause the loop's DAGs (they are created paused) once they are parsed; those in
    ``hold`` stay paused (their Asset events queue until they are unpaused)."""
    client.wait_for_dags(list(LOOP_DAGS))
    for dag_id in LOOP_DAGS:
        if dag_id not in hold:
            client.unpause(dag_id)


def release(client: AirflowClient, dag_id: str, asset_uri: str) -> int:
    """Unpause ``dag_id`` and announce again each ``asset_uri`` event that started no run
    while it was paused (Airflow queues no run for a paused DAG; the next run would only fold
    the event in, and none may come); returns how many. Training reads each dataset once
    however many events name it."""
    unpaused_at = datetime.now(UTC)
    client.unpause(dag_id)
    # Only events from before the unpause: a later one may just not be processed yet.
    missed = [
        e
        for e in client.asset_events(asset_uri)
        if not e.get("created_dagruns")
        and datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) < unpaused_at
    ]
    for event in missed:
        client.create_asset_event(asset_uri, dict(event.get("extra") or {}))
    return len(missed)


class NightRun:
    """One night: constructing it moves the clock and triggers the crawl; :meth:`finish` waits
    for the Asset-scheduled runs that follow and returns the :class:`Night`."""

    def __init__(
        self,
        client: AirflowClient,
        world_url: str,
        number: int,
        day: date,
        *,
        run_timeout_s: float = 900.0,
    ) -> None:
        self.client, self.world_url, self.timeout = client, world_url, run_timeout_s
        self.started = time.monotonic()
        self.night = Night(number=number, window=day_window(day))
        self.seen = {dag_id: _run_ids(client, dag_id) for dag_id in (CURATE, TRAIN, EVALUATE)}
        self.slack_before = len(_slack_messages(world_url))
        requests.post(
            f"{world_url}/_world/clock", json={"now": f"day:{number}"}, timeout=10
        ).raise_for_status()
        self.crawl_run = f"demo__night{number}__{int(time.time())}"
        window = self.night.window
        client.trigger(
            CRAWL,
            conf={"window_start": window["start"], "window_end": window["end"]},
            run_id=self.crawl_run,
        )
        log.info("night %d: crawling %s .. %s", number, window["start"], window["end"])

    def _wait(self, dag_id: str, after: str) -> tuple[str, dict[str, Any]]:
        run_id = _next_run(self.client, dag_id, self.seen[dag_id], self.timeout)
        if run_id is None:
            raise RuntimeError(f"night {self.night.number}: no {dag_id} run followed {after}")
        final = self.client.wait_for_run(dag_id, run_id, timeout_s=self.timeout)
        self.night.runs[dag_id] = f"{run_id} ({final['state']})"
        return run_id, final

    def _done(self, decision: str | None = None) -> Night:
        if decision is not None:
            self.night.decision = decision
        self.night.slack = _slack_messages(self.world_url)[self.slack_before :]
        self.night.seconds = time.monotonic() - self.started
        return self.night

    def finish(self) -> Night:
        client, night = self.client, self.night
        crawled = client.wait_for_run(CRAWL, self.crawl_run, timeout_s=self.timeout)
        night.runs[CRAWL] = f"{self.crawl_run} ({crawled['state']})"
        batch = _xcom(client, CRAWL, self.crawl_run, "announce_batch") or {}
        if not batch:
            raise RuntimeError(f"night {night.number}: the crawl announced no batch")
        night.crawl_quarantined = int(batch.get("quarantined") or 0)
        # Every item the crawler fetched: good records plus the malformed ones it quarantined.
        night.crawled = int(batch.get("records") or 0) + night.crawl_quarantined

        curate_run, _ = self._wait(CURATE, "the crawl")
        candidate = _xcom(client, CURATE, curate_run, "curate_batch") or {}
        gate = _xcom(client, CURATE, curate_run, "gate_batch") or {}
        night.kept = int(candidate.get("kept") or 0)
        night.dropped = int(candidate.get("dropped") or 0)
        night.gate = str(gate.get("severity") or "-")
        night.gate_passed = gate.get("passed")
        published = _xcom(client, CURATE, curate_run, "publish_dataset")
        if not published:
            # Nothing was published, so nothing may be trained: confirm no training starts.
            stray = _next_run(client, TRAIN, self.seen[TRAIN], NO_RUN_GRACE_S)
            if stray is not None:
                return self._done(f"UNEXPECTED: training run {stray} started")
            return self._done("not trained (batch quarantined)")
        night.dataset_id = published["dataset_id"]

        train_run, trained = self._wait(TRAIN, "the published dataset")
        if trained["state"] != "success":
            return self._done("training failed")
        announced = _xcom(client, TRAIN, train_run, "announce_candidate") or {}
        night.candidate = announced.get("version_id")
        night.production_before = announced.get("baseline_version")

        eval_run, evaluated = self._wait(EVALUATE, "the candidate")
        report = _xcom(client, EVALUATE, eval_run, "evaluate") or {}
        decision = _xcom(client, EVALUATE, eval_run, "decide") or {}
        night.candidate_metrics = dict((report.get("candidate") or {}).get("metrics") or {})
        night.production_metrics = dict((report.get("baseline") or {}).get("metrics") or {})
        night.report_uri = report.get("uri")
        night.controls = dict(report.get("controls") or {})
        trained_version = _xcom(client, TRAIN, train_run, "train_local") or {}
        night.train_tokens_per_s = (trained_version.get("metrics") or {}).get("tokens_per_second")
        for run in (trained_version, report):
            for key, value in (run.get("footprint") or {}).items():
                if key in ("device_hours", "energy_kwh") and isinstance(value, int | float):
                    night.cost[key] = night.cost.get(key, 0.0) + value
        night.reasons = list(decision.get("reasons") or [])
        if client.task_states(EVALUATE, eval_run).get("promote") == "success":
            return self._done("PROMOTED")
        if decision and not decision.get("passed"):
            return self._done("REJECTED")
        return self._done(f"evaluation {evaluated['state']}")


def start_night(
    client: AirflowClient, world_url: str, number: int, day: date, **kwargs: Any
) -> NightRun:
    return NightRun(client, world_url, number, day, **kwargs)


def run_night(
    client: AirflowClient, world_url: str, number: int, day: date, **kwargs: Any
) -> Night:
    """Run night ``number`` (the scenario day ``day``) through the whole loop."""
    return NightRun(client, world_url, number, day, **kwargs).finish()


# --- the scoreboard ----------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _pair(night: Night, key: str, digits: int = 3) -> str:
    if not night.candidate_metrics:
        return "-"
    return (
        f"{_fmt(night.production_metrics.get(key), digits)} -> "
        f"{_fmt(night.candidate_metrics.get(key), digits)}"
    )


def _control_pair(night: Night) -> str:
    """The wrong-question control, production -> candidate: the new facts' choices under
    another fact's question (what familiarity with the answer strings alone scores)."""
    control = night.controls.get("world_new_wrong_question") or {}
    if not control.get("items"):
        return "-"
    return f"{_fmt(control.get('baseline'))} -> {_fmt(control.get('candidate'))}"


def scoreboard(nights: list[Night]) -> str:
    """The per-night table: the data, the gate, production -> candidate, the decision."""
    header = (
        "night",
        "crawled",
        "kept",
        "quarantined",
        "gate",
        "new-knowledge acc",
        "world facts ranked",
        "world facts said",
        "control",
        "retention acc",
        "general said",
        "old-text ppl",
        "cost dev-h / kWh",
        "train tok/s",
        "minutes",
        "decision",
    )
    rows = [header]
    for n in nights:
        rows.append(
            (
                f"{n.number} ({n.window['start'][:10]})",
                str(n.crawled),
                str(n.kept),
                str(n.quarantined),
                n.gate + ("" if n.gate_passed is None else (" pass" if n.gate_passed else " FAIL")),
                _pair(n, "new_knowledge_acc"),
                _pair(n, "world_new_acc"),
                _pair(n, "world_new_said_acc"),
                _control_pair(n),
                _pair(n, "retention_acc"),
                _pair(n, "general_said_acc"),
                _pair(n, "ppl_old", 1),
                (
                    f"{n.cost['device_hours']:.3f} / {n.cost.get('energy_kwh', 0.0):.4f}"
                    if "device_hours" in n.cost
                    else "-"
                ),
                "-" if n.train_tokens_per_s is None else f"{n.train_tokens_per_s:.0f}",
                f"{n.seconds / 60:.1f}",
                n.decision,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def slack_digest(message: dict[str, Any], limit: int = 1200) -> str:
    """A Slack message as plain text for the terminal: its text and its blocks' text."""
    parts = [str(message.get("text") or "")]
    for block in message.get("blocks") or []:
        text = block.get("text")
        if isinstance(text, dict):
            parts.append(str(text.get("text") or ""))
        for field in block.get("fields") or []:
            parts.append(str(field.get("text") or ""))
    out = "\n".join(p for p in parts if p.strip())
    return out if len(out) <= limit else out[: limit - 3] + "..."


# --- the world's fact questions, before and after ----------------------------------------------

#: One fact per assistant persona, from the first and the third night's news.
SHOWN_FACTS = ("pulse-x2-battery", "slang-tide-locked", "route-41-fare")


def fact_answers(
    store: Any,
    world_url: str,
    versions: dict[str, str],
    *,
    keys: tuple[str, ...] = SHOWN_FACTS,
    work_dir: Any,
) -> list[dict[str, Any]]:
    """``[{question, answer, <label>: chosen answer, ...}]``: what each model in ``versions``
    (label → version id) picks among the fact's choices, scored as the evaluation scores."""
    from freshlm.evaluation.evaluate import download_cached
    from freshlm.evaluation.scoring import CausalLMScorer
    from freshlm.evaluation.world_facts import fact_items, fetch_world_probes

    items = {item.doc_id: item for item in fact_items(fetch_world_probes(world_url))}
    chosen_items = [items[k] for k in keys if k in items]
    rows = [
        {
            "key": item.doc_id,
            "question": item.context.removeprefix("Question: ").removesuffix("\nAnswer:"),
            "answer": item.answer,
        }
        for item in chosen_items
    ]
    for label, version in versions.items():
        scorer = CausalLMScorer.from_pretrained(download_cached(store, version, work_dir))
        for row, result in zip(rows, scorer.rank_items(chosen_items), strict=True):
            item = next(i for i in chosen_items if i.doc_id == row["key"])
            row[label] = item.choices[result.chosen]
    return rows


# --- the closing report ------------------------------------------------------------------------

EXPECTED = {1: "PROMOTED", 2: "not trained (batch quarantined)", 3: "PROMOTED"}


#: What the production model should answer of the world's new fact questions after night 3.
WORLD_FACTS_GOAL = 0.8


def _against(value: float | None, goal: float, how: str) -> str:
    if value is None:
        return f"goal {how} {goal:.2f}: not measured"
    return f"goal {how} {goal:.2f}: {'met' if value >= goal else 'NOT met'}"


def _retention_verdict(base: float | None, final: float | None, epsilon: float) -> str:
    """Retention after night 3 against the base, within the promotion gate's epsilon."""
    if base is None or final is None:
        return f"goal: within {epsilon:.2f} of the base: not measured"
    ok = base - final <= epsilon
    return f"goal: within {epsilon:.2f} of the base: {'met' if ok else 'NOT met'}"


#: The share of the base's general knowledge production must keep (issue #19: "retention
#: >= 0.95 x the base's on both old-knowledge sets").
GENERAL_RETENTION_GOAL = 0.95


def _general_verdict(base: float | None, final: float | None) -> str:
    """General-knowledge accuracy after night 3 against :data:`GENERAL_RETENTION_GOAL` times
    the base's (1.0 by construction: the set is what the base answered right)."""
    goal = f"goal: at least {GENERAL_RETENTION_GOAL:.2f} x the base"
    if base is None or final is None:
        return f"{goal}: not measured (the base answered none of the general questions)"
    return f"{goal}: {'met' if final >= GENERAL_RETENTION_GOAL * base else 'NOT met'}"


def story_holds(nights: list[Night]) -> bool:
    """Night 1 promoted, night 2 refused at the gate and not trained, night 3 promoted."""
    return all(EXPECTED.get(n.number, n.decision) == n.decision for n in nights)


def _facts_table(facts: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in facts:
        lines.append(f"  Q: {row['question']}   (true answer: {row['answer']})")
        for label in ("before night 1", "after night 3"):
            answer = row.get(label, "-")
            mark = "right" if answer == row["answer"] else "wrong"
            lines.append(f"     production {label:<15} -> {answer}  [{mark}]")
    return lines


def _control_lines(night: Night) -> list[str]:
    """How much of the world-fact accuracy the question itself earns: the control asks each
    new fact's choices under another fact's question (see the evaluation report)."""
    control = night.controls.get("world_new_wrong_question") or {}
    real, wrong = night.candidate_metrics.get("world_new_acc"), control.get("candidate")
    if not control.get("items") or real is None or wrong is None:
        return []
    return [
        f"  control: the same choices under another fact's question score {_fmt(wrong)}: that "
        "much is familiarity with the answer strings; the question itself adds "
        f"{_fmt(real - wrong)}"
    ]


def facts_learned(night: Night) -> int:
    """New-fact questions the candidate answers (ranked) that production did not: the
    accuracy gain times the questions asked; 0 when nothing says how many were asked."""
    items = (night.controls.get("world_new_wrong_question") or {}).get("items")
    before = night.production_metrics.get("world_new_acc")
    after = night.candidate_metrics.get("world_new_acc")
    if not isinstance(items, int) or before is None or after is None:
        return 0
    return max(0, round((after - before) * items))


def _cost_lines(nights: list[Night]) -> list[str]:
    """What the nights' training and evaluation cost, in all and per fact learned."""
    costed = [n for n in nights if "device_hours" in n.cost]
    if not costed:
        return []
    hours = sum(n.cost["device_hours"] for n in costed)
    kwh = sum(n.cost.get("energy_kwh", 0.0) for n in costed)
    learned = sum(facts_learned(n) for n in costed if n.decision == "PROMOTED")
    line = f"Cost of training and evaluation: {hours:.3f} device-hours, {kwh:.4f} kWh"
    if learned:
        line += (
            f"; {learned} new facts learned: {hours / learned:.4f} device-hours and "
            f"{kwh / learned:.5f} kWh per fact"
        )
    return [line]


def final_report(
    nights: list[Night], facts: list[dict[str, Any]], settings: Any, elapsed_s: float
) -> str:
    store_root = settings.store_uri
    lines = ["", "=" * 100, "FreshLM demo: three nights of the whole loop", "=" * 100]
    lines.append(scoreboard(nights))
    lines.append("(metrics: production -> candidate, on the same items)")
    for night in nights:
        if night.reasons:
            lines.append(f"night {night.number} rejected because: {'; '.join(night.reasons)}")
        if night.gate_passed is False:
            lines.append(
                f"night {night.number}: the gate refused the batch; the Slack alert on-call got:"
            )
            for message in night.slack[:1]:
                lines += ["    " + ln for ln in slack_digest(message).splitlines()]
    lines += ["", "The world's fact questions, asked of the production model:"]
    lines += _facts_table(facts)
    first = next((n for n in nights if n.production_metrics), None)
    last = next((n for n in reversed(nights) if n.decision == "PROMOTED"), None)
    if first and last:
        base, final = first.production_metrics, last.candidate_metrics
        lines.append(
            f"New-knowledge accuracy on the world's facts: {_fmt(base.get('world_new_acc'))} "
            f"(base, night 1's facts) -> {_fmt(final.get('world_new_acc'))} "
            f"(production after night 3, facts up to day 3); "
            f"{_against(final.get('world_new_acc'), WORLD_FACTS_GOAL, 'at least')}"
        )
        lines += _control_lines(last)
        lines += _cost_lines(nights)
        lines.append(
            f"  asked as a user asks (in the chat template where the model has one), production "
            f"says "
            f"{_fmt(final.get('world_new_said_acc'))} of them (base "
            f"{_fmt(base.get('world_new_said_acc'))})"
        )
        lines.append(
            f"Retention accuracy (old-knowledge probes): base {_fmt(base.get('retention_acc'))}, "
            f"production after night 3 {_fmt(final.get('retention_acc'))}; "
            + _retention_verdict(
                base.get("retention_acc"),
                final.get("retention_acc"),
                load_rules(settings.promotion_rules).retention_drop.threshold,
            )
        )
        lines.append(
            "General knowledge the base had (questions it answered right before any training): "
            f"base {_fmt(base.get('general_said_acc'))}, production after night 3 "
            f"{_fmt(final.get('general_said_acc'))}; "
            + _general_verdict(base.get("general_said_acc"), final.get("general_said_acc"))
        )
    verdict = "as expected" if story_holds(nights) else "NOT as expected (see the decisions above)"
    lines += [
        "",
        f"The story: {verdict}. Total time {elapsed_s / 60:.1f} min.",
        f"Everything is in FRESHLM_HOME = {settings.home}:",
        f"  registry        {store_root}/registry/  (aliases, audit log, decisions)",
        f"  model versions  {store_root}/models/    (weights, tokenizer, model card)",
        f"  reports         {store_root}/reports/   (report.json, report.html, metrics.png)",
        f"  Data Docs       {store_root}/gate-reports/  (data_docs/index.html per gate run)",
        f"  Airflow         {settings.airflow_home}  (logs, SQLite metadata DB)",
        "=" * 100,
    ]
    return "\n".join(lines)
