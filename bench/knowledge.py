"""Does the model learn the news? The demo's nights without Airflow, for quick recipe trials.

Each night runs the product's own steps in this process: the sandbox world's day is curated,
gated and published as a dataset (as ``freshlm_curate`` does), the production model is trained
on it with the local DeepSpeed backend (as ``freshlm_train`` does, CPU ranks here), the
candidate is evaluated against production (as ``freshlm_evaluate`` does: the world's fact
questions ranked and asked in the chat template, the wrong-question control, retention) and
promoted. Day 2, the bad batch, is skipped as the gate refuses it in the demo. Printed per
night: the knowledge figures, training tokens/s and the minutes each step took.

    .venv/bin/python bench/knowledge.py --base smollm2-135m-instruct [--nights 1]
    .venv/bin/python bench/knowledge.py --base smollm2-135m-instruct --mode lora \\
        --train-layers 0 --epochs 3 --learning-rate 2e-4 --nights 1

Epochs, learning rate, trained blocks, augmentation, rehearsal, answers in context, other
wordings of the questions and number format default to the base's recipe
(:mod:`freshlm.base_recipes`), as ``freshlm_train`` trains it; the evaluation reads
``FRESHLM_EVAL_CONFIG`` as ``freshlm_evaluate`` does.

To run the nights on a machine that lacks the curation stack (a GPU machine with only the
training and evaluation packages), curate there first and carry the home:

    .venv/bin/python bench/knowledge.py --curate-only --home H     # here: writes H/nights.json
    python3 bench/knowledge.py --base smollm2-135m-instruct --curated --home H --ranks 1

Results are recorded in bench/RESULTS.md ("knowledge: recipes tried").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402
from freshlm.base_recipes import recipe_for  # noqa: E402

DAYS = {1: 1, 2: 3, 3: 4}  # night -> scenario day (the demo skips the refused day 2)
SOURCES = ["arxiv-cs", "tessford-courier", "tessford-social"]
NIGHTS_FILE = "nights.json"  # the curated nights of a home: --curate-only writes, --curated reads


def publish_day(store: Any, number: int) -> tuple[str, dict[str, str]]:
    """Curate, gate and publish scenario day ``number``; ``(dataset id, window)``."""
    from datetime import timedelta

    from expectations.verdict import gate_candidate
    from freshlm.artifacts import read_gate_report
    from freshlm.curation import publish as publishing
    from freshlm.curation.run import curate
    from sandbox.records import day_records
    from sandbox.scenario import load_scenario

    scenario = load_scenario()
    day = scenario.days[number - 1].date
    window = {"start": f"{day}T00:00:00Z", "end": f"{day + timedelta(days=1)}T00:00:00Z"}
    by_source: dict[str, list[dict]] = {}
    for record in day_records(scenario, day):
        if record["source"] == "arxiv-cs-cl":
            record = {**record, "source": "arxiv-cs"}
        by_source.setdefault(record["source"], []).append(record)
    shards = []
    for source, records in sorted(by_source.items()):
        prefix = f"raw/{source}/bench-{day:%Y%m%d}"
        with store.publisher(prefix, kind="raw-shard") as pub:
            pub.write_jsonl("records.jsonl.gz", records)
            pub.write_jsonl("quarantine.jsonl.gz", [])
            pub.set_manifest_fields(source=source, window=window, records=len(records))
        shards.append(store.uri_for(prefix))
    candidate = curate(shards, store, window=(window["start"], window["end"]))
    gate = gate_candidate(
        store, candidate.uri, window=window, allowed_sources=SOURCES, run_id=f"bench-{number}"
    )
    batch = publishing.GatedBatch(candidate.uri, gate["report_uri"], window, shards, "bench")
    result = read_gate_report(store, gate["report_uri"])
    return publishing.publish_dataset(store, batch, result)["dataset_id"], window


def curate_nights(store: Any, home: Path, nights: int) -> list[dict[str, Any]]:
    """Publish the base corpus and each night's dataset, list them in ``home/nights.json``."""
    from sandbox.base_corpus import publish_base_corpus

    publish_base_corpus(store)
    curated = []
    for number in range(1, nights + 1):
        t = time.monotonic()
        dataset_id, window = publish_day(store, DAYS[number])
        minutes = round((time.monotonic() - t) / 60, 2)
        curated.append({"night": number, "dataset_id": dataset_id, "window": window})
        print(f"night {number}: dataset {dataset_id} curated in {minutes} min")
    (home / NIGHTS_FILE).write_text(json.dumps(curated, indent=1) + "\n")
    return curated


def read_curated(home: Path, nights: int) -> list[tuple[str, dict[str, str]]]:
    """The ``(dataset id, window)`` of nights 1..``nights`` from ``home/nights.json``."""
    path = home / NIGHTS_FILE
    try:
        listed = {int(n["night"]): n for n in json.loads(path.read_text())}
        return [(listed[n]["dataset_id"], listed[n]["window"]) for n in range(1, nights + 1)]
    except FileNotFoundError:
        raise SystemExit(f"--curated: {path} is missing; run --curate-only first") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"--curated: {path} does not list nights 1-{nights}: {exc}") from None


def train_night(store: Any, dataset_id: str, args: argparse.Namespace) -> dict[str, Any]:
    from freshlm.registry import PRODUCTION, read_alias
    from training.config import TrainConfig
    from training.launch_local import run_local_training

    config = TrainConfig(
        datasets=(dataset_id,),
        base_version=read_alias(store, PRODUCTION).version_id,
        mode=args.mode,
        train_layers=args.train_layers,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        replay_ratio=args.replay_ratio,
        augment=args.augment,
        rehearsal=args.rehearsal,
        context_answers=args.context_answers and args.augment,
        question_variants=args.question_variants if args.augment else 0,
        rivals=args.rivals,
        appositions=args.appositions and args.augment,
        written_questions=args.written_questions and args.augment,
        bf16=args.bf16,
        seq_len=args.seq_len,
        micro_batch_size=args.micro_batch,
        num_ranks=args.ranks,
        store_uri=store.root_uri,
        **({"seed": args.seed} if args.seed is not None else {}),
    )
    return run_local_training(config, num_ranks=args.ranks)


def evaluate_night(
    store: Any, candidate: str, datasets: list[str], windows: list[dict], world_url: str
) -> dict[str, Any]:
    from freshlm.evaluation.nightly import run_evaluation
    from freshlm.registry import PRODUCTION, read_alias
    from freshlm.settings import get_settings

    settings = dataclasses.replace(get_settings(), world_url=world_url)
    request = {
        "candidate": candidate,
        "baseline": read_alias(store, PRODUCTION).version_id,
        "dataset_ids": datasets,
        "windows": windows,
    }
    return run_evaluation(store, request, settings=settings)


def night_row(number: int, report: dict[str, Any], trained: dict, minutes: dict) -> dict:
    base, cand = report["baseline"]["metrics"], report["candidate"]["metrics"]
    control = (report.get("controls") or {}).get("world_new_wrong_question") or {}
    metrics = trained.get("metrics") or {}
    return {
        "night": number,
        "ranked": (base["world_new_acc"], cand["world_new_acc"]),
        "said": (base["world_new_said_acc"], cand["world_new_said_acc"]),
        "control": (control.get("baseline"), control.get("candidate")),
        "retention": (base["retention_acc"], cand["retention_acc"]),
        "old_said": (base["world_old_said_acc"], cand["world_old_said_acc"]),
        "general": (base.get("general_said_acc"), cand.get("general_said_acc")),
        "train_tokens_per_s": metrics.get("tokens_per_second"),
        "minutes": minutes,
        "facts": [(f["question"], f["answer"], f["candidate_said"]) for f in report["facts"][:4]],
    }


def _bf16_choice(raw: str) -> bool | str:
    """``TrainConfig.bf16`` from the command line (``training.precision``)."""
    lowered = raw.strip().lower()
    if lowered in {"auto", "native"}:
        return lowered
    if lowered in {"true", "false"}:
        return lowered == "true"
    raise argparse.ArgumentTypeError(f"{raw!r}: expected auto, native, true or false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--mode", default="full", choices=["full", "lora"])
    # Unset: the base's recipe (freshlm.base_recipes), as the product trains it.
    parser.add_argument("--train-layers", type=int)
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction)
    parser.add_argument("--replay-ratio", type=float)
    parser.add_argument("--rehearsal", type=int, help="the base's own turns rehearsed each pass")
    parser.add_argument(
        "--context-answers",
        action=argparse.BooleanOptionalAction,
        help="train the model's answers given each fact's sentence, asked without it",
    )
    parser.add_argument(
        "--question-variants",
        type=int,
        help="each span question also asked in up to this many other wordings by rule",
    )
    parser.add_argument(
        "--appositions",
        action=argparse.BooleanOptionalAction,
        help="also state and ask each sentence's appositions as sentences of their own",
    )
    parser.add_argument(
        "--written-questions",
        action=argparse.BooleanOptionalAction,
        help="also ask each figure and date in a question the root base writes itself",
    )
    parser.add_argument(
        "--rivals", type=int, help="other spans ranked below each span answer (0: none)"
    )
    parser.add_argument(
        "--bf16", type=_bf16_choice, help="number format: auto, native, true or false"
    )
    parser.add_argument(
        "--seed", type=int, help="the training set's shuffle and the run's (default: the config's)"
    )
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--nights", type=int, default=3, choices=[1, 2, 3])
    parser.add_argument("--home", help="FRESHLM_HOME to use (default: a new temporary folder)")
    stage = parser.add_mutually_exclusive_group()
    stage.add_argument(
        "--curate-only",
        action="store_true",
        help=f"publish the nights' datasets, list them in HOME/{NIGHTS_FILE} and stop (no model)",
    )
    stage.add_argument(
        "--curated",
        action="store_true",
        help=f"take the nights' datasets from HOME/{NIGHTS_FILE} instead of curating them",
    )
    args = parser.parse_args(argv)
    if (args.curate_only or args.curated) and not args.home:
        parser.error("--curate-only and --curated need --home")
    recipe = recipe_for(args.base)
    for name, value in dataclasses.asdict(recipe).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    home = Path(args.home or tempfile.mkdtemp(prefix="freshlm-knowledge-"))
    os.environ["FRESHLM_HOME"] = str(home)

    from freshlm.registry import PRODUCTION, move_alias
    from freshlm.store import open_store
    from sandbox.base_model import demo_base
    from sandbox.server import WorldServer

    store = open_store((home / "store").as_uri())
    if args.curate_only:
        curate_nights(store, home, args.nights)
        return 0
    curated = read_curated(home, args.nights) if args.curated else None
    print(describe())
    rows = []
    began = time.monotonic()
    with WorldServer(port=0) as world:
        t = time.monotonic()
        base = demo_base(store, args.base)
        print(f"base {base['version_id']} ready in {(time.monotonic() - t) / 60:.1f} min")
        datasets: list[str] = []
        windows: list[dict] = []
        for number in range(1, args.nights + 1):
            minutes = {}
            t = time.monotonic()
            if curated:
                dataset_id, window = curated[number - 1]
            else:
                dataset_id, window = publish_day(store, DAYS[number])
            datasets.append(dataset_id)
            windows.append(window)
            world.clock.set(world.parse_when(window["end"]))
            minutes["curate"] = round((time.monotonic() - t) / 60, 2)
            t = time.monotonic()
            trained = train_night(store, dataset_id, args)
            minutes["train"] = round((time.monotonic() - t) / 60, 2)
            t = time.monotonic()
            report = evaluate_night(store, trained["version_id"], datasets, windows, world.url)
            minutes["evaluate"] = round((time.monotonic() - t) / 60, 2)
            move_alias(store, PRODUCTION, trained["version_id"], actor="bench", reason="bench")
            rows.append(night_row(number, report, trained, minutes))
            print(json.dumps(rows[-1], ensure_ascii=False))
    print(f"total {(time.monotonic() - began) / 60:.1f} min; args {vars(args)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
