"""A night's facts written into the pretrained base by a locate-and-edit update (MEMIT-style).

    .venv/bin/python bench/knowledge_edit.py --home H [--layers 4,5,6,7,8] [--general]

Knowledge editing writes facts into a model's MLP weights in closed form instead of training
them in (Meng et al. 2022, "Mass-Editing Memory in a Transformer", arXiv:2210.07229): a
subject's facts live in the MLPs of early-middle blocks, read at the subject's last token.
Here each span question the augmentation writes (``training.augment.document_forms``) names
its document's topic (``document_topic``), its subject. Per subject:

1. a vector added to the last edit block's output at the subject's last token is optimised
   (``--steps`` Adam steps, ``--vlr``) so the model answers every question about it with its
   span, a KL term (``--kl``) keeping what it says after "What is <subject>?" and a norm
   penalty (``--wd``) keeping the vector small;
2. each edit block's MLP output projection gets the least-squares update that writes the
   remaining share of that vector at the subject's keys (the projection's inputs there),
   weighted against the second moment of its inputs over the base's own turns (``--lam``
   times it): what the base does elsewhere is to move as little as possible.

Then the world's new-fact questions are asked as ``bench/knowledge_recipes.py`` asks them
(ranked, the wrong-question control, said), with the base's general-knowledge set
(``--general``). The optimised vectors are kept in the home (``edit-vectors-*.pt``), so trials
of the weight update alone skip step 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", required=True, help="a bench/knowledge_recipes.py home")
    p.add_argument("--layers", default="4,5,6,7,8", help="the blocks whose MLPs are edited")
    p.add_argument("--lam", type=float, default=15000.0, help="weight of the base's own keys")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--vlr", type=float, default=0.5)
    p.add_argument("--kl", type=float, default=0.0625)
    p.add_argument("--wd", type=float, default=0.5)
    p.add_argument("--clamp", type=float, default=4.0, help="largest vector, times the state's")
    p.add_argument("--nights", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--general", action="store_true")
    return p.parse_args(argv)


def subject_requests(documents: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """``{subject: [(question, span answer)]}``: the augmentation's span turns that name their
    document's topic."""
    from training.augment import QA, document_forms, document_topic

    requests: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for doc in documents:
        topic = document_topic(doc)
        for form in document_forms(doc) if topic else ():
            turn = (form.question, form.answer) if isinstance(form, QA) else None
            if turn and form.span_type and topic in form.question and turn not in requests[topic]:
                requests[topic].append(turn)
    return dict(requests)


class Editor:
    """The base model with hooks at its blocks: states, MLP keys, and a vector added."""

    def __init__(self, model: Any, tok: Any, layers: list[int]):
        from freshlm.evaluation.answers import question_prompt

        self.model, self.tok, self.layers = model, tok, layers
        self.blocks = model.model.layers
        self.last = layers[-1]
        self.end = tok.convert_tokens_to_ids("<|im_end|>")
        self.prompt = lambda q: question_prompt(tok, q)

    def encode(self, question: str, subject: str, answer: str | None) -> tuple:
        """``(ids, labels, subject's last token)`` of ``question`` in the chat template, its
        answer and end of turn labelled."""
        prompt = self.prompt(question)
        enc = self.tok(prompt, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        at = prompt.rfind(subject) + len(subject) - 1
        pos = next(i for i, (a, b) in enumerate(enc["offset_mapping"]) if a <= at < b)
        labels = [-100] * len(ids)
        if answer is not None:
            extra = [*self.tok(answer, add_special_tokens=False)["input_ids"], self.end]
            ids, labels = ids + extra, labels + extra
        return ids, labels, pos

    def batch(self, rows: list[tuple]) -> tuple:
        import torch

        n = max(len(r[0]) for r in rows)
        pad = self.tok.pad_token_id or 0
        ids = torch.tensor([r[0] + [pad] * (n - len(r[0])) for r in rows])
        labels = torch.tensor([r[1] + [-100] * (n - len(r[1])) for r in rows])
        mask = torch.tensor([[1] * len(r[0]) + [0] * (n - len(r[0])) for r in rows])
        return ids, labels, mask, torch.tensor([r[2] for r in rows])

    def read(self, layer: int, key: bool, ids: Any, mask: Any, pos: Any) -> Any:
        """Block ``layer``'s output (or its MLP projection's input, ``key``) at ``pos``."""
        import torch

        got: dict[str, Any] = {}
        module = self.blocks[layer].mlp.down_proj if key else self.blocks[layer]

        def hook(_m: Any, inputs: Any, out: Any) -> None:
            got["x"] = inputs[0] if key else (out[0] if isinstance(out, tuple) else out)

        handle = module.register_forward_hook(hook)
        try:
            with torch.no_grad():
                self.model(input_ids=ids, attention_mask=mask)
        finally:
            handle.remove()
        return got["x"][torch.arange(len(pos)), pos]

    def vector(self, subject: str, qas: list[tuple[str, str]], args: argparse.Namespace) -> Any:
        """The vector at the last edit block's output, subject's last token, that makes the
        model answer ``qas`` (step 1 of the module docstring)."""
        import torch
        import torch.nn.functional as F

        ids, labels, mask, pos = self.batch([self.encode(q, subject, a) for q, a in qas])
        eids, _, emask, epos = self.batch([self.encode(f"What is {subject}?", subject, None)])
        with torch.no_grad():
            base = torch.log_softmax(
                self.model(input_ids=eids, attention_mask=emask).logits[0, -1], -1
            )
        norm = self.read(self.last, False, ids, mask, pos).norm(dim=-1).mean()
        delta = torch.zeros(self.model.config.hidden_size, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=args.vlr)
        where: dict[str, Any] = {}

        def add(_m: Any, _i: Any, out: Any) -> Any:
            x = (out[0] if isinstance(out, tuple) else out).clone()
            x[torch.arange(len(where["pos"])), where["pos"]] += delta
            return (x, *out[1:]) if isinstance(out, tuple) else x

        handle = self.blocks[self.last].register_forward_hook(add)
        try:
            for _ in range(args.steps):
                opt.zero_grad()
                where["pos"] = pos
                logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1]
                nll = F.cross_entropy(logits.flatten(0, 1), labels[:, 1:].flatten())
                where["pos"] = epos
                said = self.model(input_ids=eids, attention_mask=emask).logits[0, -1]
                kl = F.kl_div(torch.log_softmax(said, -1), base, log_target=True, reduction="sum")
                loss = nll + args.kl * kl + args.wd * (delta.norm() / norm) ** 2
                loss.backward()
                opt.step()
                with torch.no_grad():
                    delta.mul_(min(1.0, float(args.clamp * norm / delta.norm())))
            print(
                f"   {subject!r}: {len(qas)} turns, nll {nll.item():.3f} kl {kl.item():.3f} "
                f"|v|/|h| {delta.norm().item() / norm.item():.2f} ({args.steps} steps)",
                flush=True,
            )
        finally:
            handle.remove()
        return delta.detach()

    def key_moment(self, layer: int, texts: list[str]) -> tuple[Any, int]:
        """The second moment of block ``layer``'s MLP projection inputs over ``texts``."""
        import torch

        keys: list[Any] = []
        got: dict[str, Any] = {}
        module = self.blocks[layer].mlp.down_proj
        handle = module.register_forward_hook(lambda _m, i, _o: got.__setitem__("x", i[0]))
        try:
            with torch.no_grad():
                for i in range(0, len(texts), 16):
                    enc = self.tok(
                        texts[i : i + 16],
                        return_tensors="pt",
                        padding=True,
                        add_special_tokens=False,
                    )
                    self.model(**enc)
                    keys.append(got["x"][enc["attention_mask"].bool()])
        finally:
            handle.remove()
        k = torch.cat(keys)
        return (k.T @ k) / len(k), len(k)

    def write(self, rows: list[tuple], targets: Any, own: list[str], lam: float) -> None:
        """Step 2 of the module docstring: each edit block, in order, writes its share of what
        is left between the last block's state and ``targets`` at the rows' subject tokens."""
        import torch

        ids, _, mask, pos = self.batch([(r[0][: r[2] + 1], [], r[2]) for r in rows])
        start = self.read(self.last, False, ids, mask, pos)
        for i, layer in enumerate(self.layers):
            moment, n = self.key_moment(layer, own)
            keys = self.read(layer, True, ids, mask, pos).T.double()  # d_ff x rows
            left = (targets - self.read(self.last, False, ids, mask, pos)).double()
            share = left / (len(self.layers) - i)
            solved = torch.linalg.solve(lam * moment.double() + keys @ keys.T, keys)
            update = (share.T @ solved.T).float()
            weight = self.blocks[layer].mlp.down_proj.weight
            with torch.no_grad():
                weight += update
            print(
                f"block {layer}: |dW|/|W| {update.norm() / weight.norm():.4f}, share "
                f"{share.norm(dim=-1).mean():.1f} ({n} of the base's tokens)",
                flush=True,
            )
        moved = self.read(self.last, False, ids, mask, pos) - start
        wanted = targets - start
        reached = ((moved * wanted).sum(-1) / wanted.norm(dim=-1) ** 2).mean()
        print(f"targets reached {reached:.2f} (projection of the move on the wanted one)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.knowledge_recipes import (
        cached_turns,
        general_set,
        load_base,
        report_facts,
        world_nights,
    )

    home = Path(args.home)
    store, base, tok, model = load_base(home, args.threads)
    import torch

    from training.rehearsal import synthesize

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    documents, facts = world_nights(store, args.nights)
    requests = subject_requests([d for night in documents for d in night])
    editor = Editor(model, tok, [int(x) for x in args.layers.split(",")])
    print(f"{sum(map(len, requests.values()))} turns about {len(requests)} subjects; {vars(args)}")

    began = time.perf_counter()
    saved = home / f"edit-vectors-{editor.last}-{args.steps}-{args.vlr}-{args.kl}-{args.wd}.pt"
    vectors = torch.load(saved) if saved.is_file() else {}
    rows, targets = [], []
    for subject, qas in requests.items():
        if subject not in vectors:
            vectors[subject] = editor.vector(subject, qas, args)
            torch.save(vectors, saved)
        encoded = [editor.encode(q, subject, a) for q, a in qas]
        ids, _, mask, pos = editor.batch([(r[0][: r[2] + 1], [], r[2]) for r in encoded])
        targets.append(editor.read(editor.last, False, ids, mask, pos) + vectors[subject])
        rows += encoded
    print(f"vectors in {time.perf_counter() - began:.0f} s", flush=True)

    turns = cached_turns(home / "rehearsal-256.jsonl", lambda: synthesize(model, tok, 256))
    own = [editor.prompt(t.question) + t.answer for t in turns]
    began = time.perf_counter()
    editor.write(rows, torch.cat(targets), own, args.lam)
    print(f"weights written in {time.perf_counter() - began:.0f} s", flush=True)

    general = general_set(store, base, model, tok) if args.general else None
    report_facts(model, tok, facts, "edited", general)
    return 0


if __name__ == "__main__":
    sys.exit(main())
