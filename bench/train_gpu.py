"""GPU training throughput through FreshLM's product entrypoint: tokens/s and MFU on one GPU.

Each shape runs the real product path: a randomly initialised model of the shape is saved as a
Hugging Face folder (with the bootstrap's byte-level BPE tokenizer trained on the sandbox
archive) and registered as a base model version, the archive is published as a curated dataset,
and :func:`training.launch_local.run_local_training` builds the packed training set and starts
the ``deepspeed`` launcher with one rank, which runs ``training/train.py`` (HF Trainer +
DeepSpeed ZeRO-2 or -3) with the GPU path of :class:`training.config.TrainConfig`: bf16,
``torch_compile``, data loader workers with pinned memory, and Liger Kernel's fused linear +
cross-entropy loss where it is installed and has kernels for the model type (``fused_loss="auto"``,
see ``resolve_fused_loss``; SmolLM2's Llama). Where it has none (GPT-2: the table's ``fused loss``
column says ``off``) the entrypoint runs the output head and an fp32 cross-entropy at the labelled
positions only, 4,096 rows at a time (:mod:`training.answer_loss`), so no fp32 logits tensor over
the whole batch is built either (and under ZeRO-2 at most one chunk's is kept). All of it
lives in a temporary local store; nothing is downloaded.

    python3 bench/train_gpu.py --all --json train_gpu.json     # both GPU shapes, one table
    python3 bench/train_gpu.py --shape gpt2-124m [--zero 3] [--baseline] [--profile 3]
    python3 bench/train_gpu.py --shape smoke                   # tiny model, CPU: the check

Shapes: ``gpt2-124m`` (12 layers, 768 wide, 12 heads, vocab 50,304, sequence 1024, batch 64),
``smollm2-135m`` (SmolLM2-135M's Llama architecture: 30 layers, 576 wide, 9 heads, 3 KV heads,
MLP 1536, vocab 49,152, tied embeddings; sequence 2048, batch 16), ``smoke`` (2 layers, 64
wide, CPU ranks, no compilation). The tokenizer's vocabulary is smaller than the model's; the
cost of a step depends on the model's, which the output head and the loss always span.

Figures: ``tokens/s`` is the steady state, from the entrypoint's per-step progress lines (rank
0 logs every step; millisecond stamps) over the steps after ``--warmup`` (compilation and the
first steps excluded); ``step ms`` is the mean step over that window; ``published`` is the
``tokens_per_second`` the entrypoint publishes in the version's metrics (its whole training
loop: compilation, warm-up and the end-of-run checkpoint save included). MFU uses nanoGPT's
estimate, 6N + 12·L·H·Q·T FLOPs per token (N parameters, tied embeddings once; L layers, H
heads, Q head size, T sequence length), against the GPU's bf16 dense peak (H100 and H200:
989.5 TFLOP/s).

``--baseline`` also runs a plain PyTorch loop in its own process on the same model folder and
packed sequences (torch.compile, bf16 autocast, fused AdamW, no logging, no checkpoints) and
prints entrypoint / plain.

``--profile N`` profiles N steps after the timed ones inside the entrypoint's rank 0 with
torch.profiler and prints the top ops by CUDA time and the device time by kernel kind. The
entrypoint has no profiling switch of its own: the bench puts ``bench/entrypoint_profile`` first
on the ranks' ``PYTHONPATH``, whose ``sitecustomize`` adds a TrainerCallback to the Trainer the
unchanged entrypoint builds. The profiled steps are left out of the timed window but are in the
published figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.train_inputs import (  # noqa: E402
    StepClock,
    archive_documents,
    archive_tokenizer,
    publish_dataset,
)

PROFILE_HOOK = REPO / "bench" / "entrypoint_profile"
# bf16 dense tensor-core peak, TFLOP/s (NVIDIA data sheets; H100 SXM and H200 share it). The
# first name the device's name contains wins: the PCIe H100 before the SXM one.
PEAK_TFLOPS = {"H100 PCIe": 756.5, "H100": 989.5, "H200": 989.5, "A100": 312.0}
TOKENIZER_VOCAB = 4096  # the bootstrap's; the archive fills about 4,050 of it
SEED = 0


@dataclasses.dataclass(frozen=True)
class Shape:
    """A model shape and the run's defaults for it."""

    name: str
    family: str  # "gpt2" or "llama"
    layers: int
    width: int
    heads: int
    kv_heads: int
    mlp: int
    vocab: int
    positions: int
    seq: int
    batch: int
    warmup: int
    steps: int
    gpu: bool  # False: CPU ranks (the smoke check)
    documents: int | None = None  # archive documents used (None: all)

    @property
    def head_size(self) -> int:
        return self.width // self.heads


SHAPES = {
    "gpt2-124m": Shape(
        "gpt2-124m", "gpt2", 12, 768, 12, 12, 3072, 50304, 1024, 1024, 64, 15, 60, True
    ),
    # SmolLM2-135M's config.json numbers (HuggingFaceTB/SmolLM2-135M), at the 2048 context it
    # was pretrained with; batch 16 (32k tokens per step): 30 layers of activations per token
    # are about twice GPT-2's 12, so this stays within an H100's 80 GB, as GPT-2's batch 64.
    "smollm2-135m": Shape(
        "smollm2-135m", "llama", 30, 576, 9, 3, 1536, 49152, 8192, 2048, 16, 15, 60, True
    ),
    "smoke": Shape("smoke", "gpt2", 2, 64, 2, 2, 256, 512, 128, 64, 2, 2, 6, False, 60),
}
GPU_SHAPES = ("gpt2-124m", "smollm2-135m")


# --- the model and the inputs --------------------------------------------------------------------


def model_config(shape: Shape, tokenizer: Any) -> Any:
    """The Hugging Face config of ``shape``: no dropout (pure overhead in a throughput run, as in
    nanoGPT), special tokens from ``tokenizer``."""
    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }
    if shape.family == "gpt2":
        from transformers import GPT2Config

        return GPT2Config(
            vocab_size=shape.vocab,
            n_positions=shape.positions,
            n_embd=shape.width,
            n_layer=shape.layers,
            n_head=shape.heads,
            n_inner=shape.mlp,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **special,
        )
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=shape.vocab,
        hidden_size=shape.width,
        intermediate_size=shape.mlp,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.positions,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        initializer_range=0.041666666666666664,
        hidden_act="silu",
        **special,
    )


def save_base_folder(shape: Shape, tokenizer: Any, folder: Path) -> int:
    """A randomly initialised model of ``shape`` and ``tokenizer`` saved in ``folder``; returns
    the parameter count (tied embeddings once)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(model_config(shape, tokenizer))
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return sum(p.numel() for p in model.parameters())


def epochs_for(tokens_needed: int, tokens_per_pass: int) -> float:
    """Passes over the archive that fill ``tokens_needed`` (with room for the dropped tails), so
    the timed steps never cross the end of the training set."""
    return float(math.ceil(1.05 * tokens_needed / tokens_per_pass) + 1)


def build_inputs(tmp: Path, shape: Shape, args: argparse.Namespace) -> dict[str, Any]:
    """Base version, dataset and packed training set in a temporary store; the run's config."""
    from freshlm.store import open_store
    from training.bootstrap import register_external_base
    from training.config import TrainConfig
    from training.train import prepare

    started = time.perf_counter()
    documents = archive_documents(tmp, shape.documents)
    # Every token id must be an embedding row: the tokenizer never outgrows the model.
    tokenizer = archive_tokenizer(documents, min(TOKENIZER_VOCAB, shape.vocab), shape.seq)
    folder = tmp / "random-init"
    n_params = save_base_folder(shape, tokenizer, folder)
    store = open_store((tmp / "store").as_uri())
    base = register_external_base(store, folder, reason="bench/train_gpu.py random init")
    encodings = tokenizer.backend_tokenizer.encode_batch([t for _, t in documents])
    per_pass = sum(len(e.ids) + 1 for e in encodings)  # each document ends with an eos
    max_steps = args.warmup + args.steps + args.profile
    config = TrainConfig(
        datasets=[publish_dataset(store, documents)],
        base_version=base["version_id"],
        epochs=epochs_for(max_steps * args.batch * args.seq, per_pass),
        seq_len=args.seq,
        micro_batch_size=args.batch,
        max_steps=max_steps,
        learning_rate=3e-4,
        bf16="auto",  # bf16 on a GPU rank, fp32 on a CPU rank
        torch_compile=args.compile,
        loader_workers=args.workers,
        fused_loss="auto",
        ds_config=f"zero{args.zero}",
        checkpoint_every=max_steps,  # one save, after the last step: none inside the window
        num_ranks=1,
        seed=SEED,
        store_uri=store.root_uri,
        work_dir=str(tmp / "work"),
    )
    prepared = prepare(config)  # builds the training set once, as the launching task does
    return {
        "config": prepared.config,
        "folder": folder,
        "n_params": n_params,
        "sequences": prepared.trainset.n_sequences,
        "setup_s": time.perf_counter() - started,
    }


# --- the runs ----------------------------------------------------------------------------------


def launch_env(shape: Shape, args: argparse.Namespace, profile_out: Path) -> dict[str, str]:
    """The launcher's extra environment: CPU ranks for the smoke shape (on any host), and the
    profile hook on the ranks' path with ``--profile``."""
    env: dict[str, str] = {}
    if not shape.gpu:
        env.update(DS_ACCELERATOR="cpu", CUDA_VISIBLE_DEVICES="")
    if args.profile:
        window = {"start": args.warmup + args.steps, "steps": args.profile, "out": str(profile_out)}
        env["FRESHLM_BENCH_PROFILE"] = json.dumps(window)
        path = os.environ.get("PYTHONPATH", "")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROFILE_HOOK), path) if p)
    return env


def run_entrypoint(config: Any, shape: Shape, args: argparse.Namespace, tmp: Path) -> dict:
    """One product run; the steady-state step times from its progress lines, its published
    metrics and, with ``--profile``, the profile of the steps after the timed ones."""
    from training.launch_local import run_local_training

    clock = StepClock()
    profile_out = tmp / "profile.json"
    started = time.perf_counter()
    summary = run_local_training(
        config, env=launch_env(shape, args, profile_out), on_line=clock.on_line
    )
    metrics = summary["metrics"]
    step_s = clock.step_times(args.warmup, args.warmup + args.steps)
    return {
        "step_s": step_s,
        "tokens_per_step": metrics["tokens_per_step"],
        "published_tokens_per_s": metrics["tokens_per_second"],
        "bf16": metrics["bf16"],
        "device": metrics["device"],
        "final_loss": metrics["final_loss"],
        "process_s": round(time.perf_counter() - started, 1),
        "profile": json.loads(profile_out.read_text()) if profile_out.is_file() else None,
    }


def run_plain(config: Any, folder: Path, shape: Shape, args: argparse.Namespace) -> dict:
    """The plain loop in its own process (its own CUDA context and memory), with the
    environment the launcher gives a rank (on CPU: its thread count)."""
    job = {
        "config": config.to_dict(),
        "folder": str(folder),
        "warmup": args.warmup,
        "steps": args.steps,
        "compile": args.compile,
        "gpu": shape.gpu,
    }
    from training.launch_local import launcher_env

    env = launcher_env(1, {"CUDA_VISIBLE_DEVICES": ""} if not shape.gpu else {})
    out = subprocess.run(
        [sys.executable, __file__, "--plain-job", json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"plain loop failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def plain_loop_main(job_json: str) -> int:
    """Child process: the minimal loop over the same packed sequences. Prints one JSON line."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from freshlm.store import open_store
    from training.config import TrainConfig
    from training.trainset import load_input_ids, read_training_set

    job = json.loads(job_json)
    config = TrainConfig.from_dict(job["config"])
    device = "cuda" if job["gpu"] else "cpu"
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    torch.backends.cuda.matmul.allow_tf32 = True
    store = open_store(config.store_uri)
    ids = load_input_ids(store, read_training_set(store, config.trainset_id))
    order = np.random.default_rng(config.seed).permutation(len(ids))
    model = AutoModelForCausalLM.from_pretrained(job["folder"]).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, fused=job["gpu"])
    step_model = torch.compile(model) if job["compile"] else model
    b, warmup, total = config.micro_batch_size, job["warmup"], job["warmup"] + job["steps"]
    for step in range(total):
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        rows = np.sort(order[step * b : (step + 1) * b])
        x = torch.as_tensor(ids[rows], dtype=torch.long).to(device, non_blocking=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=job["gpu"]):
            loss = step_model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync(device)
    seconds = time.perf_counter() - started
    step_ms = 1e3 * seconds / job["steps"]
    print(json.dumps({"step_ms": step_ms, "tokens_per_s": b * config.seq_len / step_ms * 1e3}))
    return 0


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# --- figures -----------------------------------------------------------------------------------


def flops_per_token(shape: Shape, n_params: int, seq: int) -> float:
    """nanoGPT's estimate: 6N for the weights' matmuls (forward and backward), 12·L·H·Q·T for
    attention's scores and weighted sum."""
    return 6 * n_params + 12 * shape.layers * shape.heads * shape.head_size * seq


def device_name(gpu: bool) -> str:
    if not gpu:
        return "cpu"
    import torch

    return torch.cuda.get_device_name(0)


def peak_tflops(device: str) -> float | None:
    return next((v for k, v in PEAK_TFLOPS.items() if k in device), None)


def fused_loss_in_use(shape: Shape) -> str:
    """What the entrypoint's ``fused_loss="auto"`` does for this shape: ``on`` where it resolves
    on and Liger Kernel patches the model type; otherwise ``off`` and why. The Trainer's
    ``use_liger_kernel`` only logs, and changes nothing, for a model type Liger does not know
    (GPT-2 among them)."""
    from training.train import resolve_fused_loss

    if not resolve_fused_loss("auto", shape.gpu):
        return "off (no GPU)" if not shape.gpu else "off (liger_kernel not installed)"
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    if shape.family not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        return f"off (Liger has no {shape.family} kernels)"
    return "on"


def figures(shape: Shape, args: argparse.Namespace, inputs: dict, run: dict) -> dict:
    """The result row of one shape."""
    step_s = statistics.fmean(run["step_s"])
    tps = run["tokens_per_step"] / step_s
    device = device_name(shape.gpu)
    peak = peak_tflops(device)
    tflops = flops_per_token(shape, inputs["n_params"], args.seq) * tps / 1e12
    return {
        "shape": shape.name,
        "device": device,
        "params_m": round(inputs["n_params"] / 1e6, 1),
        "seq": args.seq,
        "batch": args.batch,
        "zero": args.zero,
        "compile": args.compile,
        "bf16": run["bf16"],
        "fused_loss": fused_loss_in_use(shape),
        "loader_workers": args.workers if shape.gpu else 0,
        "timed_steps": args.steps,
        "warmup_steps": args.warmup,
        "tokens_per_s": round(tps),
        "step_ms": round(step_s * 1e3, 1),
        "median_step_ms": round(statistics.median(run["step_s"]) * 1e3, 1),
        "tflops": round(tflops, 1),
        "mfu": round(tflops / peak, 4) if peak else None,
        "published_tokens_per_s": round(run["published_tokens_per_s"]),
        "final_loss": run["final_loss"],
        "setup_s": round(inputs["setup_s"], 1),
        "process_s": run["process_s"],
        "profile": run["profile"],
    }


def print_table(rows: list[dict]) -> None:
    """One Markdown table, ready for bench/RESULTS.md."""
    print(
        "| shape | params | seq x batch | ZeRO | compile | fused loss | tokens/s | step ms | "
        "MFU | published tokens/s | plain loop tokens/s | entrypoint/plain |"
    )
    print("|---|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        plain, ratio = "-", "-"
        if r.get("plain"):
            plain = f"{round(r['plain']['tokens_per_s']):,}"
            ratio = f"{r['tokens_per_s'] / r['plain']['tokens_per_s']:.2f}"
        print(
            f"| {r['shape']} | {r['params_m']}M | {r['seq']} x {r['batch']} | {r['zero']} | "
            f"{'on' if r['compile'] else 'off'} | {r['fused_loss']} | "
            f"{r['tokens_per_s']:,} | {r['step_ms']} | {mfu} | "
            f"{r['published_tokens_per_s']:,} | {plain} | {ratio} |"
        )


def print_profile(shape: str, profile: dict) -> None:
    cuda = profile["device_busy_ms"] is not None
    line = f"profile {shape}: {profile['steps']} steps, {profile['step_ms']} ms per step (wall)"
    if cuda:
        kinds = ", ".join(f"{k} {v}" for k, v in profile["by_kind_ms"].items())
        line += f", device busy {profile['device_busy_ms']} ms; by kernel kind (ms): {kinds}"
    print(line)
    print(f"  top ops by {profile['sorted_by']} (ms per step; calls per step):")
    for op in profile["top_ops"]:
        device = f"{op['device_ms']:9.3f} cuda " if cuda else ""
        print(f"  {device}{op['cpu_ms']:9.3f} cpu {op['calls_per_step']:7.1f}  {op['op']}")


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="gpt2-124m")
    parser.add_argument("--all", action="store_true", help=f"run {', '.join(GPU_SHAPES)}")
    parser.add_argument("--zero", type=int, choices=(2, 3), default=2, help="ZeRO stage")
    parser.add_argument("--steps", type=int, help="timed steps (default: the shape's)")
    parser.add_argument("--warmup", type=int, help="steps before the timed ones")
    parser.add_argument("--batch", type=int, help="micro batch, sequences")
    parser.add_argument("--seq", type=int, help="sequence length")
    parser.add_argument("--workers", type=int, default=4, help="data loader workers (GPU)")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        help="torch_compile (default: on for GPU shapes, off for smoke)",
    )
    parser.add_argument("--baseline", action="store_true", help="also run the plain loop")
    parser.add_argument("--profile", type=int, default=0, help="profile N steps after the timed")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--plain-job", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def shape_args(shape: Shape, args: argparse.Namespace) -> argparse.Namespace:
    """The command line with the shape's defaults where it says nothing."""
    return argparse.Namespace(
        **{
            **vars(args),
            "steps": args.steps or shape.steps,
            "warmup": args.warmup if args.warmup is not None else shape.warmup,
            "batch": args.batch or shape.batch,
            "seq": args.seq or shape.seq,
            "compile": shape.gpu if args.compile is None else args.compile,
        }
    )


def check_device(shapes: list[Shape]) -> None:
    """A GPU shape on a host without CUDA fails here, saying what to run instead."""
    if not any(s.gpu for s in shapes):
        return
    import torch

    if not torch.cuda.is_available():
        names = [s.name for s in shapes if s.gpu]
        raise SystemExit(
            f"bench/train_gpu.py: {' and '.join(names)} "
            f"{'need' if len(names) > 1 else 'needs'} a CUDA GPU and this host has none "
            "(torch.cuda.is_available() is False). On a CPU-only host run "
            "`python3 bench/train_gpu.py --shape smoke`, the tiny end-to-end check."
        )


def run_shape(shape: Shape, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"freshlm-bench-gpu-{shape.name}-") as tmp_name:
        tmp = Path(tmp_name)
        inputs = build_inputs(tmp, shape, args)
        print(
            f"{shape.name}: {inputs['n_params'] / 1e6:.1f}M parameters, seq {args.seq} x batch "
            f"{args.batch}, ZeRO-{args.zero}, {args.warmup} + {args.steps} steps"
            f"{f' + {args.profile} profiled' if args.profile else ''}, training set "
            f"{inputs['sequences']} sequences (setup {inputs['setup_s']:.1f}s)",
            flush=True,
        )
        row = figures(shape, args, inputs, run_entrypoint(inputs["config"], shape, args, tmp))
        if args.baseline:
            row["plain"] = run_plain(inputs["config"], inputs["folder"], shape, args)
    print("BENCH " + json.dumps({k: v for k, v in row.items() if k != "profile"}), flush=True)
    return row


def machine() -> str:
    import deepspeed
    import torch
    import transformers

    from bench.machine import describe

    liger = importlib.util.find_spec("liger_kernel") is not None
    return describe(
        f"torch {torch.__version__}",
        f"deepspeed {deepspeed.__version__}",
        f"transformers {transformers.__version__}",
        f"liger_kernel {'installed' if liger else 'not installed'}",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plain_job:
        return plain_loop_main(args.plain_job)
    shapes = [SHAPES[name] for name in (GPU_SHAPES if args.all else (args.shape,))]
    check_device(shapes)
    print(f"machine: {machine()}", flush=True)
    rows = [run_shape(shape, shape_args(shape, args)) for shape in shapes]
    print(f"device: {rows[0]['device']}")
    print_table(rows)
    for row in rows:
        if row["profile"]:
            print_profile(row["shape"], row["profile"])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
