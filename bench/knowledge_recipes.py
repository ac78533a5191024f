"""Knowledge recipes on the pretrained base, fast: top blocks trained on cached lower blocks.

    .venv/bin/python bench/knowledge_recipes.py --layers 8 --lr 1e-3 --epochs 8 \\
        --answer-only --eval-every 4 [--rivals 3] [--nights 1]

A recipe trial without the DeepSpeed launcher, to learn which recipe stores a night's facts
before the product path (``bench/knowledge.py``) spends its minutes on it. The sandbox world's
days are curated, gated and published as the demo's nights are (``bench.knowledge
.publish_day``); the training texts are the knowledge augmentation of the nights' train
documents (``training.augment.document_forms`` in the model's chat template). With ``--rivals K``,
each question answered by a span is also written with K of the night's other spans of that
type as its answer, and a ranking loss (``--rank-weight``) keeps the right answer's mean token
log-probability above each rival's: the answer is bound to its question, not just learned.

Only the top ``--layers`` blocks train, so the frozen blocks below give the same output for a
text every epoch: it is computed once (forward only) and cached, and each epoch runs the top
blocks alone. ``--answer-only`` puts the loss on the assistant's answers only (plain
statements keep every token), and the output head then runs on those positions only.

``--rehearse N`` trains N of the base's own question-answer turns each epoch
(``training.rehearsal``, cached in the home folder); ``--rehearse-rivals K`` ranks K of the
night's span answers below the base's own answer to each rehearsal question;
``--unlikelihood W`` adds ``W * -log(1 - p)`` of each rival's first token that differs from
the right answer. ``--general`` also asks the base's general-knowledge set
(``freshlm.evaluation.general_knowledge``) after training.

``--patch K`` trains K new SwiGLU neurons beside each trained block's MLP instead of any of
the base's weights (their output projection starts at zero), and ``--patch-quiet W`` keeps
their output small at the tokens of the rehearsal turns: an update whose gates can close on
what the night is not about. ``--patch-keys A`` starts each new neuron keyed on one of the
night's labelled positions instead of at random.

``--repair N`` trains N more passes over the rehearsal turns alone after the night;
``--sentence-turns-only`` leaves out the turns answered by a span alone.

``--project E`` keeps each trained weight's update off the subspace holding a share E of the
energy of its inputs over the rehearsal turns (gradient projection memory; AlphaEdit's null
space): the base's own turns pass the trained blocks as before, and the night learns in the
directions they leave free.

``--in-context N`` has the base answer each span question with the span's sentence before it
in the prompt (up to N tokens, the first paragraph kept where it states the span) and trains
those answers after the question alone on the base's top-k distribution given the sentence:
the night's facts in the base's own words, from a teacher that read them (context
distillation).

The lower blocks' outputs and the base's rehearsal distribution are kept in the home
(``recipe-cache/``) under the hash of the texts and the cut, so repeated trials of a night
skip them.

``--neutral K`` asks each span answer under K of the night's other questions, beside a foil
(its figures changed, or a rival name), and a loss keeps the two equally likely there: the
span is to be preferred under its own question only.

Measured before and every ``--eval-every`` epochs, the whole model reassembled: the world's
new-fact questions of the nights ranked as the evaluator ranks them (``Question: …\\nAnswer:``),
the wrong-question control, the same two in the chat template, and the questions answered in
the model's own words (greedy, :func:`freshlm.evaluation.answers.answer_matches`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe  # noqa: E402

DAYS = {1: 1, 2: 3, 3: 4}  # night -> scenario day, as bench/knowledge.py


#: Recipe options beyond the basics: flag, type (None: a switch), default, help.
_OPTIONS: tuple[tuple[str, Any, Any, str], ...] = (
    ("--unlikelihood", float, 0.0,
     "weight of -log(1 - p) on each rival's first token that differs from the right answer"),
    ("--threads", int, 2, "torch threads"),
    ("--seed", int, 0, "seed of the batches' order (a second seed repeats a trial)"),
    ("--bf16", None, False,
     "train and cache under CPU autocast to bfloat16 (fp32 weights and optimizer)"),
    ("--home", str, None, "FRESHLM_HOME to reuse (default: a new temporary one)"),
    ("--skip-before", None, False, "do not measure the base before training (it is the same "
     "in every trial of a night)"),
    ("--rehearse", int, 0,
     "the base's own question-answer turns trained beside the night's (training.rehearsal)"),
    ("--rehearse-rivals", int, 0,
     "the night's span answers ranked below the base's own answer to each rehearsal turn"),
    ("--rehearse-forms", int, 0,
     "also ask back up to this many spans of each rehearsal answer in the night's question "
     "forms (training.augment), with rivals, answered by the base's own span"),
    ("--rehearse-shaped", int, 0,
     "also this many of the base's own turns asked after the night's question openings (each "
     "question up to its first name: 'What is the battery capacity of the'), so the night's "
     "question shapes keep the base's answers about other subjects"),
    ("--span-turns-only", None, False,
     "leave out the turns answered by a whole sentence (keep the span answers)"),
    ("--sentence-turns-only", None, False,
     "leave out the turns answered by a span alone (keep those answered by a sentence): the "
     "answers keep the base's whole-sentence form"),
    ("--subject-first", None, False,
     "answer a span turn with its document's topic first ('Pulse X2: $649'): the first "
     "answer token copies the subject, so a general question's answer starts from its own"),
    ("--distill", int, 0,
     "train the rehearsal turns on the base's top-k next-token distribution at each answer "
     "token (k = this; 0: on the base's greedy tokens)"),
    ("--general", None, False,
     "also ask the base's general-knowledge set (freshlm.evaluation.general_knowledge)"),
    ("--lora", int, 0,
     "train rank-r LoRA adapters on the trained blocks' projections (peft) instead of "
     "their weights (r = this; 0: the weights)"),
    ("--patch", int, 0,
     "add this many new SwiGLU neurons beside each trained block's MLP and train only them, "
     "the base's weights frozen (0: train the blocks' weights)"),
    ("--patch-quiet", float, 0.0,
     "weight of the new neurons' squared output, relative to their input's, on the "
     "rehearsal turns: keeps them silent on what the night is not about"),
    ("--patch-keys", float, 0.0,
     "start each new neuron keyed on one labelled position of the night's turns (its MLP "
     "input there, centred on the rehearsal turns' mean and made orthogonal to it), so it "
     "fires there from the first step with this gate pre-activation; the gate and up "
     "projections then train at --patch-key-lr times the rate (0: random start)"),
    ("--patch-key-lr", float, 1.0, "the rate of the keyed neurons' gate and up, times --lr"),
    ("--neutral", int, 0,
     "for each span answer, this many of the night's other questions each asked with it and "
     "with a foil (its figures changed, or a rival name), and a loss keeping the two equally "
     "likely there: an answer is preferred only under its own question"),
    ("--neutral-weight", float, 1.0, "weight of the --neutral loss"),
    ("--repair", int, 0,
     "after training, this many more passes over the rehearsal turns alone (a consolidation "
     "of what the base knew, the night's turns left out), then evaluated again"),
    ("--repair-lr", float, 0.3, "the --repair passes' rate, times --lr"),
    ("--own-words", None, False,
     "also answer each figure's question in the base's own answer to it, the figure put where "
     "the base's own figure starts (bench/own_words.py), with rivals in the same words"),
    ("--merge", str, "",
     "after training, also evaluate the model moved back toward the base: each trained "
     "weight at base + a * (trained - base), for each comma-separated a (WiSE-FT)"),
    ("--sparsify", str, "",
     "after training, also evaluate the update kept at its largest entries only: for each "
     "comma-separated fraction f, each trained tensor's f largest changes kept, the rest "
     "back at the base (task-vector trimming: TIES, LoTA)"),
    ("--project", float, 0.0,
     "keep each trained weight's update off the inputs the base's own turns give it: the "
     "update's rows projected each step onto the complement of the subspace holding this "
     "fraction of those inputs' energy (gradient projection, Saha et al. 2021; AlphaEdit's "
     "null space, Fang et al. 2025), so the base's own turns pass the trained blocks as "
     "before; the blocks' norms are frozen (0: no projection)"),
    ("--in-context", int, 0,
     "also train each span question answered as the base answers it with the span's sentence "
     "in its prompt (greedy, up to this many tokens; kept where the answer states the span), "
     "on the base's top-k distribution given that sentence (k of --distill, else 32): the "
     "night's facts in the base's own words and form (context distillation, Snell et al. "
     "2022; Kujanpää et al. 2024)"),
    ("--in-context-hard", None, None,
     "train --in-context's answers on their own tokens (the base's greedy answer as a plain "
     "turn) instead of on the base's distribution given the sentence"),
    ("--variants", int, 0,
     "also ask each span question in up to this many other wordings by rule "
     "(training.question_variants), answered by the span"),
    ("--model-questions", str, "",
     "also ask each span in the questions this JSON file holds for it (bench/"
     "model_questions.py: written by the model itself, few-shot, from the night's sentences; "
     "training.written_questions), answered by the span"),
    ("--noise", int, 0,
     "also ask each span question in this many noised copies, each word but the first "
     "dropped with probability 0.15 and one pair of neighbours swapped half the time (Wei & "
     "Zou 2019, EDA), answered by the span: an answer keyed on the question's content words, "
     "not its exact wording"),
    ("--warmup", int, 10, "steps of linear warm-up before the rate decays linearly"),
    ("--beta2", float, 0.999,
     "AdamW's second-moment decay (0.95 adapts to a change in gradient scale within ~20 "
     "steps, 0.999 within ~1,000)"),
    ("--token-sum", None, False,
     "each batch's loss the sum of its trained tokens' losses over the epoch's mean trained "
     "tokens per batch, instead of their mean: every trained token weighs the same whatever "
     "batch it falls in (a batch of few answers no longer weighs each of them more)"),
    ("--trace", int, 0,
     "print the loss, the gradient norm before clipping and the rate of each of the first "
     "this many steps"),
    ("--appositions", None, False,
     "also state and ask each sentence's appositions as sentences of their own "
     "(training.appositions: 'LexiDrift, a benchmark of …' as 'LexiDrift is a benchmark of …')"),
    ("--pages", int, 0,
     "also train each of the night's documents (title, then text) as plain text, cut into "
     "pieces of this many tokens, as the product trains its pages among its rows (0: none)"),
    ("--replay", float, 0.0,
     "also train pieces (of --pages tokens, else 128) of the base corpus's documents so they "
     "make this share of an epoch's tokens, as the product replays earlier data (0: none)"),
    ("--rivals-apart", int, 0,
     "train each span answer without its rivals in its batch, and rank this many rival groups "
     "(right answer and rivals, compared only) beside every step's batch, in turn, as the "
     "product's trainer does (training.rivals.rival_trainer_class; 0: each span answer's "
     "rivals in its own batch)"),
    ("--oracle", None, False,
     "DIAGNOSTIC, never a recipe: also train the evaluation's own new-fact questions, each "
     "answered by its answer with its distractors ranked below: what this update reaches when "
     "the questions asked are the questions trained (an upper bound on said and a floor on "
     "the control)"),
    ("--sparse-retrain", float, 0.0,
     "then train again from the base with only this fraction of each tensor's entries free: "
     "those the first training changed most (Lottery Ticket Adaptation, Panda et al. 2024)"),
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=8, help="top blocks trained")
    parser.add_argument(
        "--first-block", type=int, default=None,
        help="train blocks [first, first + layers) and keep the blocks above frozen "
        "(default: the top --layers blocks)",
    )  # fmt: skip
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--nights", type=int, default=1, choices=[1, 2, 3])
    parser.add_argument("--answer-only", action="store_true")
    parser.add_argument("--max-sentences", type=int, default=12)
    parser.add_argument("--eval-every", type=int, default=0)
    parser.add_argument(
        "--rivals", type=int, default=0, help="rival answers ranked below each span answer"
    )
    parser.add_argument("--rank-weight", type=float, default=1.0)
    for flag, kind, default, text in _OPTIONS:
        if kind is None:
            parser.add_argument(flag, action="store_true", help=text)
        else:
            parser.add_argument(flag, type=kind, default=default, help=text)
    return parser.parse_args(argv)


def world_nights(store: Any, nights: int) -> tuple[list[list[dict]], list[Any]]:
    """Each night's train documents and the world's new-fact items of its window."""
    from bench.knowledge import publish_day
    from freshlm.artifacts import read_published_dataset
    from freshlm.evaluation.world_facts import fetch_world_probes, learnable_facts
    from sandbox.server import WorldServer

    documents, facts = [], []
    with WorldServer(port=0) as world:
        for number in range(1, nights + 1):
            dataset_id, window = publish_day(store, DAYS[number])
            world.clock.set(world.parse_when(window["end"]))
            facts += learnable_facts(fetch_world_probes(world.url), [window])
            dataset = read_published_dataset(store, dataset_id)
            documents.append(list(dataset.documents(store, "train")))
    return documents, facts


def training_texts(
    documents: list[dict],
    tokenizer: Any,
    args: argparse.Namespace,
    rehearsal: list[Any],
    answer: Any = None,
    in_context: list[tuple[str, str, str]] | None = None,
) -> tuple[list[str], list[list[int]], set[int], list[tuple[int, int]], dict[int, str]]:
    """The training texts, for each turn answered by a span with ``--rivals`` the group
    ``[its text, the same question answered by each rival]`` (indices into the texts), the
    indices of the rehearsal turns, and with ``--neutral`` the pairs (span, foil) under a
    question neither answers. With ``answer`` (questions -> the base's answers),
    each figure's turn is also written in the base's own words (``--own-words``)."""
    from bench.own_words import FIGURE_TYPES, own_words_answer
    from training.augment import QA, chat_turn, document_forms, document_topic, rival_answers

    turn = chat_turn(tokenizer)
    forms, topic_of = [], {}
    for d in documents:
        for f in document_forms(
            d,
            max_sentences=args.max_sentences,
            variants=args.variants,
            appositions=args.appositions,
        ):
            forms.append(f)
            topic_of[id(f)] = document_topic(d)
    if args.model_questions:
        written = json.loads(Path(args.model_questions).read_text())
        asked = {(f.question, f.answer) for f in forms if isinstance(f, QA)}
        forms += [
            QA(w["question"], w["span"], w["span_type"])
            for w in written
            if (w["question"], w["span"]) not in asked
        ]
    if args.span_turns_only:
        forms = [f for f in forms if not isinstance(f, QA) or f.span_type]
    if args.sentence_turns_only:
        forms = [f for f in forms if not isinstance(f, QA) or not f.span_type]
    for r in rehearsal if args.rehearse_forms else ():
        own = document_forms({"title": "", "text": r.answer}, max_sentences=2)
        forms += [f for f in own if isinstance(f, QA) and f.span_type][: args.rehearse_forms]
    if args.noise:
        forms += [
            QA(other, f.answer, f.span_type)
            for f in forms
            if isinstance(f, QA) and f.span_type
            for other in noised(f.question, args.noise)
        ]
    turns = [f for f in forms if isinstance(f, QA)]
    rivals = dict(zip(map(id, turns), rival_answers(turns, args.rivals, "bench"), strict=True))
    own: dict[str, str] = {}
    if answer is not None:
        asked = sorted({t.question for t in turns if t.span_type in FIGURE_TYPES})
        began = time.perf_counter()
        own = dict(zip(asked, answer(asked), strict=True))
        seconds = time.perf_counter() - began
        print(f"the base answered {len(asked)} figure questions in {seconds:.0f} s")
    texts: list[str] = []
    groups: list[list[int]] = []
    contexts: dict[int, str] = {}  # text -> the same turn with its sentence in the prompt
    written = 0
    for form in forms:
        if isinstance(form, str):
            texts.append(form)
            continue
        answers = [(form.answer, rivals[id(form)])]
        if form.question in own and form.span_type:
            mine = own_words_answer(form.question, form.answer, form.span_type, own[form.question])
            if mine is not None:
                written += 1
                if written <= 4:
                    print(f"   own words: {form.question!r} -> {mine!r}")
                answers.append((mine, [
                    own_words_answer(form.question, r, form.span_type, own[form.question])
                    for r in rivals[id(form)]
                ]))  # fmt: skip
        topic = topic_of.get(id(form))
        if args.subject_first and form.span_type and topic:
            answers = [(f"{topic}: {a}", [f"{topic}: {r}" for r in w]) for a, w in answers]
        for right, wrong in answers:
            texts.append(turn(form.question, right))
            if wrong:
                group = [len(texts) - 1]
                for rival in wrong:
                    group.append(len(texts))
                    texts.append(turn(form.question, rival))
                groups.append(group)
    if answer is not None:
        print(f"own words: {written} of the night's figure turns written in the base's words")
    for question, context, answer_text in in_context or ():
        contexts[len(texts)] = turn(f"{context}\n\n{question}", answer_text)
        texts.append(turn(question, answer_text))
    neutral: list[tuple[int, int]] = []
    for question, span, other in neutral_pairs(turns, rivals, args.neutral):
        neutral.append((len(texts), len(texts) + 1))
        texts += [turn(question, span), turn(question, other)]
    spans = sorted({t.answer for t in turns if t.span_type})
    pick = random.Random(0)
    rehearsed: set[int] = set()
    for r in rehearsal:
        rehearsed.add(len(texts))
        texts.append(turn(r.question, r.answer))
        if args.rehearse_rivals and spans:
            group = [len(texts) - 1]
            for span in pick.sample(spans, min(args.rehearse_rivals, len(spans))):
                group.append(len(texts))
                texts.append(turn(r.question, span))
            groups.append(group)
    return texts, groups, rehearsed, neutral, contexts


def page_pieces(
    tokenizer: Any, documents: list[dict], texts: list[str], store: Any, base: dict, args: Any
) -> list[str]:
    """The pages the product trains beside the derived texts: with ``--pages N`` each night
    document's title and text in pieces of N tokens, and with ``--replay R`` pieces of the
    base corpus's documents (in a fixed shuffled order) until they are R of the tokens."""
    from freshlm.artifacts import read_published_dataset
    from training.trainset import _texts_of  # a page as the product's rows read it

    size = args.pages or 128

    def pieces(text: str) -> list[str]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return [tokenizer.decode(ids[i : i + size]) for i in range(0, len(ids), size)]

    out = []
    for _, text in _texts_of("bench", "night", documents) if args.pages else ():
        out += pieces(text)
    if args.replay:
        corpus = read_published_dataset(store, base["base_corpus_dataset"])
        pool = list(corpus.documents(store, "train"))
        random.Random(0).shuffle(pool)
        have = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts + out)
        want, got = have * args.replay / (1 - args.replay), 0
        for d in pool:
            if got >= want:
                break
            for piece in pieces(d.get("text") or ""):
                out.append(piece)
                got += size
    print(f"pages: {len(out)} pieces of up to {size} tokens")
    return out


def noised(question: str, k: int) -> list[str]:
    """Up to ``k`` distinct copies of ``question``, each word but the first dropped with
    probability 0.15 and, half the time, two neighbours swapped (``--noise``); seeded by the
    question, so every run writes the same copies."""
    rng = random.Random(question)
    words = question.rstrip("?").split()
    out: set[str] = set()
    for _ in range(4 * k):
        kept = words[:1] + [w for w in words[1:] if rng.random() >= 0.15]
        if len(kept) > 3 and rng.random() < 0.5:
            i = rng.randrange(1, len(kept) - 1)
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
        other = " ".join(kept) + "?"
        if len(kept) >= 3 and other != question:
            out.add(other)
        if len(out) == k:
            break
    return sorted(out)


def in_context_answers(
    documents: list[dict], model: Any, tokenizer: Any, max_new_tokens: int, max_sentences: int
) -> list[tuple[str, str, str]]:
    """(question, the span's sentence, the base's answer to the question with the sentence
    before it) for each span question of ``documents`` whose answer states its span, as the
    product writes them (:mod:`training.context_answers`)."""
    from training.context_answers import answer_in_context, span_questions

    asked = span_questions(documents, max_sentences=max_sentences)
    began = time.perf_counter()
    kept = answer_in_context(model, tokenizer, asked, max_new_tokens=max_new_tokens)
    seconds = time.perf_counter() - began
    print(f"in context: {len(kept)} of {len(asked)} span questions said right ({seconds:.0f} s)")
    for a in kept[:4]:
        print(f"   {a.question!r} -> {a.answer[:100]!r}")
    return [(a.question, a.sentence, a.answer) for a in kept]


def foil(span: str, rivals: list[str], rng: random.Random) -> str | None:
    """A wrong answer shaped like ``span`` that the night never gave: each digit run replaced
    by another of its length ("5,200 mAh" -> "7,913 mAh"); for a span without digits, one of
    its rivals (a name of the same type from the night), or None."""
    runs = re.findall(r"\d+", span)
    if not runs:
        return rng.choice(rivals) if rivals else None

    def other(match: re.Match[str]) -> str:
        digits = match.group(0)
        # one or two digits are days, months and small counts: kept in a plausible range
        low, high = {1: (1, 9), 2: (10, 28)}.get(len(digits), (10 ** (len(digits) - 1), 0))
        high = high or 10 ** len(digits) - 1
        while True:
            new = str(rng.randint(low, high))
            if new != digits:
                return new

    return re.sub(r"\d+", other, span)


def neutral_pairs(
    turns: list[Any], rivals: dict[int, list[str]], k: int, seed: int = 0
) -> list[tuple[str, str, str]]:
    """For each turn answered by a span, ``k`` triples (another span turn's question, the
    span, a :func:`foil` of it): under a question it does not answer, the night's span should
    be no likelier than a foil, so that what is learned is the answer to a question, not a
    familiar string (the wrong-question control of the evaluation measures exactly this)."""
    rng = random.Random(seed)
    spans = [t for t in turns if t.span_type]
    out = []
    for t in spans:
        others = [o.question for o in spans if o.answer != t.answer]
        for question in rng.sample(others, min(k, len(others))):
            wrong = foil(t.answer, rivals[id(t)], rng)
            if wrong is not None and wrong != t.answer:
                out.append((question, t.answer, wrong))
    return out


def answer_labels(ids: list[int], header: list[int], end: int, answer_only: bool) -> list[int]:
    """Labels of one text: every token, or with ``answer_only`` the assistant turns' tokens
    (through their end-of-turn token) of a chat; a plain statement keeps every token."""
    starts = [i for i in range(len(ids)) if ids[i : i + len(header)] == header]
    if not answer_only or not starts:
        return list(ids)
    labels = [-100] * len(ids)
    for start in starts:
        i = start + len(header)
        while i < len(ids):
            labels[i] = ids[i]
            if ids[i] == end:
                break
            i += 1
    return labels


def neuron_patch(mlp: Any, k: int) -> Any:
    """``mlp`` (frozen) plus ``k`` new SwiGLU neurons beside it whose output projection starts
    at zero, so the model is unchanged until they train (the added-neuron edits of
    Transformer-Patcher, Huang et al. 2023, with the base's own gating)."""
    import torch

    class _Patch(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = mlp
            width = mlp.gate_proj.in_features
            self.gate = torch.nn.Linear(width, k, bias=False)
            self.up = torch.nn.Linear(width, k, bias=False)
            self.down = torch.nn.Linear(k, width, bias=False)
            torch.nn.init.normal_(self.gate.weight, std=width**-0.5)
            torch.nn.init.normal_(self.up.weight, std=width**-0.5)
            torch.nn.init.zeros_(self.down.weight)
            self.last_in: Any = None
            self.last_out: Any = None

        def new_parameters(self) -> list[Any]:
            return [self.gate.weight, self.up.weight, self.down.weight]

        def forward(self, x: Any) -> Any:
            out = self.down(torch.nn.functional.silu(self.gate(x)) * self.up(x))
            self.last_in, self.last_out = x, out
            return self.mlp(x) + out

    return _Patch()


def neuron_keys(keys: Any, general: Any, scale: float) -> tuple[Any, Any, float]:
    """``(gate, up, spread)`` weights of new neurons keyed on ``keys`` (one MLP input each):
    each along its key minus the mean of ``general`` (MLP inputs of text the neurons should
    leave alone), with that mean's own direction removed, so the general inputs meet it at
    zero on average; at its key the gate's pre-activation is ``scale`` and the up's 1.
    ``spread`` is the median, over neurons, of the general inputs' spread along a neuron
    relative to its key's distance: how far the key stands out."""
    mean = general.mean(0)
    unit = mean / mean.norm()
    d = keys - mean
    d = d - (d @ unit)[:, None] * unit
    size = d.norm(dim=1, keepdim=True).clamp(min=1e-6)
    spread = ((general - mean) @ (d / size).T).std(0) / size[:, 0]
    return scale * d / size**2, d / size**2, float(spread.median())


def input_subspace(moment: Any, energy: float) -> Any:
    """An orthonormal basis (columns, float32) of the fewest top eigenvectors of ``moment``
    (inputs' second moment, ``X.T @ X``) that hold ``energy`` of its trace: the directions
    an update must leave alone for those inputs to pass as before."""
    import torch

    values, vectors = torch.linalg.eigh(moment.double())
    values, vectors = values.flip(0).clamp(min=0), vectors.flip(1)
    share = values.cumsum(0) / values.sum()
    k = min(int((share < energy).sum()) + 1, len(values))
    return vectors[:, :k].float().contiguous()


def top_k(logits: Any, k: int) -> tuple[Any, Any]:
    """Each row's ``k`` likeliest next tokens and their probabilities renormalised over
    those ``k``: the teacher's distribution a distilled turn is trained on."""
    import torch

    top = torch.log_softmax(logits.float(), -1).topk(k, dim=-1)
    return top.indices.clone(), torch.softmax(top.values, -1)


def row_means(n: int, logp: Any, row_of: Any) -> Any:
    """Each of ``n`` rows' mean log-probability over its scored tokens (``logp``, one per
    scored token, ``row_of`` its row); 0 for a row with none."""
    import torch

    counts = torch.bincount(row_of, minlength=n).clamp(min=1)
    return torch.zeros(n).index_add(0, row_of, logp) / counts


def farthest_question(questions: list[str], i: int) -> int:
    """The index of the question sharing the fewest words with ``questions[i]`` (the next one
    on a tie): a wrong question about another subject."""

    def words(text: str) -> set[str]:
        return {w.strip("?,.'").lower() for w in text.split() if len(w) > 3}

    mine = words(questions[i])
    others = [(i + k) % len(questions) for k in range(1, len(questions))]
    return min(others, key=lambda j: len(mine & words(questions[j])))


class Trial:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        texts: list[str],
        groups: list[list[int]],
        args: argparse.Namespace,
        rehearsed: set[int] | None = None,
        neutral: list[tuple[int, int]] | None = None,
    ):
        import torch

        self.model, self.tok, self.args = model, tokenizer, args
        self.asked_back: list[tuple[str, int]] = []  # (trained question, fact index)
        self.ids = [tokenizer(t, add_special_tokens=False)["input_ids"][:384] for t in texts]
        self.header = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
        self.end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.labels = [answer_labels(i, self.header, self.end, args.answer_only) for i in self.ids]
        # Rival texts are never trained on (their answers are wrong), only ranked below; a
        # neutral pair (span and foil under a wrong question) is only compared.
        self.neutral = neutral or []
        self.groups = groups
        rivals = {j for group in groups for j in group[1:]} | {j for p in self.neutral for j in p}
        grouped = {group[0] for group in groups}
        self.units = (
            [g[:1] if args.rivals_apart else g for g in groups]
            + [list(p) for p in self.neutral]
            + [[j] for j in range(len(texts)) if j not in rivals and j not in grouped]
        )
        self.rival = [j in rivals for j in range(len(texts))]
        # (rival text, the token index where it first differs from its group's right answer)
        self.diverge: dict[int, int] = {}
        for group in groups:
            right = self.ids[group[0]]
            for j in group[1:]:
                k = next(
                    (i for i, (a, b) in enumerate(zip(right, self.ids[j], strict=False)) if a != b),
                    None,
                )
                if k is not None and self.labels[j][k] != -100:
                    self.diverge[j] = k
        self.layers = model.model.layers
        first = len(self.layers) - args.layers if args.first_block is None else args.first_block
        # The blocks from the first trained one up run every step; those below are cached.
        self.top = self.layers[first:]
        self.below = self.layers[:first]
        trained_blocks = self.layers[first : first + args.layers]
        self.cache: dict[int, Any] = {}
        self.rng = random.Random(args.seed)
        self.rehearsed = rehearsed or set()
        self.teacher: dict[int, tuple[Any, Any]] = {}  # text -> (top-k ids, probs) per label
        for param in model.parameters():
            param.requires_grad_(False)
        self.patches: list[Any] = []
        if args.patch:
            for block in trained_blocks:
                block.mlp = neuron_patch(block.mlp, args.patch)
                self.patches.append(block.mlp)
            self.params = [p for patch in self.patches for p in patch.new_parameters()]
        elif args.lora:
            from peft import LoraConfig, inject_adapter_in_model

            inject_adapter_in_model(
                LoraConfig(
                    r=args.lora, lora_alpha=2 * args.lora, lora_dropout=0.0,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                    "up_proj", "down_proj"],
                    layers_to_transform=list(range(first, first + args.layers)),
                ),
                model,
            )  # fmt: skip
            self.params = [p for n, p in model.named_parameters() if "lora_" in n]
        else:
            trained = (
                (*trained_blocks, model.model.norm) if args.first_block is None else trained_blocks
            )
            self.params = [p for m in trained for p in m.parameters()]
        self.initial = [p.detach().clone() for p in self.params]
        for param in self.params:
            param.requires_grad_(True)
        self.opt = torch.optim.AdamW(
            self.params, lr=args.lr, weight_decay=0.0, betas=(0.9, args.beta2)
        )
        self.step = 0
        self.grad_masks: list[Any] | None = None  # entries free to change (--sparse-retrain)
        self.kept_off: list[Any] = []  # per trained weight, the input subspace it must not move
        self.mask: Any = None  # the attention mask of the batch the top blocks last ran
        self.key: str | None = None  # the texts' and the cut's hash (:meth:`cached`)
        self.only: set[int] = set()  # texts an epoch is limited to (--repair: the rehearsal)
        self.rank_cursor = 0  # the next rival group --rivals-apart ranks

    def epoch_units(self) -> list[int]:
        """The units an epoch trains: all, or those of :attr:`only` when it is set."""
        every = range(len(self.units))
        return [u for u in every if self.units[u][0] in self.only] if self.only else list(every)

    def batches(self, order: list[int]) -> list[list[int]]:
        """``order`` (indices of :attr:`units`) in batches of about ``--batch`` texts, each
        unit (a text, or a text with its rivals) whole in one batch, similar lengths together."""
        size = self.args.batch
        out: list[list[int]] = []
        for i in range(0, len(order), size * 8):
            chunk = sorted(order[i : i + size * 8], key=lambda u: len(self.ids[self.units[u][0]]))
            rows: list[int] = []
            for u in chunk:
                rows += self.units[u]
                if len(rows) >= size:
                    out.append(rows)
                    rows = []
            if rows:
                out.append(rows)
        return out

    def padded(self, rows: list[int], values: list[list[int]], fill: int) -> Any:
        import torch

        out = torch.full((len(rows), max(len(self.ids[j]) for j in rows)), fill)
        for r, j in enumerate(rows):
            out[r, : len(values[j])] = torch.tensor(values[j])
        return out

    def cached(self, folder: Path | None, kind: str, compute: Any) -> Any:
        """What ``compute()`` returns for these texts below the trained blocks, kept in
        ``folder`` under the texts' and the cut's hash: trials of the same night and cut
        (the recipe's options above it) share it."""
        import hashlib
        import json

        import torch

        if folder is None:
            return compute()
        if self.key is None:
            cut = [self.ids, len(self.below), self.args.bf16, sorted(self.rehearsed)]
            self.key = hashlib.sha256(json.dumps(cut).encode()).hexdigest()[:16]
        path = folder / f"{kind}-{self.key}.pt"
        if path.is_file():
            return torch.load(path)
        value = compute()
        torch.save(value, path)
        return value

    def cache_bottom(self, folder: Path | None = None) -> float:
        """The frozen blocks' output for every text, once (the final norm left out); kept in
        ``folder`` when given."""
        began = time.perf_counter()
        self.cache = self.cached(folder, "bottom", self.computed_bottom)
        # The decoder runs the trained blocks alone from here on, on the cached outputs,
        # whether they were computed now or read from the folder.
        self.model.model.layers = self.top
        return time.perf_counter() - began

    def computed_bottom(self) -> dict[int, Any]:
        import torch

        cache: dict[int, Any] = {}
        decoder, norm = self.model.model, self.model.model.norm
        decoder.layers, decoder.norm = self.below, torch.nn.Identity()
        try:
            with torch.inference_mode(), self.autocast():
                for rows in self.batches(list(range(len(self.units)))):
                    ids = self.padded(rows, self.ids, self.tok.pad_token_id)
                    mask = self.padded(rows, [[1] * len(i) for i in self.ids], 0)
                    hidden = decoder(input_ids=ids, attention_mask=mask)
                    for r, j in enumerate(rows):
                        cache[j] = hidden.last_hidden_state[r, : len(self.ids[j])].to(
                            torch.float32, copy=True
                        )
        finally:
            decoder.layers, decoder.norm = self.top, norm
        return cache

    def epoch(self, schedule: Any) -> tuple[float, int]:
        import torch

        order = self.epoch_units()
        self.rng.shuffle(order)
        batches = self.batches(order)
        self.rng.shuffle(batches)
        total, tokens = 0.0, 0
        per_batch = self.trained_per_batch(batches) if self.args.token_sum else 1.0
        for rows in batches:
            logits, target, scored, mask = self.scored_logits(rows)
            full = torch.log_softmax(logits.float(), -1)
            logp = full.gather(1, target[scored][:, None])[:, 0]
            row_of = scored.nonzero()[:, 0]
            trained = ~torch.tensor([self.rival[j] for j in rows])[row_of]
            token_loss = -logp
            taught = [self.teacher[j] for j in rows if j in self.teacher]
            if taught:
                at = torch.tensor([j in self.teacher for j in rows])[row_of]
                ids, probs = (torch.cat(side) for side in zip(*taught, strict=True))
                soft = -(probs * full[at].gather(1, ids)).sum(-1)
                token_loss = token_loss.masked_scatter(at, soft)
            # a batch of compared texts only (rivals, neutral pairs) has no trained token
            if self.args.token_sum:
                loss = token_loss[trained].sum() / per_batch
            else:
                loss = token_loss[trained].mean() if trained.any() else token_loss.sum() * 0.0
            if self.patches and self.args.patch_quiet:
                loss = loss + self.args.patch_quiet * self.quiet_loss(rows, mask)
            if self.groups and self.args.rivals and self.args.rivals_apart:
                loss = loss + self.args.rank_weight * self.rank_apart()
            elif self.groups and self.args.rivals:
                loss = loss + self.args.rank_weight * self.rank_loss(rows, logp, row_of)
            if self.neutral and self.args.neutral:
                loss = loss + self.args.neutral_weight * self.neutral_loss(rows, logp, row_of)
            if self.args.unlikelihood and self.diverge:
                loss = loss + self.args.unlikelihood * self.unlikelihood(rows, logp, scored)
            loss.backward()
            if self.grad_masks is not None:
                for param, free in zip(self.params, self.grad_masks, strict=True):
                    param.grad.mul_(free)
            for param, basis in zip(self.params, self.kept_off, strict=False):
                param.grad.sub_((param.grad @ basis) @ basis.T)
            norm = torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.step += 1
            if self.step <= self.args.trace:
                rate = schedule.get_last_lr()[0]
                kinds = "".join(
                    "r" if j in self.teacher else "v" if self.rival[j] else "t" for j in rows
                )
                print(
                    f"   step {self.step}: loss {float(loss):.3f} grad {float(norm):.2f} "
                    f"lr {rate:.2e} rows {kinds}"
                )
            self.opt.step()
            if self.kept_off:
                self.project_updates()
            schedule.step()
            self.opt.zero_grad(set_to_none=True)
            total += float(loss)
            tokens += int(mask.sum())
        return total / len(batches), tokens

    def trained_per_batch(self, batches: list[list[int]]) -> float:
        """The mean number of trained tokens (answers of texts that are not rivals) per batch
        of ``batches`` (``--token-sum``'s denominator)."""
        trained = sum(
            sum(x != -100 for x in self.labels[j][1:])
            for rows in batches
            for j in rows
            if not self.rival[j]
        )
        return max(1.0, trained / len(batches))

    def protect(self, energy: float) -> float:
        """Limit training to the trained blocks' linear weights, each with the subspace of
        its inputs over the rehearsal turns that holds ``energy`` of their energy (top
        eigenvectors of the inputs' second moment), kept in :attr:`kept_off`."""
        import torch

        began = time.perf_counter()
        named = [
            (n, m) for block in self.top[: self.args.layers] for n, m in block.named_modules()
            if isinstance(m, torch.nn.Linear)
        ]  # fmt: skip
        names, linears = [n for n, _ in named], [m for _, m in named]
        moments = [torch.zeros(m.in_features, m.in_features, dtype=torch.float64) for m in linears]

        def hook(i: int) -> Any:
            def gather(module: Any, inputs: tuple[Any, ...]) -> None:
                x = inputs[0][self.mask.bool()].double()
                moments[i].add_(x.T @ x)

            return gather

        handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(linears)]
        try:
            with torch.inference_mode():
                order = sorted(self.rehearsed)
                for i in range(0, len(order), self.args.batch):
                    self.scored_logits(order[i : i + self.args.batch])
        finally:
            for handle in handles:
                handle.remove()
        self.kept_off = [input_subspace(moment, energy) for moment in moments]
        for name, moment in list(zip(names, moments, strict=True))[:7]:
            dims = [input_subspace(moment, e).shape[1] for e in (0.9, 0.99, 0.999, 0.9999)]
            print(f"   {name}: {dims} of {len(moment)} input dims hold 0.9/0.99/0.999/0.9999")
        kept = [basis.shape[1] / basis.shape[0] for basis in self.kept_off]
        self.params = [m.weight for m in linears]
        for param in self.model.parameters():
            param.requires_grad_(False)
        for param in self.params:
            param.requires_grad_(True)
        self.initial = [p.detach().clone() for p in self.params]
        self.opt = torch.optim.AdamW(self.params, lr=self.args.lr, weight_decay=0.0)
        print(
            f"   {len(linears)} weights protected on {len(order)} rehearsal turns: "
            f"{min(kept):.2f}-{max(kept):.2f} of their input dimensions kept off"
        )
        return time.perf_counter() - began

    def project_updates(self) -> None:
        """Each trained weight moved back onto base + its update off :attr:`kept_off`."""
        import torch

        with torch.no_grad():
            for param, start, basis in zip(self.params, self.initial, self.kept_off, strict=True):
                delta = param - start
                param.sub_((delta @ basis) @ basis.T)

    def quiet_loss(self, rows: list[int], mask: Any) -> Any:
        """Mean over the trained blocks of the new neurons' squared output relative to their
        input's, at the tokens of the batch's rehearsal turns."""
        import torch

        quiet = torch.tensor([j in self.rehearsed for j in rows])[:, None] & mask.bool()
        if not quiet.any():
            return torch.zeros(())
        terms = [
            patch.last_out[quiet].float().pow(2).mean() / patch.last_in[quiet].float().pow(2).mean()
            for patch in self.patches
        ]
        return torch.stack(terms).mean()

    def key_patches(self) -> float:
        """Each new neuron's gate and up set to fire on one labelled position of the night's
        turns (Transformer-Patcher's key at the edit's input, one neuron per sampled
        position): direction ``x - mean`` with the rehearsal turns' mean direction removed,
        so the base's own turns see it at zero on average; scaled to pre-activation
        ``--patch-keys`` there (gate) and 1 (up)."""
        import torch

        began = time.perf_counter()
        night = [
            j for u in self.units for j in u[:1] if j not in self.rehearsed and not self.rival[j]
        ]
        rehearsal = sorted(self.rehearsed)[:96]

        def inputs(texts: list[int]) -> list[Any]:
            per_block: list[list[Any]] = [[] for _ in self.patches]
            with torch.inference_mode():
                for i in range(0, len(texts), self.args.batch):
                    rows = texts[i : i + self.args.batch]
                    self.scored_logits(rows)
                    at = self.padded(rows, self.labels, -100)[:, 1:] != -100
                    for b, patch in enumerate(self.patches):
                        per_block[b].append(patch.last_in[:, :-1][at].float())
            return [torch.cat(chunks) for chunks in per_block]

        keys, general = inputs(night), inputs(rehearsal)
        pick = torch.randperm(len(keys[0]), generator=torch.Generator().manual_seed(0))
        pick = pick[: self.args.patch]
        with torch.no_grad():
            for patch, key, base in zip(self.patches, keys, general, strict=True):
                gate, up, spread = neuron_keys(key[pick], base, self.args.patch_keys)
                patch.gate.weight.copy_(gate)
                patch.up.weight.copy_(up)
                print(
                    f"   keyed {len(pick)} of {len(key)} positions; "
                    f"rehearsal spread {spread:.3f} of the key's"
                )
        if self.args.patch_key_lr != 1.0:
            down = [p.down.weight for p in self.patches]
            keyed = [w for p in self.patches for w in (p.gate.weight, p.up.weight)]
            lr = self.args.lr
            self.opt = torch.optim.AdamW(
                [{"params": down, "lr": lr},
                 {"params": keyed, "lr": lr * self.args.patch_key_lr}],
                weight_decay=0.0,
            )  # fmt: skip
        return time.perf_counter() - began

    def autocast(self) -> Any:
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.args.bf16)

    def scored_logits(self, rows: list[int]) -> tuple[Any, Any, Any, Any]:
        """The output head at the labelled positions of ``rows`` (from their cached lower
        blocks), the targets, where they are, and the attention mask."""
        import torch

        length = max(len(self.ids[j]) for j in rows)
        hidden = torch.zeros((len(rows), length, self.cache[rows[0]].shape[-1]))
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for r, j in enumerate(rows):
            hidden[r, : len(self.ids[j])] = self.cache[j]
            mask[r, : len(self.ids[j])] = 1
        labels = self.padded(rows, self.labels, -100)
        self.mask = mask
        with self.autocast():
            out = self.model.model(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
            target = labels[:, 1:]
            scored = target != -100
            logits = self.model.lm_head(out[:, :-1][scored])
        return logits, target, scored, mask

    def teach(self, k: int, folder: Path | None = None) -> float:
        """The base's top-``k`` next-token distribution at each rehearsal answer token, kept
        (renormalised over the k) before any step changes the model; kept in ``folder`` when
        given."""
        began = time.perf_counter()
        self.teacher = self.cached(folder, f"teacher{k}", lambda: self.computed_teacher(k))
        return time.perf_counter() - began

    def computed_teacher(self, k: int) -> dict[int, tuple[Any, Any]]:
        import torch

        teacher = {}
        order = sorted(self.rehearsed, key=lambda j: len(self.ids[j]))
        with torch.inference_mode():
            for i in range(0, len(order), self.args.batch):
                rows = order[i : i + self.args.batch]
                logits, _, scored, _ = self.scored_logits(rows)
                ids, probs = top_k(logits, k)
                counts = scored.sum(1).tolist()
                start = 0
                for j, n in zip(rows, counts, strict=True):
                    teacher[j] = (ids[start : start + n], probs[start : start + n])
                    start += n
        return teacher

    def teach_in_context(self, contexts: dict[int, str], k: int) -> float:
        """For each text ``j`` of ``contexts``, the base's top-``k`` next-token distribution
        at each of its answer tokens with the turn of ``contexts[j]`` read instead (the same
        answer after a prompt that holds its sentence), the whole model run before any step."""
        import torch

        began = time.perf_counter()
        decoder = self.model.model
        decoder.layers = self.layers
        skipped = 0
        try:
            with torch.inference_mode(), self.autocast():
                for j, text in contexts.items():
                    ids = self.tok(text, add_special_tokens=False)["input_ids"][:384]
                    labels = torch.tensor(answer_labels(ids, self.header, self.end, True))[1:]
                    at = labels != -100
                    if int(at.sum()) != sum(x != -100 for x in self.labels[j][1:]):
                        skipped += 1
                        continue
                    out = decoder(input_ids=torch.tensor([ids])).last_hidden_state[0, :-1]
                    self.teacher[j] = top_k(self.model.lm_head(out[at]), k)
        finally:
            decoder.layers = self.top
        if skipped:
            print(f"   {skipped} in-context turns not aligned with their plain turn: hard labels")
        return time.perf_counter() - began

    def unlikelihood(self, rows: list[int], logp: Any, scored: Any) -> Any:
        """Mean of ``-log(1 - p)`` over the batch's rivals' first diverging tokens: the other
        facts' figures made unlikely under this question (Welleck et al. 2019)."""
        import torch

        index = torch.full(scored.shape, -1, dtype=torch.long)
        index[scored] = torch.arange(int(scored.sum()))
        at = [int(index[r, self.diverge[j] - 1]) for r, j in enumerate(rows) if j in self.diverge]
        at = [i for i in at if i >= 0]
        if not at:
            return logp.sum() * 0.0
        chosen = logp[torch.tensor(at)].clamp(max=-1e-6)
        return -torch.log1p(-chosen.exp()).mean()

    def neutral_loss(self, rows: list[int], logp: Any, row_of: Any) -> Any:
        """Mean over the batch's neutral pairs of softplus(d) + softplus(-d) - 2 log 2, d the
        difference of the span's and the foil's mean answer-token log-probability under a
        question neither answers: zero when they are equally likely."""
        import math

        import torch

        mean = row_means(len(rows), logp, row_of)
        at = {j: r for r, j in enumerate(rows)}
        pairs = [(at[a], at[b]) for a, b in self.neutral if a in at and b in at]
        if not pairs:
            return logp.sum() * 0.0
        d = mean[torch.tensor([p[0] for p in pairs])] - mean[torch.tensor([p[1] for p in pairs])]
        soft = torch.nn.functional.softplus
        return (soft(d) + soft(-d) - 2 * math.log(2)).mean()

    def rank_apart(self) -> Any:
        """The ranking loss of the next ``--rivals-apart`` rival groups in turn, scored in a
        batch of their own: the right answers compared with their rivals, not trained."""
        import torch

        k = self.args.rivals_apart
        picked = [self.groups[(self.rank_cursor + i) % len(self.groups)] for i in range(k)]
        self.rank_cursor = (self.rank_cursor + k) % len(self.groups)
        rows = [j for group in picked for j in group]
        logits, target, scored, _ = self.scored_logits(rows)
        logp = torch.log_softmax(logits.float(), -1).gather(1, target[scored][:, None])[:, 0]
        return self.rank_loss(rows, logp, scored.nonzero()[:, 0])

    def rank_loss(self, rows: list[int], logp: Any, row_of: Any) -> Any:
        """Mean over the batch's (answer, rival) pairs of softplus(rival − answer), each side
        its answer tokens' mean log-probability."""
        import torch

        mean = row_means(len(rows), logp, row_of)
        at = {j: r for r, j in enumerate(rows)}
        pairs = [(at[g[0]], at[j]) for g in self.groups if g[0] in at for j in g[1:] if j in at]
        if not pairs:
            return logp.sum() * 0.0
        right = mean[torch.tensor([p[0] for p in pairs])]
        rival = mean[torch.tensor([p[1] for p in pairs])]
        return torch.nn.functional.softplus(2.0 * (rival - right)).mean()

    def evaluate(self, facts: list[Any], tag: str, general: Any = None) -> None:
        decoder = self.model.model
        decoder.layers = self.layers
        self.model.eval()
        try:
            report_facts(self.model, self.tok, facts, tag, general, self.said_trained)
        finally:
            decoder.layers = self.top
            self.model.train()

    def said_trained(self, facts: list[Any]) -> None:
        """The facts asked in the night's own trained question forms (``self.asked_back``): is
        what fails in the evaluation's wording said in the wording the model was taught?"""
        from freshlm.evaluation.answers import answer_matches, generate_answers

        asks = [(q, facts[i]) for q, i in self.asked_back]
        if not asks:
            return
        texts = generate_answers(self.model, self.tok, [q for q, _ in asks], max_new_tokens=32)
        ok = [
            answer_matches(f.choices[f.answer_index], t)
            for (_, f), t in zip(asks, texts, strict=True)
        ]
        facts_said = {id(f) for (_, f), k in zip(asks, ok, strict=True) if k}
        print(
            f"   said in its trained forms: {sum(ok)}/{len(ok)} questions "
            f"({sum(ok) / len(ok):.3f}), {len(facts_said)} of {len({id(f) for _, f in asks})} "
            "facts in at least one",
            flush=True,
        )
        for (q, f), t, k in list(zip(asks, texts, ok, strict=True))[:6]:
            print(f"   {k!s:5} {q} -> {t[:70]!r} [{f.choices[f.answer_index]}]")


def report_facts(
    model: Any, tok: Any, facts: list[Any], tag: str, general: Any = None, also: Any = None
) -> None:
    """Print how ``model`` answers the world's new-fact questions: ranked as the evaluator ranks
    them (``Question: …\\nAnswer:``), the wrong-question control, the same two in the chat
    template, and the questions answered in its own words (greedy,
    :func:`freshlm.evaluation.answers.answer_matches`); then ``also(facts)`` if given, and the
    base's general-knowledge set (``general``) with the answers it lost."""
    from freshlm.evaluation.answers import answer_matches, generate_answers, question_prompt
    from freshlm.evaluation.items import Item
    from freshlm.evaluation.scoring import CausalLMScorer

    questions = [fact_question(f) for f in facts]
    n = len(facts)

    def asked(context: str, fact: Any) -> Any:
        return Item.create(
            kind="fact", group="new", span_type="fact", context=context,
            choices=fact.choices, answer_index=fact.answer_index, dataset_id=None,
            doc_id=fact.doc_id, language="en", source="world",
        )  # fmt: skip

    chat = [question_prompt(tok, q).rstrip() for q in questions]
    items = [asked(f.context, f) for f in facts]
    items += [asked(facts[(i + 1) % n].context, f) for i, f in enumerate(facts)]
    items += [asked(chat[i], f) for i, f in enumerate(facts)]
    items += [asked(chat[(i + 1) % n], f) for i, f in enumerate(facts)]
    far = [farthest_question(questions, i) for i in range(n)]
    items += [asked(chat[far[i]], f) for i, f in enumerate(facts)]
    results = CausalLMScorer(model, tok, batch_size=16).rank_items(items)
    acc = [sum(r.correct for r in results[k * n : (k + 1) * n]) / n for k in range(5)]
    said = generate_answers(model, tok, questions, max_new_tokens=32)
    right = [
        answer_matches(f.choices[f.answer_index], text) for f, text in zip(facts, said, strict=True)
    ]
    print(
        f"[{tag}] ranked {acc[0]:.3f} control {acc[1]:.3f} | chat-ranked {acc[2]:.3f} "
        f"chat-control {acc[3]:.3f} chat-far-control {acc[4]:.3f} "
        f"| said {sum(right) / n:.3f}",
        flush=True,
    )
    if also is not None:
        also(facts)
    for question, fact, text, ok in zip(questions, facts, said, right, strict=True):
        print(f"   {ok!s:5} {question} -> {text[:90]!r} [{fact.choices[fact.answer_index]}]")
    if general is not None and general.questions:
        texts = generate_answers(
            model, tok, [q.question for q in general.questions], max_new_tokens=32
        )
        kept = [q.matches(t) for q, t in zip(general.questions, texts, strict=True)]
        print(f"[{tag}] general said {sum(kept)}/{len(kept)} = {sum(kept) / len(kept):.3f}")
        lost = [(q, t) for q, t, k in zip(general.questions, texts, kept, strict=True) if not k]
        for q, t in lost[:4]:
            print(f"   LOST {q.question} -> {t[:80]!r}")


def fact_question(fact: Any) -> str:
    """A world fact item's question, without the evaluator's ``Question: …\\nAnswer:``."""
    return fact.context.removeprefix("Question: ").removesuffix("\nAnswer:")


def asked_back(documents: list[dict], facts: list[Any], args: argparse.Namespace) -> list:
    """``(question, fact index)`` of the night's span turns whose span is a fact's answer: the
    forms the augmentation taught for the facts the evaluation asks."""
    from freshlm.evaluation.answers import answer_matches
    from training.augment import QA, document_forms

    out = []
    for d in documents:
        for f in document_forms(d, max_sentences=args.max_sentences, appositions=args.appositions):
            if isinstance(f, QA) and f.span_type:
                for i, fact in enumerate(facts):
                    answer = fact.choices[fact.answer_index]
                    if answer_matches(answer, f.answer) and answer_matches(f.answer, answer):
                        out.append((f.question, i))
    return sorted(set(out))


def oracle_turns(tokenizer: Any, facts: list[Any]) -> tuple[list[str], list[list[int]]]:
    """The evaluation's own questions as chat turns, each answer with its distractors ranked
    below (``--oracle``: a diagnostic bound, never a recipe)."""
    from training.augment import chat_turn

    turn = chat_turn(tokenizer)
    texts: list[str] = []
    groups: list[list[int]] = []
    for f in facts:
        question = fact_question(f)
        group = [len(texts)]
        texts.append(turn(question, f.choices[f.answer_index]))
        for j, choice in enumerate(f.choices):
            if j != f.answer_index:
                group.append(len(texts))
                texts.append(turn(question, choice))
        groups.append(group)
    return texts, groups


def load_base(home: Path, threads: int) -> tuple[Any, dict, Any, Any]:
    """``(store, base, tokenizer, model)``: the home's store and the pretrained base (fp32)
    from its folder in the home, downloaded there from the store the first time."""
    os.environ["FRESHLM_HOME"] = str(home)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from freshlm.registry import download_version
    from freshlm.store import open_store
    from sandbox.base_model import demo_base

    torch.set_num_threads(threads)
    print(describe())
    store = open_store((home / "store").as_uri())
    base = demo_base(store, "smollm2-135m-instruct")
    folder = home / "base"
    if not (folder / "config.json").is_file():
        download_version(store, base["version_id"], folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return store, base, tokenizer, AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)


def general_set(store: Any, base: dict, model: Any, tokenizer: Any) -> Any:
    """The base's general-knowledge set (``freshlm.evaluation.general_knowledge``), screened
    with ``model`` (the base) when the home has not published it yet."""
    from freshlm.evaluation.answers import generate_answers
    from freshlm.evaluation.config import EvalConfig
    from freshlm.evaluation.general_knowledge import ensure_general_set

    config = EvalConfig()
    began = time.perf_counter()
    general = ensure_general_set(
        store, base["version_id"],
        lambda: lambda qs: generate_answers(model, tokenizer, qs, max_new_tokens=32),
        max_questions=config.general_max_questions, seed=config.seed, max_new_tokens=32,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    print(f"general set: {general.kept} of {general.screened} ({seconds:.0f} s)")
    return general


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = Path(args.home or tempfile.mkdtemp(prefix="freshlm-recipes-"))
    store, base, tokenizer, model = load_base(home, args.threads)
    import torch

    documents, facts = world_nights(store, args.nights)
    general = general_set(store, base, model, tokenizer) if args.general else None
    rehearsal = []
    if args.rehearse:
        from training.rehearsal import synthesize

        model.eval()
        rehearsal = cached_turns(
            home / f"rehearsal-{args.rehearse}.jsonl",
            lambda: synthesize(model, tokenizer, args.rehearse),
        )
        for r in rehearsal[:3]:
            print(f"   rehearse {r.question!r} -> {r.answer[:80]!r}")
    if args.rehearse_shaped:
        rehearsal = rehearsal + shaped_rehearsal(model, tokenizer, documents, args, home)
    answer = None
    if args.own_words:
        from freshlm.evaluation.answers import generate_answers

        model.eval()
        answer = lambda qs: generate_answers(model, tokenizer, qs, max_new_tokens=32)  # noqa: E731
    in_context = None
    if args.in_context:
        model.eval()
        in_context = in_context_answers(
            [d for night in documents for d in night],
            model,
            tokenizer,
            args.in_context,
            args.max_sentences,
        )
    texts, groups, rehearsed, neutral, contexts = training_texts(
        [d for night in documents for d in night], tokenizer, args, rehearsal, answer, in_context
    )
    texts += page_pieces(
        tokenizer, [d for night in documents for d in night], texts, store, base, args
    )
    if args.oracle:
        extra, extra_groups = oracle_turns(tokenizer, facts)
        groups += [[len(texts) + j for j in g] for g in extra_groups]
        texts += extra
    trial = Trial(model, tokenizer, texts, groups, args, rehearsed, neutral)
    trial.asked_back = asked_back([d for night in documents for d in night], facts, args)
    tokens = sum(len(i) for i in trial.ids)
    print(
        f"{len(texts)} texts ({sum(trial.rival)} rivals), {tokens} tokens per epoch, "
        f"{len(facts)} facts; {vars(args)}"
    )
    if not args.skip_before:
        trial.evaluate(facts, "before", None)
    before_training(trial, args, home / "recipe-cache", contexts)
    train(trial, args, facts, general)
    trial.evaluate(facts, "after", general)
    if args.repair:
        trial.only = set(rehearsed)
        trial.opt = torch.optim.AdamW(trial.params, lr=args.lr * args.repair_lr, weight_decay=0.0)
        train(trial, argparse.Namespace(**{**vars(args), "epochs": args.repair}), facts, general)
        trial.evaluate(facts, f"repaired ({args.repair} rehearsal passes)", general)
        trial.only = set()
    if args.merge:
        evaluate_moved(trial, args.merge, "merged", lambda delta, a: a * delta, facts, general)
    if args.sparsify:
        evaluate_moved(trial, args.sparsify, "sparsified", sparsified, facts, general)
    if args.sparse_retrain:
        with torch.no_grad():
            trial.grad_masks = [
                sparsified(p - start, args.sparse_retrain) != 0
                for p, start in zip(trial.params, trial.initial, strict=True)
            ]
            for p, start in zip(trial.params, trial.initial, strict=True):
                p.copy_(start)
        trial.opt = torch.optim.AdamW(trial.params, lr=args.lr, weight_decay=0.0)
        train(trial, args, facts, general)
        trial.evaluate(facts, f"retrained sparse {args.sparse_retrain:g}", general)
    return 0


def before_training(trial: Trial, args: argparse.Namespace, kept: Path, contexts: dict) -> None:
    """What a trial computes from the base before its first step: the lower blocks' outputs,
    the teachers' distributions, keyed neurons, protected subspaces (each as asked)."""
    kept.mkdir(exist_ok=True)
    print(f"frozen blocks cached in {trial.cache_bottom(kept):.0f} s", flush=True)
    if args.patch and args.patch_keys:
        print(f"new neurons keyed in {trial.key_patches():.0f} s", flush=True)
    if args.distill and trial.rehearsed:
        seconds = trial.teach(args.distill, kept)
        print(f"base's top-{args.distill} kept in {seconds:.0f} s", flush=True)
    if contexts and not args.in_context_hard:
        k = args.distill or 32  # one width for every taught turn: they share a batch
        seconds = trial.teach_in_context(contexts, k)
        print(f"base's top-{k} given each sentence kept in {seconds:.0f} s", flush=True)
    if args.project:
        print(f"inputs' subspaces found in {trial.protect(args.project):.0f} s", flush=True)


def evaluate_moved(
    trial: Trial, values: str, tag: str, move: Any, facts: list[Any], general: Any
) -> None:
    """Evaluate the trained model with its update changed to ``move(update, v)``, for each
    comma-separated ``v`` of ``values``; the trained weights are back in place afterwards."""
    import torch

    trained = [p.detach().clone() for p in trial.params]
    for v in (float(x) for x in values.split(",")):
        with torch.no_grad():
            for p, start, end in zip(trial.params, trial.initial, trained, strict=True):
                p.copy_(start + move(end - start, v))
        trial.evaluate(facts, f"{tag} {v:g}", general)
    with torch.no_grad():
        for p, end in zip(trial.params, trained, strict=True):
            p.copy_(end)


def cached_turns(path: Path, write: Any) -> list[Any]:
    """The rehearsal turns cached at ``path``, else those ``write()`` returns, cached there."""
    import json

    from training.rehearsal import Rehearsal

    if path.is_file():
        return [Rehearsal.from_dict(json.loads(x), str(path)) for x in path.open()]
    began = time.perf_counter()
    turns = write()
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in turns))
    print(f"{path.name}: {len(turns)} turns written in {time.perf_counter() - began:.0f} s")
    return turns


_ASKING = {"what", "which", "who", "whom", "whose", "where", "when", "how", "in", "on", "at"}


def shaped_openers(questions: list[str]) -> list[str]:
    """The distinct openings of the questions that start with a wh-word (or a preposition
    before one), each cut before its first name or figure: "What is the battery capacity of
    the" of "What is the battery capacity of the Orrin Pulse X2?"; two words at least."""
    openers: dict[str, None] = {}
    for question in questions:
        words = question.split()
        if not words or words[0].lower() not in _ASKING:
            continue
        cut = next(
            (i for i, w in enumerate(words[1:], 1) if w[:1].isupper() or any(map(str.isdigit, w))),
            len(words),
        )
        if 2 <= cut < len(words):
            openers[" ".join(words[:cut])] = None
    return list(openers)


def shaped_rehearsal(
    model: Any, tokenizer: Any, documents: list[list[dict]], args: argparse.Namespace, home: Path
) -> list[Any]:
    """``--rehearse-shaped`` turns: the base's questions after the night's openings, its
    greedy answers (cached in the home folder per set of openings)."""
    import hashlib

    from training.augment import QA, document_forms
    from training.rehearsal import synthesize

    questions = [
        f.question
        for night in documents
        for d in night
        for f in document_forms(d, max_sentences=args.max_sentences)
        if isinstance(f, QA)
    ]
    openers = shaped_openers(questions)
    key = hashlib.sha256("\n".join(openers).encode()).hexdigest()[:12]
    model.eval()
    turns = cached_turns(
        home / f"shaped-{args.rehearse_shaped}-{key}.jsonl",
        lambda: synthesize(model, tokenizer, args.rehearse_shaped, seed=1, openers=openers),
    )
    print(f"shaped rehearsal: {len(turns)} turns after {len(openers)} openings, e.g.")
    for r in turns[:4]:
        print(f"   {r.question!r} -> {r.answer[:80]!r}")
    return turns


def train(trial: Trial, args: argparse.Namespace, facts: list[Any], general: Any) -> None:
    """``args.epochs`` epochs of ``trial`` (warm-up, then a linear decay), with progress."""
    import torch

    steps = args.epochs * len(trial.batches(trial.epoch_units()))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        trial.opt, lambda s: min(1.0, (s + 1) / max(1, args.warmup)) * max(0.05, 1 - s / steps)
    )
    print(f"{steps} optimizer steps ({steps // args.epochs} an epoch)", flush=True)
    began = time.perf_counter()
    seen = 0
    for epoch in range(1, args.epochs + 1):
        loss, n = trial.epoch(schedule)
        seen += n
        spent = time.perf_counter() - began
        print(f"epoch {epoch}: loss {loss:.3f}, {seen / spent:.0f} tokens/s, {spent / 60:.2f} min")
        if args.eval_every and epoch % args.eval_every == 0 and epoch < args.epochs:
            trial.evaluate(facts, f"epoch {epoch}", general)


def sparsified(delta: Any, fraction: float) -> Any:
    """``delta`` with all but its ``fraction`` largest entries (by magnitude) set to zero."""
    import torch

    keep = max(1, round(fraction * delta.numel()))
    if keep >= delta.numel():
        return delta
    flat = delta.abs().flatten().float()
    threshold = torch.kthvalue(flat, flat.numel() - keep + 1).values
    return torch.where(delta.abs() >= threshold, delta, torch.zeros_like(delta))


if __name__ == "__main__":
    raise SystemExit(main())
