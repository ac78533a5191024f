"""Questions for a night's spans written by the model itself, few-shot (``bench/
knowledge_recipes.py --model-questions``; a trial, see bench/RESULTS.md).

The augmentation's rules ask a span in its sentence's own words ("Every Pulse X2 is covered for
how many months …?") and, for sentences of the simple shape subject, verb, span, wh-word first;
a user's question is often neither. Asked in the chat template, SmolLM2-135M-Instruct cannot
write a question for a span (it restates the sentence). As a plain completion after four
demonstrations (sentence, answer, question; made up here, about no sandbox topic) it writes
one for most spans, some right and many wrong: the wrong type ("What is the Tessford Lantern
Festival?" for a date), a fact not in the sentence ("How many grams is a liter?"), the answer
inside the question. :func:`usable` keeps a question only when its wh-word fits the span's
type, it does not contain the span, and it names at least two words of the sentence and no
other content word; then the model, given the sentence, must answer it with the span rather
than with the sentence's other spans or three of the night's spans of its type (round-trip
consistency).

Everything comes from the night's documents and the model: nothing here reads the
evaluation's questions.

    .venv/bin/python bench/model_questions.py --model BASE_FOLDER --store file:///H/store \
        --dataset ID --out questions.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: Two sets of demonstrations, each a price, a date, a count and a person: the trial's result
#: holds for another set of made-up sentences (bench/RESULTS.md).
DEMONSTRATIONS = {}
DEMONSTRATIONS["a"] = """\
Sentence: The Northwind X5 laptop costs $1,299 and ships in March.
Answer: $1,299
Question: How much does the Northwind X5 laptop cost?

Sentence: Mayor Lena Ortiz said the new bridge over the Sava will open on June 4.
Answer: June 4
Question: When will the new bridge over the Sava open?

Sentence: Founded in 1998, Calder Foods employs about 3,400 people across five countries.
Answer: about 3,400
Question: How many people does Calder Foods employ?

Sentence: The study was led by the lab's director, Dr. Priya Raman, and published on Monday.
Answer: Dr. Priya Raman
Question: Who is the director of the lab that led the study?

"""
DEMONSTRATIONS["b"] = """\
Sentence: Tickets for the Harbour Line ferry now sell for €4.50, up from €3.80 last spring.
Answer: €4.50
Question: How much is a ticket for the Harbour Line ferry now?

Sentence: The Aurelia Film Week opens on 12 September with a restored silent comedy.
Answer: 12 September
Question: On what date does the Aurelia Film Week open?

Sentence: Rescue teams pulled 41 hikers off the Kestrel Ridge trail after the snowstorm.
Answer: 41
Question: How many hikers did rescue teams pull off the Kestrel Ridge trail?

Sentence: Chef Tomas Reyes, who runs the Saltmarsh Kitchen, won the regional cooking award.
Answer: Tomas Reyes
Question: Who runs the Saltmarsh Kitchen?

"""

#: The wh-openings that ask for each span type.
WH = {
    "price": ("how much",),
    "number": ("how many", "how much", "how long", "how far", "how old", "how big", "how heavy",
               "what percentage", "what share", "by how much"),
    "date": ("when", "what year", "what time", "what day", "what month", "what date",
             "which year", "which day", "in what year", "at what time", "since when"),
    "entity": ("who", "what", "which", "where"),
    "term": ("what", "which"),
}  # fmt: skip
#: Words a question may use that its sentence need not: wh-words, auxiliaries, articles,
#: pronouns and prepositions, and the few nouns a question names its answer by.
_FREE_WORDS = """how what when where which who whom whose why much many long far old big heavy
year time day month date percentage share is are was were be been being do does did have has
had will would can could should may might shall the a an of in on at to for from by with about
into over under after before since and or its it their they this that these those there name
called per new"""
FREE = frozenset(_FREE_WORDS.split())
#: Words of its sentence a question must name besides :data:`FREE` ones: "What is the name of
#: the bridge?" names one and singles out no fact of the night; it is also the shape of a general
#: question, which such a turn teaches to answer with the night's span.
MIN_TERMS = 2
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d[\d,.]*")


def _stem(word: str) -> str:
    return word.lower().removesuffix("'s")[:5]


def usable(question: str, sentence: str, span: str, span_type: str) -> bool:
    """Whether a written question asks for ``span`` in ``sentence``'s terms (see the module
    docstring)."""
    q = question.strip()
    words = q.split()
    if not q.endswith("?") or not 3 <= len(words) <= 25:
        return False
    if span.lower() in q.lower() or any(
        w in q for w in _WORD.findall(span) if any(c.isdigit() for c in w)
    ):
        return False
    if not q.lower().startswith(WH.get(span_type, ("what",))):
        return False
    known = {_stem(w) for w in _WORD.findall(sentence)}
    terms = [w for w in _WORD.findall(q) if w.lower() not in FREE and len(w) > 2]
    return len(terms) >= MIN_TERMS and all(_stem(w) in known for w in terms)


def write(model: Any, tokenizer: Any, sentence: str, span: str, demonstrations: str = "a") -> str:
    """The model's question for ``span`` of ``sentence`` (greedy, its first line)."""
    import torch

    prompt = f"{DEMONSTRATIONS[demonstrations]}Sentence: {sentence}\nAnswer: {span}\nQuestion:"
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(
            ids,
            max_new_tokens=28,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).split("\n")[0]


def answers_in_context(
    model: Any, tokenizer: Any, sentence: str, question: str, candidates: list[str]
) -> str:
    """The candidate the model ranks first as the answer to ``question`` asked with
    ``sentence`` before it in its chat template (mean log-probability of each candidate's
    tokens)."""
    import torch

    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": f"{sentence}\n\n{question}"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    head = tokenizer(prompt, return_tensors="pt").input_ids
    best, best_score = candidates[0], float("-inf")
    for candidate in candidates:
        tail = tokenizer(candidate, add_special_tokens=False, return_tensors="pt").input_ids
        ids = torch.cat([head, tail], dim=1)
        with torch.no_grad():
            logits = model(ids).logits[0, head.shape[1] - 1 : -1]
        score = logits.log_softmax(-1).gather(1, tail[0][:, None]).mean().item()
        if score > best_score:
            best, best_score = candidate, score
    return best


def night_questions(
    model: Any,
    tokenizer: Any,
    documents: list[dict],
    max_sentences: int,
    demonstrations: str = "a",
    rivals: int = 3,
) -> tuple[list[dict], dict[str, int]]:
    """``([{sentence, span, type, question}], counts)`` for the English documents' fact
    sentences (the augmentation's: the first ``max_sentences`` of each): each span's written
    question, kept when :func:`usable` and when the model, reading the sentence, answers it
    with the span rather than with the sentence's other spans or ``rivals`` of the night's
    other spans of its type (round-trip consistency, Alberti et al. 2019)."""
    from training.augment import document_topic, fact_sentences

    asked = []
    for doc in documents:
        if (doc.get("language") or "en") != "en":
            continue
        topic = document_topic(doc)
        for sentence in fact_sentences(doc.get("text") or "", "en")[:max_sentences]:
            for span in sentence.spans:
                if span.value != topic:
                    asked.append((sentence, span))
    counts = {"spans": len(asked), "usable": 0, "round_trip": 0}
    by_type: dict[str, list[str]] = {}
    for _, span in asked:
        by_type.setdefault(span.type, []).append(span.text)
    rng = random.Random(0)
    kept = []
    for sentence, span in asked:
        question = write(model, tokenizer, sentence.text, span.text, demonstrations).strip()
        if not usable(question, sentence.text, span.text, span.type):
            continue
        counts["usable"] += 1
        others = sorted({s.text for s in sentence.spans} - {span.text})
        pool = sorted(set(by_type[span.type]) - {span.text, *others})
        candidates = [span.text, *others, *rng.sample(pool, min(rivals, len(pool)))]
        if answers_in_context(model, tokenizer, sentence.text, question, candidates) != span.text:
            continue
        counts["round_trip"] += 1
        kept.append(
            {"sentence": sentence.text, "span": span.text, "type": span.type, "question": question}
        )
    return kept, counts


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from freshlm.artifacts import read_published_dataset
    from freshlm.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a Hugging Face model folder")
    parser.add_argument("--store", required=True, help="the store URI holding the dataset")
    parser.add_argument("--dataset", required=True, help="the night's dataset id")
    parser.add_argument("--max-sentences", type=int, default=12)
    parser.add_argument("--demonstrations", choices=sorted(DEMONSTRATIONS), default="a")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    store = open_store(args.store)
    documents = list(read_published_dataset(store, args.dataset).documents(store, "train"))
    began = time.perf_counter()
    kept, counts = night_questions(
        model, tokenizer, documents, args.max_sentences, args.demonstrations
    )
    args.out.write_text(json.dumps(kept, indent=1, ensure_ascii=False) + "\n")
    print(
        f"{counts['spans']} spans asked, {counts['usable']} questions usable, "
        f"{counts['round_trip']} answered by their span in context (kept), in "
        f"{time.perf_counter() - began:.0f} s, to {args.out}"
    )
    for row in kept:
        print(f"  [{row['type']}] {row['question']}  ->  {row['span']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
