"""GPU throughput of FreshLM's training stack: a GPT-2-124M-shaped model, HF Trainer + DeepSpeed
ZeRO-2, bf16, one GPU; tokens/s and MFU against the GPU's bf16 dense peak.

A plain PyTorch loop (same model, data, sequence length and batch; bf16 autocast, fused AdamW)
is the baseline the ratio is taken against; ``--sides`` picks which sides run in this process.

    python3 bench/train_gpu.py [--steps 60] [--batch 16] [--seq 1024] [--compile]
    python3 bench/train_gpu.py --sides trainer --compile --batch 64 --no-overlap --bucket 5e8
    python3 bench/train_gpu.py --smoke          # tiny model on CPU: checks the script runs

The Trainer side uses the product's DeepSpeed config (``training/ds_configs/zero2.json``, or
``--ds-config``; ``--bucket`` and ``--no-overlap`` override its ZeRO settings) and the
entrypoint's Trainer choices unless told otherwise: progress logged every step
(``--logging-steps``), gradient clipping at 1.0, no data loader workers, the Trainer's default
optimizer (torch's fused AdamW). ``--compile`` sets ``torch_compile`` (which DeepSpeed applies to
its engine) on the Trainer side and ``torch.compile`` on the plain side.

The model is randomly initialised and the tokens are synthetic: this measures throughput, not
learning, and needs nothing from a hub. MFU uses nanoGPT's estimate: 6N + 12·L·H·Q·T FLOPs per
token (N parameters, L layers, H heads, Q head size, T sequence length).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
# bf16 dense tensor-core peak, TFLOP/s (NVIDIA data sheets; H100 SXM and H200 share it).
PEAK_TFLOPS = {"H100": 989.5, "H200": 989.5, "A100": 312.0}


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def build_model(smoke: bool, seq: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    if smoke:
        config = GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=seq, vocab_size=512)
    else:  # GPT-2 small (124M), vocab padded to a multiple of 64 as in nanoGPT
        config = GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=seq, vocab_size=50304)
    # No dropout, as in GPT-2-style pretraining runs (nanoGPT): it is pure overhead here.
    config.resid_pdrop = config.embd_pdrop = config.attn_pdrop = 0.0
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return GPT2LMHeadModel(config), config


def flops_per_token(model, config, seq: int) -> float:
    n = sum(p.numel() for p in model.parameters())
    head = config.n_embd // config.n_head
    return 6 * n + 12 * config.n_layer * config.n_head * head * seq


class StepProfile:
    """``--profile N``: the device kernels of N steps after the timed ones, by kind, and how much
    of the steps' wall time the device was busy (kernel time summed, so overlap counts twice)."""

    KINDS = (  # first match wins: cuDNN's flash kernels also carry "sm90_" in their names
        ("attention", ("flash", "fmha", "attention")),
        ("gemm", ("gemm", "nvjet", "cutlass", "sm90_", "cublas")),
        ("nccl", ("nccl",)),
        ("optimizer", ("adam", "multi_tensor")),
        ("triton (fused)", ("triton_",)),
    )

    def __init__(self, steps: int, device: str) -> None:
        self.steps, self.device, self.prof, self.started = steps, device, None, 0.0

    def start(self) -> None:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device == "cuda" else [])
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.prof = profile(activities=acts)
        self.prof.__enter__()
        self.started = time.perf_counter()

    def stop(self, name: str) -> dict:
        if self.device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - self.started
        self.prof.__exit__(None, None, None)
        kinds: dict[str, float] = {}
        busy = 0.0
        for ev in self.prof.key_averages():
            t = getattr(ev, "device_time_total", 0.0) if self.device == "cuda" else 0.0
            kind = getattr(getattr(ev, "device_type", None), "name", "")
            if not t or kind != "CUDA":  # CPU ops carry their kernels' time too: skip them
                continue
            busy += t
            low = ev.key.lower()
            kind = next((k for k, pats in self.KINDS if any(x in low for x in pats)), "other")
            kinds[kind] = kinds.get(kind, 0.0) + t
        ms = 1e3 / self.steps
        out = {
            "profile": name,
            "step_ms": round(wall * ms, 1),
            "device_busy_ms": round(busy / 1e3 / self.steps, 1),
            "by_kind_ms": {k: round(v / 1e3 / self.steps, 1) for k, v in sorted(kinds.items())},
        }
        print("PROFILE " + json.dumps(out), flush=True)
        if self.device == "cuda":
            table = self.prof.key_averages().table(sort_by="device_time_total", row_limit=18)
            print(table, flush=True)
        return out


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int, seq: int, vocab: int) -> None:
        g = torch.Generator().manual_seed(1)
        self.data = torch.randint(0, vocab, (n, seq), generator=g)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.data[i], "labels": self.data[i]}


def plain_loop(args, device: str) -> dict:
    model, config = build_model(args.smoke, args.seq)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device == "cuda")
    step_model = torch.compile(model) if args.compile else model
    total = args.warmup + args.steps + args.profile
    data = Tokens(args.batch * total, args.seq, config.vocab_size)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    timed_tokens, started, seconds = 0, None, 0.0
    profile = StepProfile(args.profile, device)
    for step in range(total):
        if step == args.warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        if step == args.warmup + args.steps:
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            profile.start()
        batch = data.data[step * args.batch : (step + 1) * args.batch].to(device)
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = step_model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if args.warmup <= step < args.warmup + args.steps:
            timed_tokens += batch.numel()
    if device == "cuda":
        torch.cuda.synchronize()
    if args.profile:
        profile.stop("plain")
    else:
        seconds = time.perf_counter() - started
    name = "plain PyTorch loop" + (" (compiled)" if args.compile else "")
    return _figures(name, model, config, args, timed_tokens, seconds)


def ds_config(args) -> dict:
    """The product's ZeRO-2 file (``"auto"`` values are the Trainer's to fill), with the
    command line's overrides."""
    config = json.loads(Path(args.ds_config).read_text())
    zero = config["zero_optimization"]
    if args.bucket:
        zero["reduce_bucket_size"] = int(args.bucket)
        zero["allgather_bucket_size"] = int(args.bucket)
    if args.no_overlap:
        zero["overlap_comm"] = False
    return config


def trainer_zero2(args, device: str) -> dict:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29511")
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    model, config = build_model(args.smoke, args.seq)
    zero = ds_config(args)

    profile = StepProfile(args.profile, device)

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.started = None
            self.seconds = 0.0
            self.steps = 0

        def on_step_end(self, targs, state, control, **kw):
            if state.global_step == args.warmup:
                if device == "cuda":
                    torch.cuda.synchronize()
                self.started = time.perf_counter()
            elif args.warmup < state.global_step <= args.warmup + args.steps:
                self.steps += 1
                if state.global_step == args.warmup + args.steps:
                    if device == "cuda":
                        torch.cuda.synchronize()
                    self.seconds = time.perf_counter() - self.started
                    if args.profile:
                        profile.start()
            if args.profile and state.global_step == args.warmup + args.steps + args.profile:
                profile.stop("trainer")

    clock = Clock()
    targs = TrainingArguments(
        output_dir="/tmp/freshlm-bench-train-gpu",
        per_device_train_batch_size=args.batch,
        max_steps=args.warmup + args.steps + args.profile,
        learning_rate=3e-4,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        bf16=device == "cuda",
        deepspeed=None if args.smoke else zero,
        logging_steps=args.logging_steps,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=args.workers,
        dataloader_pin_memory=args.pin,
        use_cpu=device != "cuda",
        torch_compile=args.compile,
        remove_unused_columns=False,
    )
    data = Tokens(
        args.batch * (args.steps + args.warmup + args.profile), args.seq, config.vocab_size
    )
    trainer = Trainer(model=model, args=targs, train_dataset=data, callbacks=[clock])
    trainer.train()
    seconds = clock.seconds
    name = "HF Trainer + DeepSpeed ZeRO-2" if not args.smoke else "HF Trainer (smoke, no DS)"
    name += " (compiled)" if args.compile else ""
    result = _figures(name, model, config, args, clock.steps * args.batch * args.seq, seconds)
    result["zero"] = {k: v for k, v in zero["zero_optimization"].items() if k != "stage"}
    result["logging_steps"] = args.logging_steps
    return result


def _figures(name, model, config, args, tokens, seconds) -> dict:
    tps = tokens / seconds
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    peak = peak_tflops(gpu)
    achieved = flops_per_token(model, config, args.seq) * tps / 1e12
    return {
        "name": name,
        "label": args.label,
        "device": gpu,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "seq": args.seq,
        "batch": args.batch,
        "timed_steps": args.steps,
        "tokens_per_s": round(tps),
        "tflops": round(achieved, 1),
        "mfu": round(achieved / peak, 3) if peak else None,
        "max_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)
        if torch.cuda.is_available()
        else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides")
    parser.add_argument("--sides", default="plain,trainer", help="plain, trainer or both")
    parser.add_argument(
        "--ds-config",
        default=str(REPO / "training" / "ds_configs" / "zero2.json"),
        help="DeepSpeed config of the Trainer side (default: the product's zero2.json)",
    )
    parser.add_argument("--bucket", type=float, help="ZeRO reduce/allgather bucket (elements)")
    parser.add_argument("--no-overlap", action="store_true", help="ZeRO overlap_comm off")
    parser.add_argument("--logging-steps", type=int, default=1, help="Trainer logging cadence")
    parser.add_argument("--workers", type=int, default=0, help="Trainer data loader workers")
    parser.add_argument("--label", default="", help="a name for this configuration")
    parser.add_argument(
        "--profile", type=int, default=0, help="profile this many steps after the timed ones"
    )
    parser.add_argument("--pin", action="store_true", help="Trainer: pin data loader memory")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.batch, args.seq = 3, 1, 2, 64
        args.profile = min(args.profile, 2)
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    results = []
    for side in sides:
        run = {"plain": plain_loop, "trainer": trainer_zero2}[side]
        results.append(run(args, device))
        print("BENCH " + json.dumps(results[-1]), flush=True)
    print(f"device: {results[0]['device']}  torch {torch.__version__}")
    for r in results:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        print(
            f"  {r['name']:32s} {r['params_m']}M params, seq {r['seq']}, batch {r['batch']}: "
            f"{r['tokens_per_s']:>9,} tokens/s  {r['tflops']:6.1f} TFLOP/s  MFU {mfu}"
        )
    if len(results) == 2:
        ratio = results[1]["tokens_per_s"] / results[0]["tokens_per_s"]
        print(f"ratio Trainer+ZeRO-2 / plain loop: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
