"""Curation throughput: FreshLM's pipeline vs datatrove's comparable blocks, same corpus, same run.

    .venv/bin/python bench/curate.py [--docs 20000] [--seed 7] [--gate-docs 100000]

The corpus is built offline from the sandbox world's scenario (archive, articles, posts, papers)
with a fixed seed: English web pages recombined from article paragraphs (some with boilerplate
lines or PII appended), junk pages (menus, repeated lines, lorem ipsum, bullet lists, hashtag
spam, short pages), exact and near duplicates, English and Korean SNS posts, Korean news and
arXiv-style abstracts.

* FreshLM: the whole curation pipeline (``freshlm.curation.run.build_pipeline``: normalize,
  language ID, quality, exact + MinHash near-dup, PII, toxicity, split), single process.
* datatrove 0.10.1: GopherRepetitionFilter, GopherQualityFilter, C4QualityFilter,
  FineWebQualityFilter (English, default thresholds), PIIFormatter and an in-memory exact-dedup
  equivalent (sha1 of the text), called directly per document (no pipeline overhead, which
  favours datatrove).

Both are timed after a warm-up (model/tokenizer loading excluded). Agreement compares keep/drop
decisions of the quality rules on English web pages (``kind == "web"``), where FreshLM applies
the published defaults, and the exact-dedup decisions on all documents.

Gate share (``--gate-docs``, default 100,000; 0 skips it; ``--docs 0`` skips the comparison
above): a corpus of that many documents from the same builder, its web pages labelled ``news``
as the news crawler writes them (the gate accepts the crawlers' kinds only), is published as a
raw shard and curated with ``freshlm.curation.run.curate`` (timed: read the shard, every step,
write the candidate's files). The Great Expectations gate then runs on curation's output as
the DAG runs it (``expectations.verdict.gate_candidate``): train + heldout files, the
quarantine file, a window covering the corpus's dates, its sources allowed. Reported: curation
seconds, gate seconds as the gate splits them (load, validate, data_docs), the one-time
import of Great Expectations (paid once per gate task process) on its own, and the gate's
share of curation time with and without that import.

Requires the bench extras: ``pip install -r requirements-bench.txt -c constraints.txt`` and
``pip install --no-deps datatrove==0.10.1`` (its ``[processing]`` extra pins an old trafilatura).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.machine import describe
from freshlm.curation.config import CurationConfig
from freshlm.curation.run import build_pipeline
from sandbox.records import (
    archive_records,
    day_records,
)
from sandbox.scenario import load_scenario

JUNK_MENU = "Home News Sport Weather Contact About Shop Login Signup Search Help Careers"
BOILERPLATE = [
    "Read more",
    "Share this article",
    "This site uses cookies. By continuing you accept our cookie policy.",
    "Please enable JavaScript to view the comments.",
    "Sign up for our newsletter",
    "Advertisement",
]
PII_LINES = [
    "Contact the newsroom at news.desk{n}@courier.example or call +44 20 7946 0{n:03d}.",
    "Questions? Write to reader{n}@mail.example, phone (555) 123-{n:04d}.",
    "Server status: 203.0.113.{ip} answered; card on file 4111 1111 1111 1111.",
]
LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."


def _record(rid: int, kind: str, text: str, language: str | None = "en") -> dict[str, Any]:
    return {
        "id": hashlib.sha256(f"bench:{rid}".encode()).hexdigest()[:32],
        "source": "bench",
        "kind": kind,
        "url": f"https://bench.example/{rid}",
        "title": None,
        "text": text,
        "language": language,
        "published_at": "2026-11-02T08:00:00Z",
        "fetched_at": "2026-11-02T09:00:00Z",
        "author": None,
        "meta": {},
    }


def build_corpus(n_docs: int, seed: int) -> list[dict[str, Any]]:
    """``n_docs`` raw records, deterministic for ``seed``."""
    rng = random.Random(seed)
    scenario = load_scenario()
    articles = archive_records(scenario)
    for day in scenario.days:
        articles += [r for r in day_records(scenario, day.date) if r["kind"] == "news"]
    en_paras = [p for r in articles if r["language"] == "en" for p in r["text"].split("\n\n")]
    ko_paras = [p for r in articles if r["language"] == "ko" for p in r["text"].split("\n\n")]
    posts = [r["text"] for d in scenario.days for r in day_records(scenario, d.date)]
    posts = [t for t in posts if len(t) < 600] + [
        p.text for p in scenario.posts if p.text and p.reblog_of is None
    ]
    abstracts = [p.abstract for p in scenario.papers]
    words = re.findall(r"[A-Za-z]{4,}", " ".join(en_paras[:400]))

    out: list[dict[str, Any]] = []
    web: list[str] = []

    def page() -> str:
        paras = rng.sample(en_paras, rng.randint(3, 7))
        roll = rng.random()
        if roll < 0.25:
            paras.insert(rng.randrange(len(paras) + 1), rng.choice(BOILERPLATE))
        elif roll < 0.35:
            paras.append(rng.choice(PII_LINES).format(n=rng.randrange(1000), ip=rng.randrange(256)))
        return "\n\n".join(paras)

    def junk() -> str:
        kind = rng.randrange(6)
        if kind == 0:
            return "\n".join(f"{JUNK_MENU} {rng.choice(words)}" for _ in range(rng.randint(8, 20)))
        if kind == 1:
            line = rng.choice(en_paras)
            return "\n".join([line] * rng.randint(3, 8))
        if kind == 2:
            return page() + "\n\n" + LOREM
        if kind == 3:
            return "\n".join(f"- {' '.join(rng.sample(words, 4))}" for _ in range(40))
        if kind == 4:
            return " ".join(f"#{w}" for w in rng.sample(words, 60)) + " the best of deals"
        return " ".join(rng.sample(words, rng.randint(5, 30)))

    def near(text: str) -> str:
        text = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), text)
        tokens = text.split(" ")
        for _ in range(2):
            tokens[rng.randrange(len(tokens))] = rng.choice(words)
        return " ".join(tokens)

    while len(out) < n_docs:
        rid = len(out)
        roll = rng.random()
        if roll < 0.58 or not web:
            text = page()
            web.append(text)
            out.append(_record(rid, "web", text))
        elif roll < 0.68:
            out.append(_record(rid, "web", junk()))
        elif roll < 0.72:
            out.append(_record(rid, "web", rng.choice(web)))  # exact duplicate
        elif roll < 0.76:
            out.append(_record(rid, "web", near(rng.choice(web))))  # near duplicate
        elif roll < 0.90:
            text = rng.choice(posts)
            if rng.random() < 0.7:
                text = f"{text} {rng.choice(words).lower()} {rng.randrange(10000)}"
            out.append(_record(rid, "sns", text, None))
        elif roll < 0.95:
            text = "\n\n".join(rng.sample(ko_paras, min(len(ko_paras), rng.randint(3, 6))))
            out.append(_record(rid, "news", text, "ko"))
        else:
            sentences = re.split(r"(?<=\.) ", rng.choice(abstracts))
            rng.shuffle(sentences)
            out.append(_record(rid, "paper", " ".join(sentences)))
    return out


def datatrove_compatible() -> CurationConfig:
    """FreshLM's config with its one documented departure on web pages undone (Gopher's
    alphabetic-word share over all tokens, as datatrove computes it)."""
    config = CurationConfig()
    web = config.quality.kinds["web"]
    gopher = dataclasses.replace(web.gopher, alpha_ratio_counts_punctuation=True)
    kinds = {**config.quality.kinds, "web": dataclasses.replace(web, gopher=gopher)}
    quality = dataclasses.replace(config.quality, kinds=kinds)
    return dataclasses.replace(config, quality=quality)


def run_freshlm(
    corpus: list[dict[str, Any]], config: CurationConfig | None = None
) -> tuple[float, dict[str, str]]:
    """Seconds and each document's outcome ("keep" or the drop reason)."""
    docs = [dict(r) for r in corpus]
    quarantined: list[dict[str, Any]] = []
    pipeline = build_pipeline(config or CurationConfig(), quarantined.append)
    start = time.perf_counter()
    kept = list(pipeline(docs))
    seconds = time.perf_counter() - start
    outcome = {d["id"]: "keep" for d in kept}
    outcome.update({d["id"]: d["reason"] for d in quarantined})
    return seconds, outcome


def run_datatrove(corpus: list[dict[str, Any]]) -> tuple[float, dict[str, str]]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter

    filters = [
        ("gopher_rep", GopherRepetitionFilter()),
        ("gopher", GopherQualityFilter()),
        ("c4", C4QualityFilter()),
        ("fineweb", FineWebQualityFilter()),
    ]
    pii = PIIFormatter()
    docs = [Document(text=r["text"], id=r["id"], metadata={}) for r in corpus]
    seen: set[bytes] = set()
    outcome: dict[str, str] = {}
    start = time.perf_counter()
    for doc in docs:
        verdict = "keep"
        for name, f in filters:
            result = f.filter(doc)
            ok, reason = result if isinstance(result, tuple) else (result, "")
            if not ok:
                verdict = f"{name}:{reason}"
                break
        if verdict == "keep":
            doc.text = pii.format(doc.text)
            key = hashlib.sha1(doc.text.encode()).digest()
            if key in seen:
                verdict = "exact_dedup"
            else:
                seen.add(key)
        outcome[doc.id] = verdict
    return time.perf_counter() - start, outcome


def run_gate_share(n_docs: int, seed: int) -> dict[str, Any]:
    """Curate ``n_docs`` documents with :func:`freshlm.curation.run.curate`, then gate the
    candidate as the DAG does; seconds of each, and the gate's verdict."""
    from freshlm.artifacts import HELDOUT_FILE, QUARANTINE_FILE, TRAIN_FILE
    from freshlm.curation.run import curate
    from freshlm.store import open_store

    corpus = build_corpus(n_docs, seed)
    for record in corpus:
        if record["kind"] == "web":
            record["kind"] = "news"  # what the news crawler writes; the gate knows no "web"
    dates = sorted(r["published_at"] for r in corpus)
    first = datetime.fromisoformat(dates[0]).astimezone(UTC)
    last = datetime.fromisoformat(dates[-1]).astimezone(UTC)
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    end = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    window = (start.isoformat().replace("+00:00", "Z"), end.isoformat().replace("+00:00", "Z"))
    sources = sorted({r["source"] for r in corpus})
    mb = sum(len(r["text"].encode("utf-8")) for r in corpus) / 1e6

    with tempfile.TemporaryDirectory(prefix="freshlm-bench-gate-") as tmp:
        folder = Path(tmp)
        store = open_store((folder / "store").as_uri())
        shards = []
        for source in sources:
            prefix = f"raw/{source}/{start:%Y%m%d}"
            with store.publisher(prefix, kind="raw-shard") as pub:
                pub.write_jsonl("records.jsonl.gz", [r for r in corpus if r["source"] == source])
                pub.write_jsonl("quarantine.jsonl.gz", [])
            shards.append(store.uri_for(prefix))
        del corpus
        run_freshlm(build_corpus(50, seed))  # warm-up: language model, tokenizer

        began = time.perf_counter()
        candidate = curate(shards, store, window=window, out_dir=folder / "candidate")
        curate_s = time.perf_counter() - began

        # The gate task's one-time import (run_gate imports these on first use).
        began = time.perf_counter()
        import great_expectations  # noqa: F401

        from expectations import docs_site, findings, suites  # noqa: F401

        import_s = time.perf_counter() - began

        from expectations.config import GateContext
        from expectations.gate import run_gate

        out = folder / "candidate"
        context = GateContext(
            window_start=start, window_end=end, allowed_sources=sources, run_name="bench"
        )
        began = time.perf_counter()
        result = run_gate(
            [out / TRAIN_FILE, out / HELDOUT_FILE],
            context=context,
            quarantine=out / QUARANTINE_FILE,
            data_docs_dir=folder / "data_docs",
        )
        gate_s = time.perf_counter() - began
    summary = candidate.summary
    return {
        "documents": n_docs,
        "mb": mb,
        "window": window,
        "kept": summary["kept"],
        "quarantined": summary["dropped"],
        "curate_s": curate_s,
        "import_s": import_s,
        "gate_s": gate_s,
        "gate_split": result.statistics["seconds"],
        "severity": result.severity,
        "failures": [(f["check"], f["column"], f["unexpected_count"]) for f in result.failures],
    }


def print_gate_share(r: dict[str, Any]) -> None:
    split = r["gate_split"]
    print(
        f"gate share: {r['documents']} documents ({r['mb']:.1f} MB, web pages as news), "
        f"window {r['window'][0]}..{r['window'][1]}"
    )
    print(
        f"  curation (curate(): shard in, candidate out): {r['curate_s']:7.2f} s "
        f"({r['documents'] / r['curate_s']:.0f} docs/s, kept {r['kept']}, "
        f"quarantined {r['quarantined']})"
    )
    print(
        f"  gate (run_gate): {r['gate_s']:7.2f} s = load {split['load']:.2f} + validate "
        f"{split['validate']:.2f} + data_docs {split['data_docs']:.2f}"
    )
    print(f"  great_expectations import (once per gate task): {r['import_s']:.2f} s")
    print(f"  verdict: {r['severity']}; failures: {r['failures']}")
    share = r["gate_s"] / r["curate_s"]
    with_import = (r["gate_s"] + r["import_s"]) / r["curate_s"]
    print(f"gate/curation: {share:.1%} (goal < 10%); with the import: {with_import:.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--gate-docs",
        type=int,
        default=100_000,
        help="documents for the gate-share measurement (0: skip it)",
    )
    args = parser.parse_args()
    if args.docs <= 0:
        print(f"machine: {describe()}")
    else:
        compare(args)
    if args.gate_docs > 0:
        print_gate_share(run_gate_share(args.gate_docs, args.seed))
    return 0


def compare(args: argparse.Namespace) -> None:
    corpus = build_corpus(args.docs, args.seed)
    mb = sum(len(r["text"].encode("utf-8")) for r in corpus) / 1e6
    kinds = Counter(r["kind"] for r in corpus)
    print(f"machine: {describe()}")
    print(f"corpus: {len(corpus)} documents, {mb:.1f} MB, kinds {dict(kinds)}, seed {args.seed}")

    # Warm-up: load py3langid's model and spaCy's tokenizer outside the timed runs.
    run_freshlm(corpus[:50])
    run_datatrove(corpus[:50])

    fl_s, fl = run_freshlm(corpus)
    dt_s, dt = run_datatrove(corpus)
    print(
        f"freshlm:   {len(corpus) / fl_s:8.0f} docs/s {mb / fl_s:6.2f} MB/s ({fl_s:.1f} s, "
        f"kept {sum(v == 'keep' for v in fl.values())})"
    )
    print(
        f"datatrove: {len(corpus) / dt_s:8.0f} docs/s {mb / dt_s:6.2f} MB/s ({dt_s:.1f} s, "
        f"kept {sum(v == 'keep' for v in dt.values())})"
    )
    print(f"ratio freshlm/datatrove: {dt_s / fl_s:.2f}x")

    # Quality decisions on English web pages: FreshLM drops before dedup (normalize, language,
    # quality) vs datatrove's four filters.
    def fl_quality_drop(v: str) -> bool:
        return v.split(":")[0] in ("normalize", "language", "quality")

    def dt_quality_drop(v: str) -> bool:
        return v not in ("keep", "exact_dedup")

    web = [r["id"] for r in corpus if r["kind"] == "web"]
    agree = sum(fl_quality_drop(fl[i]) == dt_quality_drop(dt[i]) for i in web)
    print(f"quality keep/drop agreement on {len(web)} English web pages: {agree / len(web):.1%}")
    _, compat = run_freshlm(corpus, datatrove_compatible())
    agree_c = sum(fl_quality_drop(compat[i]) == dt_quality_drop(dt[i]) for i in web)
    print(
        "  with the alphabetic-word departure undone (datatrove's token denominator): "
        f"{agree_c / len(web):.1%}"
    )
    disagree = Counter(
        (fl[i] if fl_quality_drop(fl[i]) else "keep", dt[i] if dt_quality_drop(dt[i]) else "keep")
        for i in web
        if fl_quality_drop(fl[i]) != dt_quality_drop(dt[i])
    )
    for (f, d), n in disagree.most_common(8):
        print(f"  disagree {n:5d}: freshlm={f} datatrove={d}")
    both = [i for i in fl if not fl_quality_drop(fl[i]) and not dt_quality_drop(dt[i])]
    exact_agree = sum((fl[i] == "dedup:exact") == (dt[i] == "exact_dedup") for i in both)
    print(
        f"exact-dedup agreement on {len(both)} documents both kept past quality: "
        f"{exact_agree / max(len(both), 1):.1%}"
    )
    print(f"freshlm drops by reason: {dict(Counter(v for v in fl.values()).most_common(12))}")
    print(f"datatrove drops by reason: {dict(Counter(v for v in dt.values()).most_common(12))}")


if __name__ == "__main__":
    raise SystemExit(main())
