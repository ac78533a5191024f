"""Log-likelihood scoring of a Hugging Face causal LM: choices, sentences and perplexity.

:class:`CausalLMScorer` wraps a model and its tokenizer (``from_pretrained`` loads them from a
local folder, such as one :func:`freshlm.registry.download_version` filled) and scores requests
in padded batches under ``torch.inference_mode``. Every request is "these token ids, of which
the last *n* are scored": the summed log-probability of those tokens, each given everything
before it. Requests are sorted longest first, so a batch pads little and an out-of-memory
error, if any, comes with the first batch.

**Choices.** A choice is appended to its context with one space in between. Byte-level BPE can
merge across that boundary, and a context ending in whitespace tokenizes differently on its own
than inside the longer text. So the scorer tokenizes ``context`` and ``context + " " + choice``
and scores the tokens of the second after the longest prefix the two share: exactly the tokens
the appended text needs, each conditioned on the tokenization of the context that the model
would see in running text. (lm-evaluation-harness tokenizes context and continuation
separately after moving trailing spaces; the shared-prefix rule gives the same tokens in the
usual case and stays correct when the tokenizer merges across the boundary.)

**Normalization.** The chosen index maximizes the log-likelihood of ``" " + choice`` *per UTF-8
byte of the choice* (the delimiter not counted): the byte-length normalization of
lm-evaluation-harness's ``acc_bytes``/``acc_norm`` (EleutherAI, "Multiple Choice Normalization
in LM Evaluation", https://blog.eleuther.ai/multiple-choice-normalization/). Per-token
normalization (GPT-3's) is not used: it depends on how a tokenizer splits the choice, so a
candidate with a retrained tokenizer would not be comparable with production. The harness's
code divides by the choice's length in characters, which equals bytes for ASCII; bytes keep
Korean choices (3 bytes per syllable) on the same footing as English ones. Ties go to the
lowest index. The raw sums and token counts are kept in :class:`ItemResult`, so other
normalizations can be recomputed.

**Start of text.** Every request starts with the tokenizer's BOS token (GPT-2 style tokenizers:
``<|endoftext|>``, which also separated documents in pretraining), so the first token of a
context, sentence or document is scored too. A tokenizer without BOS or EOS leaves the first
token of a text unscored.

**Perplexity** is token-weighted over all texts: ``exp(total NLL / total tokens)``. A text
longer than the window is scored with overlapping windows of ``max_length`` tokens that
advance by half a window; each token is scored exactly once, with at least half a window of
context once past the first window (the strided evaluation of the Hugging Face guide
"Perplexity of fixed-length models").

**Windows.** A request holds one id more than the model is fed: its last id is only ever
predicted, never an input, so a full window conditions on ``max_length`` tokens (as
lm-evaluation-harness does: it keeps ``max_length + 1`` ids and feeds all but the last).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freshlm.evaluation.memo import ScoreMemo, request_key

if TYPE_CHECKING:
    from freshlm.evaluation.items import Item

log = logging.getLogger(__name__)

#: What a scoring request is: token ids (start-of-text token included) and how many of the
#: last ones are scored.
Request = tuple[list[int], int]


@dataclasses.dataclass(frozen=True)
class Score:
    """The summed log-probability of the scored tokens of one request."""

    logprob: float
    tokens: int
    greedy: bool  # every scored token was the model's argmax (lm-evaluation-harness is_greedy)


@dataclasses.dataclass(frozen=True)
class Continuation:
    """One choice's score given its context: summed log-probability of the tokens the
    appended text needs, their count, and the UTF-8 bytes of the choice (the delimiter
    space excluded, as lm-evaluation-harness counts them for ``acc_norm``/``acc_bytes``:
    counting it would favour short choices, and the two evaluators would disagree)."""

    logprob: float
    tokens: int
    bytes: int
    greedy: bool

    @property
    def per_byte(self) -> float:
        return self.logprob / max(1, self.bytes)

    @property
    def per_token(self) -> float:
        return self.logprob / max(1, self.tokens)


@dataclasses.dataclass(frozen=True)
class ItemResult:
    """How a model answered one item: the chosen index (per-byte normalized) and whether it
    is the answer, with the raw scores of every choice."""

    item_id: str
    kind: str
    group: str
    answer_index: int
    chosen: int
    correct: bool
    logprobs: tuple[float, ...]
    tokens: tuple[int, ...]
    bytes: tuple[int, ...]

    @property
    def chosen_unnormalized(self) -> int:
        """The choice with the highest summed log-likelihood (lm-evaluation-harness ``acc``)."""
        return _argmax(self.logprobs)

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        for name in ("logprobs", "tokens", "bytes"):
            doc[name] = list(doc[name])
        doc["logprobs"] = [round(v, 6) for v in self.logprobs]
        return doc


@dataclasses.dataclass(frozen=True)
class Perplexity:
    """Token-weighted perplexity of a set of texts; ``perplexity`` is None when there was no
    token to score (or the mean NLL overflows)."""

    perplexity: float | None
    nll: float
    tokens: int
    texts: int
    windows: int

    @property
    def mean_nll(self) -> float | None:
        return self.nll / self.tokens if self.tokens else None


def select_choice(logprobs: Sequence[float], lengths: Sequence[int]) -> int:
    """The index with the highest ``logprob / length`` (lengths in bytes); ties go to the
    lowest index."""
    if not logprobs or len(logprobs) != len(lengths):
        raise ValueError("select_choice needs one length per log-probability, at least one")
    return _argmax([lp / max(1, n) for lp, n in zip(logprobs, lengths, strict=True)])


def _argmax(values: Sequence[float]) -> int:
    best = 0
    for i, value in enumerate(values):
        if value > values[best]:
            best = i
    return best


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` torch CPU threads, restoring the previous count (None: unchanged)."""
    import torch

    if threads is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class CausalLMScorer:
    """Batched log-likelihood scoring with one causal LM (see the module docstring).

    ``max_length`` is the longest sequence given to the model (default and ceiling: the
    model's context size). Results do not depend on ``batch_size`` beyond float rounding.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 16,
        max_length: int | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, not {batch_size!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        context = context_size(model, tokenizer)
        if max_length is not None and max_length < 2:
            raise ValueError(f"max_length must be at least 2, not {max_length}")
        self.max_length = min(max_length or context, context)
        start = tokenizer.bos_token_id
        self.start_id: int | None = start if start is not None else tokenizer.eos_token_id
        pad = tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else (self.start_id or 0)
        #: Scores already known for this model (:mod:`freshlm.evaluation.memo`); None: none.
        self.memo: ScoreMemo | None = None
        # ``logits_to_keep=1`` where the model takes it: the prefix pass needs only its last
        # position's logits, and the output head is the costliest layer of a small model with
        # a large vocabulary.
        takes = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._last_logits_only: dict[str, int] = {"logits_to_keep": 1} if takes else {}

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 16,
        max_length: int | None = None,
        device: str | None = None,
        dtype: Any = None,
    ) -> CausalLMScorer:
        """Load the model and tokenizer of a local Hugging Face folder (never the hub).

        ``device`` defaults to CUDA when available, else CPU; ``dtype`` to the format the
        weights were saved in (the evaluation passes :attr:`EvalConfig.dtype
        <freshlm.evaluation.config.EvalConfig.dtype>`, so two models compare in one format).
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"{folder}: no config.json; expected a Hugging Face model folder"
            )
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs: dict[str, Any] = {"local_files_only": True}
        if dtype is not None:
            kwargs["dtype"] = dtype
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs).to(device)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return cls(model, tokenizer, batch_size=batch_size, max_length=max_length)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def warm_up(self) -> None:
        """One tiny forward pass, so that one-off initialization is not timed as scoring."""
        import torch

        start = self.start_id if self.start_id is not None else self.pad_id
        with torch.inference_mode():
            self.model(input_ids=torch.tensor([[start, start]], device=self.device))

    # --- tokens ---------------------------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        if not texts:
            return []
        # verbose=False: texts longer than the model's context are expected here (they are
        # windowed or cut from the left), so transformers' length warning would only mislead.
        encoded = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)
        return [list(ids) for ids in encoded["input_ids"]]

    def _start(self) -> list[int]:
        return [] if self.start_id is None else [self.start_id]

    def _text_requests(self, ids: list[int]) -> list[Request]:
        """Windows that score every token of one text exactly once (see the module doc)."""
        seq = self._start() + ids
        if len(seq) < 2:  # the first position is only ever context
            return []
        width = self.max_length + 1  # the last id of a window is predicted, not fed
        overlap = self.max_length // 2
        requests: list[Request] = []
        begin, scored_to = 0, 1
        while scored_to < len(seq):
            end = min(begin + width, len(seq))
            requests.append((seq[begin:end], end - scored_to))
            scored_to = end
            begin = end - overlap
        return requests

    # --- the forward passes ---------------------------------------------------------------------

    def score_requests(self, requests: Sequence[Request]) -> list[Score]:
        """Score each request (ids, n): the summed log-probability of its last ``n`` ids."""
        return self._memoized(requests, self._forward_requests)

    def score_continuations(self, requests: Sequence[Request]) -> list[Score]:
        """:meth:`score_requests` for requests that share what they are fed before their scored
        tokens (the choices of one item): each distinct prefix is run once and its key/value
        cache reused by every continuation of it, and only scored positions go through the
        output head. Same results as :meth:`score_requests` up to float rounding."""
        return self._memoized(requests, self._forward_continuations)

    def _memoized(
        self, requests: Sequence[Request], compute: Callable[[Sequence[Request]], list[Score]]
    ) -> list[Score]:
        """``compute`` only the requests the memo (if any) does not know; remember the rest."""
        for ids, n in requests:
            if not 1 <= n < len(ids) or len(ids) > self.max_length + 1:
                raise ValueError(
                    f"a request must score 1..{len(ids) - 1} of its {len(ids)} ids and hold at "
                    f"most {self.max_length + 1} (the model is fed all but the last); got n={n}"
                )
        if self.memo is None:
            return compute(requests)
        keys = [request_key(ids, n) for ids, n in requests]
        missing = [i for i, key in enumerate(keys) if key not in self.memo.scores]
        self.memo.hits += len(requests) - len(missing)
        computed = compute([requests[i] for i in missing]) if missing else []
        for i, score in zip(missing, computed, strict=True):
            self.memo.scores[keys[i]] = (score.logprob, score.tokens, score.greedy)
        return [Score(*self.memo.scores[key]) for key in keys]

    def _forward_requests(self, requests: Sequence[Request]) -> list[Score]:
        import torch

        order = sorted(range(len(requests)), key=lambda i: -len(requests[i][0]))
        results: list[Score | None] = [None] * len(requests)
        device = self.device
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                # The last id of a request is only a target: its logits would predict nothing
                # scored, so the model is fed one id less (and a full window gets one more token
                # of context, as lm-evaluation-harness does).
                width = len(requests[batch[0]][0]) - 1
                inputs = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, index in enumerate(batch):
                    ids = requests[index][0][:-1]
                    inputs[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                    mask[row, : len(ids)] = 1
                logits = self.model(
                    input_ids=inputs.to(device), attention_mask=mask.to(device)
                ).logits
                for row, index in enumerate(batch):
                    ids, n = requests[index]
                    length = len(ids)
                    # Right padding: the fed tokens sit at 0..length-2 and never attend to the
                    # pads after them, so each row scores as it would alone.
                    step = logits[row, length - n - 1 : length - 1].float().log_softmax(-1)
                    targets = torch.tensor(ids[length - n :], dtype=torch.long, device=device)
                    picked = step.gather(1, targets[:, None]).squeeze(1)
                    greedy = bool((step.argmax(-1) == targets).all())
                    results[index] = Score(float(picked.sum()), n, greedy)
        return [r for r in results if r is not None]

    def _forward_continuations(self, requests: Sequence[Request]) -> list[Score]:
        import torch

        groups: dict[tuple[int, ...], list[int]] = {}
        for index, (ids, n) in enumerate(requests):
            groups.setdefault(tuple(ids[: len(ids) - n]), []).append(index)
        prefixes = sorted(groups, key=len, reverse=True)
        results: list[Score | None] = [None] * len(requests)
        with torch.inference_mode():
            for start in range(0, len(prefixes), self.batch_size):
                batch = prefixes[start : start + self.batch_size]
                members = [(row, i) for row, p in enumerate(batch) for i in groups[p]]
                scored = self._continuation_pass(batch, [requests[i] for _, i in members], members)
                for (_, index), score in zip(members, scored, strict=True):
                    results[index] = score
        return [r for r in results if r is not None]

    def _continuation_pass(
        self,
        prefixes: Sequence[tuple[int, ...]],
        requests: Sequence[Request],
        members: Sequence[tuple[int, int]],
    ) -> list[Score]:
        """Run ``prefixes`` left-padded with their cache kept, then every request's scored
        tokens (all but the last fed) on the cache of its prefix row."""
        import torch

        device = self.device
        width = len(prefixes[0])
        inputs = torch.full((len(prefixes), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prefixes), width), dtype=torch.long)
        for row, prefix in enumerate(prefixes):
            inputs[row, width - len(prefix) :] = torch.tensor(prefix, dtype=torch.long)
            mask[row, width - len(prefix) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(
            input_ids=inputs.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            use_cache=True,
            **self._last_logits_only,
        )
        first = out.logits[:, -1].float().log_softmax(-1)  # predicts each first scored token
        rows = torch.tensor([row for row, _ in members], dtype=torch.long, device=device)
        targets = [ids[len(ids) - n :] for ids, n in requests]
        fed = max(len(t) for t in targets) - 1
        later = None
        if fed > 0:
            cache = out.past_key_values
            cache.batch_select_indices(rows)
            tail = torch.full((len(requests), fed), self.pad_id, dtype=torch.long)
            tail_mask = torch.zeros((len(requests), fed), dtype=torch.long)
            for r, t in enumerate(targets):
                tail[r, : len(t) - 1] = torch.tensor(t[:-1], dtype=torch.long)
                tail_mask[r, : len(t) - 1] = 1
            lengths = mask.sum(-1).to(device)[rows]
            later = self.model(
                input_ids=tail.to(device),
                attention_mask=torch.cat([mask.to(device)[rows], tail_mask.to(device)], dim=1),
                # Pads after a short continuation are never scored; their positions are
                # clamped so that they stay inside the model's position table.
                position_ids=(lengths[:, None] + torch.arange(fed, device=device)[None, :]).clamp(
                    max=self.max_length - 1
                ),
                past_key_values=cache,
                use_cache=True,
            ).logits.float()
        scores = []
        for r, t in enumerate(targets):
            steps = first[rows[r]][None, :]
            if len(t) > 1 and later is not None:
                steps = torch.cat([steps, later[r, : len(t) - 1].log_softmax(-1)])
            wanted = torch.tensor(t, dtype=torch.long, device=device)
            picked = steps.gather(1, wanted[:, None]).squeeze(1)
            greedy = bool((steps.argmax(-1) == wanted).all())
            scores.append(Score(float(picked.sum()), len(t), greedy))
        return scores

    # --- choices --------------------------------------------------------------------------------

    def score_choices(self, pairs: Sequence[tuple[str, str]]) -> list[Continuation]:
        """Score each ``(context, choice)``: the log-likelihood of ``" " + choice`` after
        ``context`` (see the module docstring for the token boundary)."""
        contexts = sorted({c for c, _ in pairs})
        context_ids = dict(zip(contexts, self.encode(contexts), strict=True))
        full_ids = self.encode([f"{c} {choice}" for c, choice in pairs])
        requests: list[Request] = []
        lengths: list[int] = []
        for (context, choice), full in zip(pairs, full_ids, strict=True):
            shared = _common_prefix(context_ids[context], full)
            n = len(full) - shared
            if n < 1:  # cannot happen with a space appended, but never score nothing silently
                raise ValueError(f"choice {choice!r} adds no token to context {context!r}")
            seq = self._start() + full
            if len(seq) > self.max_length + 1:
                seq = seq[-(self.max_length + 1) :]
                if n > len(seq) - 1:
                    log.warning(
                        "choice %r is longer than the scoring window (%d tokens); scoring its "
                        "last %d tokens",
                        choice[:40],
                        self.max_length,
                        len(seq) - 1,
                    )
                    n = len(seq) - 1
            requests.append((seq, n))
            lengths.append(len(choice.encode("utf-8")))
        scores = self.score_continuations(requests)
        return [
            Continuation(s.logprob, s.tokens, n_bytes, s.greedy)
            for s, n_bytes in zip(scores, lengths, strict=True)
        ]

    def rank_items(
        self, items: Sequence[Item], contexts: Sequence[str] | None = None
    ) -> list[ItemResult]:
        """Answer each item: score every choice after its context (all items' choices in one
        batched pass) and pick the best per byte (see :func:`select_choice`). ``contexts``,
        when given, replaces each item's context in the scoring (one per item)."""
        if contexts is not None and len(contexts) != len(items):
            raise ValueError(f"{len(contexts)} contexts for {len(items)} items")
        pairs: list[tuple[str, str]] = []
        for n, item in enumerate(items):
            if not item.choices:
                raise ValueError(f"item {item.id}: has no choices")
            if not 0 <= item.answer_index < len(item.choices):
                raise ValueError(
                    f"item {item.id}: answer_index {item.answer_index} is outside its "
                    f"{len(item.choices)} choices"
                )
            context = item.context if contexts is None else contexts[n]
            pairs.extend((context, choice) for choice in item.choices)
        started = time.perf_counter()
        scores = self.score_choices(pairs)
        seconds = time.perf_counter() - started
        results: list[ItemResult] = []
        position = 0
        for item in items:
            own = scores[position : position + len(item.choices)]
            position += len(item.choices)
            logprobs = tuple(s.logprob for s in own)
            lengths = tuple(s.bytes for s in own)
            chosen = select_choice(logprobs, lengths)
            results.append(
                ItemResult(
                    item_id=item.id,
                    kind=item.kind,
                    group=item.group,
                    answer_index=item.answer_index,
                    chosen=chosen,
                    correct=chosen == item.answer_index,
                    logprobs=logprobs,
                    tokens=tuple(s.tokens for s in own),
                    bytes=lengths,
                )
            )
        if items:
            log.info(
                "scored %d items (%d choices) in %.2fs: %.1f items/s, batch size %d",
                len(items),
                len(pairs),
                seconds,
                len(items) / seconds if seconds > 0 else float("inf"),
                self.batch_size,
            )
        return results

    # --- whole texts ----------------------------------------------------------------------------

    def text_logprobs(self, texts: Sequence[str]) -> list[Score]:
        """Each text's log-likelihood: every token given the ones before it (and the start of
        text), over sliding windows if it is longer than the scoring window."""
        plans = [self._text_requests(ids) for ids in self.encode(texts)]
        flat = [r for plan in plans for r in plan]
        scores = iter(self.score_requests(flat))
        results = []
        for plan in plans:
            parts = [next(scores) for _ in plan]
            results.append(
                Score(
                    sum(p.logprob for p in parts),
                    sum(p.tokens for p in parts),
                    all(p.greedy for p in parts),
                )
            )
        return results

    def perplexity(self, texts: Sequence[str]) -> Perplexity:
        """Token-weighted perplexity of ``texts`` (see the module docstring)."""
        started = time.perf_counter()
        texts = [t for t in texts if t]
        ids = self.encode(texts)
        plans = [self._text_requests(i) for i in ids]
        flat = [r for plan in plans for r in plan]
        scores = self.score_requests(flat)
        nll = -sum(s.logprob for s in scores)
        tokens = sum(s.tokens for s in scores)
        mean = nll / tokens if tokens else None
        value = math.exp(mean) if mean is not None and mean < 700 else None
        seconds = time.perf_counter() - started
        log.info(
            "perplexity %s over %d texts, %d tokens, %d windows in %.2fs (%.0f tokens/s)",
            f"{value:.3f}" if value is not None else "n/a",
            len(texts),
            tokens,
            len(flat),
            seconds,
            tokens / seconds if seconds > 0 else 0.0,
        )
        return Perplexity(value, nll, tokens, len(texts), len(flat))


def context_size(model: Any, tokenizer: Any = None) -> int:
    """The model's context length in tokens (config, else the tokenizer's, else 1024)."""
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 1:
            return value
    value = getattr(tokenizer, "model_max_length", None) if tokenizer is not None else None
    if isinstance(value, int) and 1 < value < 1_000_000:
        return value
    return 1024
