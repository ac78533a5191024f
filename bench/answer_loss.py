"""CPU training step with the output head at labelled positions only, against Hugging Face's loss.

A randomly initialised model of SmolLM2-135M's shape (Llama: 30 blocks, 576 wide, 9 heads, 3 KV
heads, MLP 1536, vocab 49,152, tied embeddings) with only its top blocks trainable
(``training.train.freeze_below_top_layers``), a batch of ``--batch`` x ``--seq`` tokens of which
``--labelled`` carry a label (a loss mask on answers), one forward + backward pass per step:

- ``hf``: ``model(input_ids, labels=labels).loss``, the head and an fp32 cross-entropy over every
  position's whole vocabulary;
- ``answer``: :func:`training.answer_loss.labelled_loss` on the model's final hidden states,
  the head at the labelled positions only (what the entrypoint's Trainer uses without Liger).

Both run in this process, alternating, ``--repeats`` times after a warm-up step each; the table
gives the median and fastest ms/step, the median CPU time (all threads) and their ratios, the
activations each keeps for its backward pass (saved tensors but the weights, each storage
once), and the largest difference of the losses.

    .venv/bin/python bench/answer_loss.py [--repeats 6] [--threads 2] [--train-layers 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def smollm2_shape() -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
        max_position_embeddings=2048, bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def hf_loss(model: Any, ids: Any, labels: Any) -> Any:
    return model(input_ids=ids, labels=labels).loss


def answer_loss(model: Any, ids: Any, labels: Any) -> Any:
    from training.answer_loss import final_hidden_states, labelled_loss

    hidden = final_hidden_states(model, input_ids=ids)
    return labelled_loss(hidden, model.get_output_embeddings(), labels)


def step_ms(loss_fn: Any, model: Any, ids: Any, labels: Any) -> tuple[float, float, float]:
    """``(wall milliseconds of one forward + backward, its CPU milliseconds (all threads), the
    loss)``: on a shared machine the CPU time is the steadier figure of the work done."""
    model.zero_grad(set_to_none=True)
    start, cpu = time.perf_counter(), time.process_time()
    loss = loss_fn(model, ids, labels)
    loss.backward()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall * 1000, cpu * 1000, float(loss.detach())


def saved_mb(loss_fn: Any, model: Any, ids: Any, labels: Any) -> float:
    """Megabytes of tensors the forward pass keeps for the backward pass (each storage once),
    the model's weights left out."""
    import torch

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(model, ids, labels)
    del loss
    return sum(storages.values()) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--labelled", type=float, default=0.2, help="fraction of positions")
    parser.add_argument("--train-layers", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args(argv)

    import torch

    from training.train import freeze_below_top_layers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = smollm2_shape().train()
    trainable = freeze_below_top_layers(model, args.train_layers)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq))
    labels = ids.clone()
    labels[torch.rand(ids.shape) >= args.labelled] = -100
    scored = int((labels[:, 1:] != -100).sum())
    print(
        f"SmolLM2-135M shape, top {args.train_layers} blocks ({trainable:,} parameters) train; "
        f"batch {args.batch} x {args.seq}, {scored} labelled positions; "
        f"{args.threads} threads",
        flush=True,
    )
    paths = {"hf": hf_loss, "answer": answer_loss}
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu_times: dict[str, list[float]] = {name: [] for name in paths}
    losses: dict[str, list[float]] = {name: [] for name in paths}
    for fn in paths.values():  # warm-up
        step_ms(fn, model, ids, labels)
    for _ in range(args.repeats):
        for name, fn in paths.items():
            ms, cpu_ms, loss = step_ms(fn, model, ids, labels)
            times[name].append(ms)
            cpu_times[name].append(cpu_ms)
            losses[name].append(loss)
    memory = {name: saved_mb(fn, model, ids, labels) for name, fn in paths.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    cpu = {name: statistics.median(t) for name, t in cpu_times.items()}
    fastest = {name: min(t) for name, t in times.items()}
    print("\n| loss | ms/step (median) | fastest | CPU ms/step (median) | saved for backward |")
    print("|---|---:|---:|---:|---:|")
    for name in paths:
        print(
            f"| {name} | {median[name]:.0f} | {fastest[name]:.0f} | {cpu[name]:.0f} "
            f"| {memory[name]:.0f} MB |"
        )
    ratios = [m["hf"] / m["answer"] for m in (median, fastest, cpu)]
    print("| **ratio hf / answer** | " + " | ".join(f"**{r:.2f}**" for r in ratios) + " | |")
    gap = max(abs(a - b) for a, b in zip(losses["hf"], losses["answer"], strict=True))
    print(f"\nlargest loss difference: {gap:.2e}; steps (ms): {times}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
