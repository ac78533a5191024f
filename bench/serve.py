"""Serving: ``freshlm serve`` (request batching) vs the same model behind a plain generate loop.

    .venv/bin/python bench/serve.py [--requests 64] [--clients 4] [--max-tokens 32]

The model has the demo base's shape (``training.bootstrap.ModelConfig()``: GPT-2, ~4.2M
parameters, 256 positions) with a tokenizer trained on the questions below, randomly
initialised (latency depends on the shape, not on the weights; equal answers are checked on
whatever the weights say). It is published to a temporary store and served twice, each time by
a real ``freshlm serve`` process over loopback:

* baseline: ``FRESHLM_SERVE_MAX_BATCH=1`` — one ``generate`` call per request, one request at a
  time: a plain transformers generate loop behind the same HTTP API;
* FreshLM: the default ``FRESHLM_SERVE_MAX_BATCH=8`` — concurrent requests share a call.

Each run sends the same ``--requests`` chat requests (greedy, ``--max-tokens`` new tokens)
from ``--clients`` concurrent clients after 4 warm-up requests; reported: requests/s over the
run, p50 and p95 of the per-request latency, and whether every answer equals the baseline's.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import tempfile
import time
from pathlib import Path

import requests

from freshlm.airflow_local import free_port
from freshlm.registry import PRODUCTION, Lineage, move_alias, publish_version
from freshlm.serving.launch import ServerProcess
from freshlm.store import open_store

QUESTIONS = [
    "What is the battery capacity of the Orrin Pulse X2?",
    "Where is the 2026 Tessford Lantern Festival held?",
    "What is the single fare on Tessford's new Route 41 bus?",
    "Who directs the Freshwater Lab at Ondra University?",
    "How long is the warranty on the Orrin Pulse X2?",
    "Which river flows through Tessford?",
    "In what year did the Greyling Bridge open?",
    "How much does Orrin Care+ cost per year?",
]


def build_model(folder: Path) -> None:
    from training.bootstrap import ModelConfig, build_model, train_tokenizer

    tokenizer = train_tokenizer(QUESTIONS * 20, vocab_size=4096, model_max_length=256)
    model = build_model(tokenizer, ModelConfig(), seed=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def run(url: str, prompts: list[str], clients: int, max_tokens: int) -> dict:
    def ask(question: str) -> tuple[float, str]:
        began = time.perf_counter()
        r = requests.post(
            f"{url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": question}], "max_tokens": max_tokens},
            timeout=300,
        )
        r.raise_for_status()
        return time.perf_counter() - began, r.json()["choices"][0]["message"]["content"]

    for question in QUESTIONS[:4]:
        ask(question)  # warm-up
    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(ask, prompts))
    seconds = time.perf_counter() - began
    latencies = sorted(latency for latency, _ in results)
    return {
        "rps": len(prompts) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))] * 1000,
        "answers": [answer for _, answer in results],
    }


def serve(store_uri: str, home: Path, max_batch: int) -> ServerProcess:
    server = ServerProcess(
        free_port(),
        home / f"serve-{max_batch}.log",
        env={
            "FRESHLM_HOME": str(home),
            "FRESHLM_STORE_URI": store_uri,
            "FRESHLM_SERVE_MAX_BATCH": str(max_batch),
            "FRESHLM_SERVE_BACKEND": "transformers",
        },
    ).start()
    server.wait_ready(timeout_s=300)
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    prompts = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.requests)]
    with tempfile.TemporaryDirectory(prefix="freshlm-bench-serve-") as tmp:
        home = Path(tmp)
        build_model(home / "model")
        store = open_store((home / "store").as_uri())
        version, _ = publish_version(
            store, home / "model", lineage=Lineage(kind="bootstrap", source="bench/serve.py")
        )
        move_alias(store, PRODUCTION, version.version_id, actor="bench", reason="bench")
        figures = {}
        for label, max_batch in (("plain generate loop", 1), ("freshlm serve", 8)):
            server = serve(store.root_uri, home, max_batch)
            try:
                figures[label] = run(server.url, prompts, args.clients, args.max_tokens)
            finally:
                server.stop()
    base, ours = figures["plain generate loop"], figures["freshlm serve"]
    equal = base["answers"] == ours["answers"]
    print(f"{args.requests} requests, {args.clients} clients, {args.max_tokens} new tokens each")
    for label, f in figures.items():
        print(
            f"  {label:<20} {f['rps']:6.2f} req/s  "
            f"p50 {f['p50_ms']:7.1f} ms  p95 {f['p95_ms']:7.1f} ms"
        )
    print(
        f"  requests/s ratio {ours['rps'] / base['rps']:.2f} (goal >= 1.0); equal answers: {equal}"
    )
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
