"""The questions the model writes for a night's figures and dates (:mod:`training.
written_questions`), printed and saved for ``bench/knowledge_recipes.py --model-questions``.

    .venv/bin/python bench/model_questions.py --model BASE_FOLDER --store file:///H/store \
        --dataset ID --out questions.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from freshlm.artifacts import read_published_dataset
    from freshlm.store import open_store
    from training.written_questions import spans_to_ask, write_questions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a Hugging Face model folder")
    parser.add_argument("--store", required=True, help="the store URI holding the dataset")
    parser.add_argument("--dataset", required=True, help="the night's dataset id")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    store = open_store(args.store)
    documents = list(read_published_dataset(store, args.dataset).documents(store, "train"))
    began = time.perf_counter()
    kept, counts = write_questions(model, tokenizer, spans_to_ask(documents))
    args.out.write_text(json.dumps([q.to_dict() for q in kept], indent=1, ensure_ascii=False))
    print(
        f"{counts['spans']} spans asked, {counts['usable']} questions usable, "
        f"{counts['kept']} answered by their span from the sentence (kept), in "
        f"{time.perf_counter() - began:.0f} s, to {args.out}"
    )
    for q in kept:
        print(f"  [{q.span_type}] {q.question}  ->  {q.span}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
