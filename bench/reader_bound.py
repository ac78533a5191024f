"""What the base answers when it reads the news instead of learning it: a bound for the bars.

    .venv/bin/python bench/reader_bound.py --home H [--night 1] [--threads 2] [--model FOLDER]

The evaluator's new-fact questions of one night (the world's probes of its window, as
``bench/knowledge_recipes.py`` reads them) asked to the untrained base (``--model``: a
trained candidate's folder instead) with documents of the night in front of the question, in
its chat template ("{documents}\\n\\nQuestion: {question}"):

- ``none``: no document, the base as the evaluator meets it before night 1;
- ``retrieved``: the night's document that shares the most question words with the *asked*
  question (words weighted by their inverse document frequency over the night), the context
  a retrieval reader would give it;
- ``gold``: of the night's documents that state the answer, the one that shares the most
  question words with it: a retrieval that never misses, the base reading the right page;
- ``night``: every document of the question's night, the whole news the model is meant to
  know, in their published order;
- ``sentences``: the three fact sentences of the night (``training.augment.fact_sentences``,
  each under its page's title) sharing the most question words, a retrieval of units shorter
  than a page;
- ``qa``: the three span turns of the night's augmentation (``training.augment
  .document_forms``: a question answered by a figure, date or name) sharing the most question
  words, as "Q: …\nA: …": the augmentation's own questions as worked examples.

For each it prints what the evaluator prints for a candidate: ranked accuracy (the choices
after the chat prompt, per byte), the wrong-question control as the evaluator builds it
(:func:`freshlm.evaluation.world_facts.wrong_question_controls`: the next fact's question,
mostly about the same subject), a control under the question sharing the fewest words
(another subject), and said (greedy, 32 tokens, :func:`answer_matches`). A reader uses the
asked question by construction: under another question its context is that question's, so
the controls measure what a model that knows the night and uses the question scores on
them. A diagnostic, never a recipe: it reads the probes.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONTEXTS = ("none", "retrieved", "gold", "night", "sentences", "qa")
UNIT_CONTEXTS = ("sentences", "qa")  # contexts read from the night's units, not its pages

UNITS = 3  # sentences or turns a reader of units is given


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def overlap_scores(question: str, texts: list[str]) -> list[float]:
    """Each of ``texts`` scored by the words it shares with ``question``, each weighted by its
    inverse document frequency over ``texts``."""
    bags = [set(words(t)) for t in texts]
    df = Counter(w for bag in bags for w in bag)
    asked = set(words(question))
    return [sum(math.log(len(bags) / df[w]) for w in asked & bag) for bag in bags]


def retrieve(question: str, documents: list[dict], among: list[dict] | None = None) -> dict:
    """The document of ``among`` (default: all ``documents``) sharing the most of
    ``question``'s words, each weighted by its inverse document frequency over ``documents``
    (ties: the first)."""
    scores = overlap_scores(question, [f"{d.get('title') or ''} {d['text']}" for d in documents])
    pool = [i for i, d in enumerate(documents) if among is None or d in among]
    return documents[max(pool, key=lambda i: scores[i])]


def stating(answer: str, documents: list[dict]) -> list[dict]:
    """The documents whose text states ``answer`` (:func:`answer_matches`)."""
    from freshlm.evaluation.answers import answer_matches

    return [d for d in documents if answer_matches(answer, d["text"])]


def units(documents: list[dict], context: str) -> list[str]:
    """The night's fact sentences under their titles (``sentences``) or its span turns
    (``qa``, the augmentation's questions answered by their spans)."""
    from training.augment import QA, document_forms, fact_sentences

    out: list[str] = []
    for d in documents:
        title = (d.get("title") or "").strip()
        if context == "sentences":
            for s in fact_sentences(d["text"], d.get("language") or "en"):
                out.append(f"{title}: {s.text}" if title else s.text)
        else:
            for f in document_forms(d):
                if isinstance(f, QA) and f.span_type:
                    out.append(f"Q: {f.question}\nA: {f.answer}")
    return list(dict.fromkeys(out))


def top_units(question: str, pool: list[str], k: int = UNITS) -> list[str]:
    """The ``k`` texts of ``pool`` sharing the most of ``question``'s words (IDF-weighted, as
    :func:`retrieve`), in ``pool``'s order."""
    scores = overlap_scores(question, pool)
    best = sorted(range(len(pool)), key=lambda i: -scores[i])[:k]
    return [pool[i] for i in sorted(best)]


def reading(
    question: str,
    answer: str,
    documents: list[dict],
    context: str,
    pool: list[str] | None = None,
) -> str:
    """The user's turn: ``question`` (whose answer is ``answer``) after the documents
    ``context`` names; ``pool``: the night's :func:`units` of ``context``, when the caller
    has them already."""
    if context == "none":
        return question
    if context in UNIT_CONTEXTS:
        chosen = top_units(question, pool if pool is not None else units(documents, context))
        return "\n".join(chosen) + f"\n\nQuestion: {question}"
    if context == "night":
        chosen = documents
    else:
        among = (stating(answer, documents) or None) if context == "gold" else None
        chosen = [retrieve(question, documents, among)]
    pages = "\n\n".join(f"{d.get('title') or ''}\n{d['text']}".strip() for d in chosen)
    return f"{pages}\n\nQuestion: {question}"


def bound(model: Any, tok: Any, facts: list[Any], documents: list[dict], context: str) -> dict:
    """Ranked, control, far control and said of ``facts`` read with ``context``."""
    from bench.knowledge_recipes import fact_question, farthest_question
    from freshlm.evaluation.answers import answer_matches, generate_answers, question_prompt
    from freshlm.evaluation.scoring import CausalLMScorer
    from freshlm.evaluation.world_facts import wrong_question_controls

    questions = [fact_question(f) for f in facts]
    at = {f.context: i for i, f in enumerate(facts)}
    controls = [at[c.context] for c in wrong_question_controls(facts)]
    far = [farthest_question(questions, i) for i in range(len(facts))]

    answers = [f.choices[f.answer_index] for f in facts]

    pool = units(documents, context) if context in UNIT_CONTEXTS else None

    def prompt(asked: int) -> str:
        turn = reading(questions[asked], answers[asked], documents, context, pool)
        return question_prompt(tok, turn).rstrip()

    asked = list(range(len(facts))) + controls + far
    items = [*facts, *facts, *facts]
    results = CausalLMScorer(model, tok, batch_size=4).rank_items(
        items, contexts=[prompt(j) for j in asked]
    )
    n = len(facts)
    acc = [sum(r.correct for r in results[k * n : (k + 1) * n]) / n for k in range(3)]
    turns = [
        reading(q, a, documents, context, pool) for q, a in zip(questions, answers, strict=True)
    ]
    if context == "retrieved" or context in UNIT_CONTEXTS:
        hits = sum(
            answer_matches(a, t.rpartition("\n\nQuestion: ")[0])
            for t, a in zip(turns, answers, strict=True)
        )
        print(f"   what it reads states the answer for {hits} of {len(facts)}")
    said = generate_answers(model, tok, turns, max_new_tokens=32, batch_size=1)
    right = [answer_matches(f.choices[f.answer_index], t) for f, t in zip(facts, said, strict=True)]
    for q, f, t, ok in zip(questions, facts, said, right, strict=True):
        print(f"   {ok!s:5} {q} -> {t[:80]!r} [{f.choices[f.answer_index]}]")
    return {"ranked": acc[0], "control": acc[1], "far_control": acc[2], "said": sum(right) / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="a bench/knowledge_recipes.py home")
    parser.add_argument("--night", type=int, default=1, choices=[1, 2, 3])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--contexts", nargs="+", default=list(CONTEXTS), choices=CONTEXTS)
    parser.add_argument("--model", type=Path, help="a model folder to ask instead of the base")
    args = parser.parse_args(argv)

    from bench.knowledge_recipes import load_base, world_nights

    store, _, tok, model = load_base(Path(args.home), args.threads)
    if args.model:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.model)
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=model.dtype)
    model.eval()
    before = len(world_nights(store, args.night - 1)[1]) if args.night > 1 else 0
    nights, facts = world_nights(store, args.night)
    facts = facts[before:]  # this night's window only
    print(f"night {args.night}: {len(facts)} facts, {len(nights[-1])} documents")
    for context in args.contexts:
        row = bound(model, tok, facts, nights[-1], context)
        print(f"[{context}] " + " ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
