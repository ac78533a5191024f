"""Choice scoring: FreshLM's evaluator vs lm-evaluation-harness, same model, same items, same run.

    .venv/bin/python bench/evaluate.py [--items 400] [--batch-size 16] [--repeats 3] [--tiny]

The model is FreshLM's own base model: the sandbox world's archive published as the base corpus
and the base model bootstrapped from it (``sandbox.base_model.bootstrap_demo_base``, the
default recipe, or with ``--tiny`` the much smaller ``BootstrapConfig.tiny()``) into a
temporary store (``--store DIR`` keeps it, and a rerun with the same recipe reuses it), then
copied into a local Hugging Face folder. The items are the retention probes the evaluation
carries forward from that corpus: cloze items (``freshlm.evaluation.probes.build_cloze_items``,
at most N) from the base corpus's train split, the documents the base model was pretrained on.

* FreshLM: ``CausalLMScorer.from_pretrained(path, batch_size=B).rank_items(items)``.
* lm-evaluation-harness: ``simple_evaluate`` with the ``hf`` model (``pretrained=<path>,
  dtype=float32,add_bos_token=True``, the same batch size, CPU) on the local task
  ``bench/lm_eval_tasks/freshlm_probes`` (the items written as JSON Lines; ``dataset_path: json``,
  ``target_delimiter: " "``, metric ``acc_norm``), zero-shot, ``log_samples=True`` for the
  per-choice log-likelihoods, ``bootstrap_iters=0`` (FreshLM computes no standard errors).
  HF_DATASETS_OFFLINE=1 and HF_HUB_OFFLINE=1 are set before anything imports ``datasets``.

``add_bos_token=True``: FreshLM starts every request with the tokenizer's BOS token
(``<|endoftext|>``, the document separator in pretraining); the harness does so only when told
(for a GPT-2 style tokenizer it otherwise conditions the first context token on nothing).
``--harness-default-bos`` runs the harness as it comes, to show what that changes.

Timing: each side's scoring call only (``rank_items``; ``simple_evaluate`` with the model
already loaded: task and local dataset loading, request building, scoring, metrics), after one
untimed warm-up round, the sides alternating, ``--repeats`` rounds, medians reported; the
harness's own ``loglikelihood`` time inside ``simple_evaluate`` is reported too. Model loading
is excluded from both. Both run with the same torch threads (``--threads``, default 2).

Agreement: FreshLM's chosen index against the harness's ``acc_norm`` choice (argmax of the
log-likelihoods divided by the choice's length in characters, the harness's code) and its
``acc_bytes`` choice (divided by UTF-8 bytes); and FreshLM's own rule
(:func:`freshlm.evaluation.scoring.select_choice`, per UTF-8 byte of the choice) applied to the
harness's log-likelihoods, which separates "same scores" from "same normalization".
Disagreements are listed with both sides' scores.

Requires the bench extras (requirements-bench.txt; lm_eval).
"""

from __future__ import annotations

import os

# Before anything imports datasets / huggingface_hub: nothing may be downloaded.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's progress bars

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.machine import describe

TASK_DIR = Path(__file__).resolve().parent / "lm_eval_tasks" / "freshlm_probes"
TASK_NAME = "freshlm_probes"


def build_model(store_dir: Path, tiny: bool, dest: Path) -> tuple[Path, dict[str, Any], float]:
    """Publish the archive as the base corpus and bootstrap the base model from it (reused
    when the store already has this recipe); ``(model folder, summary, seconds)``."""
    from freshlm.registry.versions import download_version
    from freshlm.store import open_store
    from sandbox.base_model import bootstrap_demo_base
    from training.bootstrap import BootstrapConfig

    store = open_store(f"file://{store_dir}")
    config = BootstrapConfig.tiny() if tiny else BootstrapConfig()
    started = time.perf_counter()
    summary = bootstrap_demo_base(store, config=config, seed=0)
    seconds = time.perf_counter() - started
    path = download_version(store, summary["version_id"], dest)
    return path, summary, seconds


def write_task(items: list[Any], work: Path) -> Path:
    """The items as JSON Lines and the task YAML pointing at them; returns the task folder."""
    data = work / "freshlm_probes.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for item in items:
            record = {
                "id": item.id,
                "context": item.context,
                "choices": list(item.choices),
                "answer_index": item.answer_index,
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    folder = work / "lm_eval_tasks"
    folder.mkdir()
    template = (TASK_DIR / "freshlm_probes.yaml").read_text(encoding="utf-8")
    (folder / "freshlm_probes.yaml").write_text(
        template.replace("__PROBES_JSONL__", json.dumps(str(data))), encoding="utf-8"
    )
    return folder


class Harness:
    """lm-evaluation-harness with the model loaded once; ``run()`` is one ``simple_evaluate``."""

    def __init__(self, path: Path, batch_size: int, task_folder: Path, add_bos: bool) -> None:
        import lm_eval.api.registry
        from lm_eval.tasks import TaskManager

        args = f"pretrained={path},dtype=float32"
        if add_bos:
            args += ",add_bos_token=True"
        self.model_args = args
        self.batch_size = batch_size
        # Exactly what simple_evaluate(model="hf", model_args=...) builds, built once here so
        # that model loading stays out of the timing.
        self.lm = lm_eval.api.registry.get_model("hf").create_from_arg_string(
            args, {"batch_size": batch_size, "max_batch_size": None, "device": "cpu"}
        )
        self.task_manager = TaskManager(include_path=str(task_folder), include_defaults=False)
        self.loglikelihood_seconds = 0.0
        inner = self.lm.loglikelihood

        def timed(requests: Any, *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(requests, *a, **kw)
            finally:
                self.loglikelihood_seconds += time.perf_counter() - t0

        self.lm.loglikelihood = timed  # type: ignore[method-assign]

    def run(self) -> tuple[dict[str, Any], float, float]:
        from lm_eval import simple_evaluate

        self.loglikelihood_seconds = 0.0
        started = time.perf_counter()
        results = simple_evaluate(
            model=self.lm,
            tasks=[TASK_NAME],
            task_manager=self.task_manager,
            num_fewshot=0,
            batch_size=self.batch_size,
            device="cpu",
            log_samples=True,
            bootstrap_iters=0,
        )
        seconds = time.perf_counter() - started
        assert results is not None
        return results, seconds, self.loglikelihood_seconds


def argmax(values: list[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def harness_choices(results: dict[str, Any], items: list[Any]) -> dict[str, dict[str, Any]]:
    """Per item id: the harness's per-choice log-likelihoods and its choices under each
    normalization."""
    from freshlm.evaluation.scoring import select_choice

    out: dict[str, dict[str, Any]] = {}
    for sample in results["samples"][TASK_NAME]:
        doc = sample["doc"]
        lls = [float(r[0]) for r in sample["filtered_resps"]]
        choices = list(doc["choices"])
        chars = [len(c) for c in choices]
        nbytes = [len(c.encode("utf-8")) for c in choices]
        out[doc["id"]] = {
            "lls": lls,
            "acc_norm": argmax([ll / n for ll, n in zip(lls, chars, strict=True)]),
            "acc_bytes": argmax([ll / n for ll, n in zip(lls, nbytes, strict=True)]),
            "freshlm_rule": select_choice(lls, nbytes),
            "acc": argmax(lls),
        }
    missing = [item.id for item in items if item.id not in out]
    if missing:
        raise RuntimeError(
            f"lm-eval returned no sample for {len(missing)} items, e.g. {missing[0]}"
        )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=400, help="base-corpus probes scored")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per side (>= 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads, both sides")
    parser.add_argument("--tiny", action="store_true", help="BootstrapConfig.tiny() model")
    parser.add_argument("--store", type=Path, help="keep the bootstrap store here (reused)")
    parser.add_argument(
        "--harness-default-bos",
        action="store_true",
        help="run lm-eval without add_bos_token=True (its default for GPT-2 tokenizers)",
    )
    parser.add_argument("--show", type=int, default=10, help="disagreements listed")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def quiet_libraries(threads: int) -> str:
    """Silence the libraries' logs and progress bars, set torch's threads; the machine line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("lm_eval", "lm-eval", "datasets", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    import datasets
    import lm_eval
    import torch
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(threads)
    return describe(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        f"transformers {transformers.__version__}",
        f"lm_eval {lm_eval.__version__}",
        f"datasets {datasets.__version__}",
    )


def corpus_items(store_dir: Path, dataset_id: str, max_items: int) -> list[Any]:
    """Cloze items (group ``old``) from the train split of the published base corpus, as the
    evaluation builds its retention probes."""
    from freshlm.artifacts import read_published_dataset
    from freshlm.evaluation.probes import build_cloze_items
    from freshlm.store import open_store

    store = open_store(f"file://{store_dir}")
    documents = list(read_published_dataset(store, dataset_id).documents(store, "train"))
    return build_cloze_items(
        documents, group="old", dataset_id=dataset_id, source="dataset", max_items=max_items
    )


def use_local_datasets_cache(work: Path) -> None:
    import datasets

    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-datasets-cache")
    datasets.config.HF_DATASETS_CACHE = Path(os.environ["HF_DATASETS_CACHE"])


def print_model(summary: dict[str, Any], tiny: bool, boot_s: float) -> None:
    info = summary["model"]
    print(
        f"model: {summary['version_id']} ({'tiny' if tiny else 'default'} bootstrap on "
        f"{summary['base_corpus_dataset']}, "
        f"{'reused' if summary['reused'] else 'trained'} in {boot_s:.1f} s), "
        f"{info.get('parameters')} parameters, vocab {info.get('vocab_size')}, "
        f"{info.get('n_layer')} layers, held-out perplexity "
        f"{summary['metrics'].get('heldout_perplexity_after')}"
    )


def time_rounds(
    scorer: Any, harness: Harness, items: list[Any], repeats: int
) -> tuple[list[Any], dict[str, Any], dict[str, list[float]]]:
    """One untimed warm-up round (first forward passes, the local dataset's Arrow cache), then
    ``repeats`` timed rounds, the sides alternating. ``(FreshLM's results, the harness's
    results, seconds per round: freshlm, harness, loglikelihood)``."""
    fresh = scorer.rank_items(items)
    results, _, _ = harness.run()
    seconds: dict[str, list[float]] = {"freshlm": [], "harness": [], "loglikelihood": []}
    for round_ in range(repeats):
        sides = ("freshlm", "harness") if round_ % 2 == 0 else ("harness", "freshlm")
        for side in sides:
            if side == "freshlm":
                t0 = time.perf_counter()
                fresh = scorer.rank_items(items)
                seconds["freshlm"].append(time.perf_counter() - t0)
            else:
                results, took, inner = harness.run()
                seconds["harness"].append(took)
                seconds["loglikelihood"].append(inner)
        f_s, h_s, i_s = (seconds[k][-1] for k in ("freshlm", "harness", "loglikelihood"))
        print(
            f"  round {round_ + 1}: FreshLM {f_s:6.2f} s ({len(items) / f_s:7.1f} items/s)   "
            f"lm-eval {h_s:6.2f} s ({len(items) / h_s:7.1f} items/s; loglikelihood {i_s:.2f} s)"
        )
    return fresh, results, seconds


def print_speed(n_items: int, seconds: dict[str, list[float]]) -> None:
    f_med, h_med, i_med = (
        statistics.median(seconds[k]) for k in ("freshlm", "harness", "loglikelihood")
    )
    f_rate, h_rate = n_items / f_med, n_items / h_med
    print(f"median items/s: FreshLM {f_rate:.1f}, lm-eval {h_rate:.1f}")
    print(
        f"  (lm-eval's loglikelihood alone: {n_items / i_med:.1f} items/s; the rest of "
        f"simple_evaluate: {h_med - i_med:.2f} s)"
    )
    print(f"ratio FreshLM/lm-eval: {f_rate / h_rate:.2f}  (goal >= 1.00)")


def print_loglikelihoods(
    scorer: Any, items: list[Any], fresh: list[Any], harness_by_id: dict[str, dict[str, Any]]
) -> None:
    """The largest log-likelihood difference, and where differences beyond float noise are:
    requests longer than the window, which both cut from the left; the harness keeps
    max_length + 1 tokens (the first only as context), FreshLM max_length (its last token's
    logits are unused), so one less context token."""
    n_choices = sum(len(i.choices) for i in items)
    max_diff = 0.0
    for item, result in zip(items, fresh, strict=True):
        lls = harness_by_id[item.id]["lls"]
        for a, b in zip(result.logprobs, lls, strict=True):
            max_diff = max(max_diff, abs(a - b))
    print(f"log-likelihoods: max |FreshLM - lm-eval| over {n_choices} choices: {max_diff:.2e}")
    pairs = [(item.context, c) for item in items for c in item.choices]
    full = scorer.encode([f"{c} {choice}" for c, choice in pairs])
    over = [len(ids) + 1 > scorer.max_length for ids in full]
    ours_flat = [lp for r in fresh for lp in r.logprobs]
    theirs_flat = [ll for item in items for ll in harness_by_id[item.id]["lls"]]
    differ = [abs(a - b) > 1e-3 for a, b in zip(ours_flat, theirs_flat, strict=True)]
    print(
        f"  choices longer than the {scorer.max_length}-token window (BOS included): "
        f"{sum(over)}; differing by > 1e-3: {sum(differ)}, of which over the window: "
        f"{sum(d and o for d, o in zip(differ, over, strict=True))}"
    )


AGREEMENT_LABELS = {
    "acc_norm": "FreshLM choice vs lm-eval acc_norm (per char of choice)",
    "acc_bytes": "FreshLM choice vs lm-eval acc_bytes (per byte of choice)",
    "freshlm_rule": "FreshLM choice vs FreshLM's rule on lm-eval's log-likelihoods",
    "acc": "unnormalized: FreshLM argmax vs lm-eval acc",
}


def print_agreement(
    items: list[Any], fresh: list[Any], harness_by_id: dict[str, dict[str, Any]]
) -> None:
    for rule, label in AGREEMENT_LABELS.items():
        ours = [r.chosen_unnormalized if rule == "acc" else r.chosen for r in fresh]
        agree = sum(o == harness_by_id[item.id][rule] for o, item in zip(ours, items, strict=True))
        print(f"agreement, {label}: {agree}/{len(items)} ({agree / len(items):.1%})")


def print_disagreements(
    items: list[Any], fresh: list[Any], harness_by_id: dict[str, dict[str, Any]], show: int
) -> None:
    """The first ``show`` items where FreshLM's choice differs from lm-eval's acc_norm, with
    both sides' scores per choice."""
    differing = [
        (item, result)
        for item, result in zip(items, fresh, strict=True)
        if result.chosen != harness_by_id[item.id]["acc_norm"]
    ]
    if differing:
        print("disagreements (FreshLM choice vs lm-eval acc_norm):")
    for item, result in differing[:show]:
        theirs = harness_by_id[item.id]
        print(
            f"  {item.id} FreshLM={result.chosen} lm-eval={theirs['acc_norm']} "
            f"answer={item.answer_index}"
        )
        for i, choice in enumerate(item.choices):
            ours_lp, their_lp = result.logprobs[i], theirs["lls"][i]
            print(
                f"    [{i}] {choice!r:28} FreshLM lp={ours_lp:9.4f} "
                f"/{result.bytes[i]}B={ours_lp / result.bytes[i]:8.4f}   "
                f"lm-eval ll={their_lp:9.4f} /{len(choice)}ch={their_lp / len(choice):8.4f}"
            )
    if len(differing) > show:
        print(f"  ... {len(differing) - show} more")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("machine: " + quiet_libraries(args.threads))

    from freshlm.evaluation.scoring import CausalLMScorer

    with tempfile.TemporaryDirectory(prefix="freshlm-bench-eval-") as tmp:
        work = Path(tmp)
        use_local_datasets_cache(work)
        store_dir = args.store.resolve() if args.store else work / "store"
        store_dir.mkdir(parents=True, exist_ok=True)
        path, summary, boot_s = build_model(store_dir, args.tiny, work / "model")
        print_model(summary, args.tiny, boot_s)
        items = corpus_items(store_dir, summary["base_corpus_dataset"], args.items)
        n_choices = sum(len(i.choices) for i in items)
        task_folder = write_task(items, work)

        scorer = CausalLMScorer.from_pretrained(path, batch_size=args.batch_size, device="cpu")
        scorer.warm_up()
        harness = Harness(path, args.batch_size, task_folder, add_bos=not args.harness_default_bos)
        print(
            f"items: {len(items)} base-corpus probes ({n_choices} choices), batch size "
            f"{args.batch_size}, scoring window {scorer.max_length} tokens (FreshLM), "
            f"{harness.lm.max_length} (lm-eval)"
        )
        print(f"lm-eval: model_args={harness.model_args}, task {TASK_NAME} (local JSON lines)")

        fresh, results, seconds = time_rounds(scorer, harness, items, args.repeats)
        print_speed(len(items), seconds)
        harness_by_id = harness_choices(results, items)
        metric = results["results"][TASK_NAME].get("acc_norm,none")
        accuracy = sum(r.correct for r in fresh) / len(fresh)
        print(
            f"accuracy: FreshLM {accuracy:.4f} (per byte of choice), lm-eval acc_norm {metric:.4f}"
        )
        print_loglikelihoods(scorer, items, fresh, harness_by_id)
        print_agreement(items, fresh, harness_by_id)
        print_disagreements(items, fresh, harness_by_id, args.show)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
