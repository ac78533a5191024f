"""GPU throughput of FreshLM's training stack: a GPT-2-124M-shaped model, HF Trainer + DeepSpeed
ZeRO-2, bf16, one GPU; tokens/s and MFU against the GPU's bf16 dense peak.

A plain PyTorch loop (same model, data, sequence length and batch; bf16 autocast, fused AdamW)
runs in the same process first, as the baseline the ratio is taken against.

    python3 bench/train_gpu.py [--steps 60] [--batch 16] [--seq 1024]
    python3 bench/train_gpu.py --smoke          # tiny model on CPU: checks the script runs

The model is randomly initialised and the tokens are synthetic: this measures throughput, not
learning, and needs nothing from a hub. MFU uses nanoGPT's estimate: 6N + 12·L·H·Q·T FLOPs per
token (N parameters, L layers, H heads, Q head size, T sequence length).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

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
    data = Tokens(args.batch * (args.steps + args.warmup), args.seq, config.vocab_size)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    timed_tokens, started = 0, None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        batch = data.data[step * args.batch : (step + 1) * args.batch].to(device)
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = step_model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= args.warmup:
            timed_tokens += batch.numel()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    name = "plain PyTorch loop" + (" (compiled)" if args.compile else "")
    return _figures(name, model, config, args, timed_tokens, seconds)


def trainer_zero2(args, device: str) -> dict:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29511")
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    model, config = build_model(args.smoke, args.seq)
    ds_config = {
        "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True},
        "bf16": {"enabled": "auto"},
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "zero_allow_untested_optimizer": True,
    }

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.started = None
            self.steps = 0

        def on_step_end(self, targs, state, control, **kw):
            if state.global_step == args.warmup:
                if device == "cuda":
                    torch.cuda.synchronize()
                self.started = time.perf_counter()
            elif state.global_step > args.warmup:
                self.steps += 1

    clock = Clock()
    targs = TrainingArguments(
        output_dir="/tmp/freshlm-bench-train-gpu",
        per_device_train_batch_size=args.batch,
        max_steps=args.warmup + args.steps,
        learning_rate=3e-4,
        bf16=device == "cuda",
        deepspeed=None if args.smoke else ds_config,
        optim="adamw_torch_fused" if device == "cuda" else "adamw_torch",
        logging_steps=20,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=2,
        use_cpu=device != "cuda",
        torch_compile=args.compile,
    )
    data = Tokens(args.batch * (args.steps + args.warmup), args.seq, config.vocab_size)
    trainer = Trainer(model=model, args=targs, train_dataset=data, callbacks=[clock])
    trainer.train()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - clock.started
    name = "HF Trainer + DeepSpeed ZeRO-2" if not args.smoke else "HF Trainer (smoke, no DS)"
    name += " (compiled)" if args.compile else ""
    return _figures(name, model, config, args, clock.steps * args.batch * args.seq, seconds)


def _figures(name, model, config, args, tokens, seconds) -> dict:
    tps = tokens / seconds
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    peak = peak_tflops(gpu)
    achieved = flops_per_token(model, config, args.seq) * tps / 1e12
    return {
        "name": name,
        "device": gpu,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "seq": args.seq,
        "batch": args.batch,
        "timed_steps": args.steps,
        "tokens_per_s": round(tps),
        "tflops": round(achieved, 1),
        "mfu": round(achieved / peak, 3) if peak else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile both sides")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.batch, args.seq = 3, 1, 2, 64
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    results = [plain_loop(args, device), trainer_zero2(args, device)]
    for r in results:
        print("BENCH " + json.dumps(r))
    base, ours = results
    print(f"device: {ours['device']}  torch {torch.__version__}")
    for r in results:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        print(
            f"  {r['name']:32s} {r['params_m']}M params, seq {r['seq']}, batch {r['batch']}: "
            f"{r['tokens_per_s']:>9,} tokens/s  {r['tflops']:6.1f} TFLOP/s  MFU {mfu}"
        )
    print(f"ratio Trainer+ZeRO-2 / plain loop: {ours['tokens_per_s'] / base['tokens_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
