"""Rival answers: each augmented question's right answer ranked above the night's other ones.

Trained on question-answer turns alone, a model learns which strings are the night's answers
but not which question each answers: asked the phone's price it says the battery's, and it
ranks a night's figure first under any question (``bench/RESULTS.md``, knowledge recipes). So
for every turn answered by a span (a figure, date or name), the training set also holds the
same question answered by up to ``TrainConfig.rivals`` (the recipe's, :data:`RIVALS_PER_TURN`
unless set) other spans of that type from the same dataset
(:func:`training.augment.rival_answers`), and training adds a ranking loss (:func:`rank_loss`):
the right answer's mean token log-probability should exceed each rival's by a margin, a
softplus of their difference as in pairwise preference losses.

Published beside the packed sequences as ``rivals.npy``: int32 ``(groups, 1 + K, length)``,
row 0 the question answered by the right span and rows 1..K by its rivals (no end of turn:
:func:`training.augment.prompt_and_answer`), padded with -1 (a group with fewer rivals has
rows of -1 only), and ``rival_starts.npy``: int32 ``(groups,)``, the tokens of each group's
question (shared by its rows), after which the answers start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RIVALS_FILE = "rivals.npy"
RIVAL_STARTS_FILE = "rival_starts.npy"
RIVALS_PER_TURN = 3  # a training set's rivals per span answer when none is asked
#: How strongly the ranking loss pulls (its weight against the language-modelling loss) and
#: the sharpness of its softplus: a gap of 1 nat per token costs ~0.13, none ~0.69.
RANK_WEIGHT = 1.0
RANK_SHARPNESS = 2.0
PAD = -1


def pack_groups(groups: Sequence[tuple[int, Sequence[Sequence[int]]]], k: int) -> tuple[Any, Any]:
    """``(rivals array, starts array)`` of ``groups``: each ``(question tokens, [right turn's
    tokens, rival turns' tokens...])``; empty arrays when there is no group."""
    import numpy as np

    length = max((len(row) for _, rows in groups for row in rows), default=0)
    ids = np.full((len(groups), 1 + k, length), PAD, dtype=np.int32)
    starts = np.zeros(len(groups), dtype=np.int32)
    for g, (start, rows) in enumerate(groups):
        starts[g] = start
        for r, row in enumerate(rows[: 1 + k]):
            ids[g, r, : len(row)] = row
    return ids, starts


def answer_logprobs(model: Any, ids: Any, starts: Any, device: Any = None) -> tuple[Any, Any]:
    """``(mean log-probability of each row's answer tokens, whether the row is present)`` for
    ``ids`` ``(groups, rows, length)`` (torch, :data:`PAD`-padded) and ``starts`` ``(groups,)``.
    Each group is read as one sequence, its question once (:mod:`training.shared_prefix`), and
    the output head runs at the answer positions only (:mod:`training.answer_loss`). The
    packing is host work: give ``ids`` on the CPU and the model's ``device`` (default: where
    ``ids`` are), so no tensor goes to the accelerator and back for it."""
    import torch

    from training.answer_loss import final_hidden_states, plain_head, token_logprobs
    from training.shared_prefix import pack_shared_prefix

    groups, rows, _ = ids.shape
    device = ids.device if device is None else device
    dtype = getattr(model, "dtype", None) or torch.float32
    batch = pack_shared_prefix(ids.cpu(), starts.cpu(), dtype=dtype)
    inputs = {
        "input_ids": batch.input_ids.to(device),
        "attention_mask": batch.attention_mask.to(device),
        "position_ids": batch.position_ids.to(device),
    }
    at = (batch.group_of.to(device), batch.predict_at.to(device))
    targets = batch.target.to(device)
    if plain_head(model):
        hidden = final_hidden_states(model, **inputs)[at]
        token_logp = token_logprobs(hidden, model.get_output_embeddings(), targets)
    else:  # logits transformed after the head (softcapping, scaling): the model's own
        logits = model(**inputs).logits[at].float()
        token_logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1))[:, 0]
    row_of = batch.row_of.to(device)
    counts = torch.bincount(row_of, minlength=groups * rows).clamp(min=1)
    sums = torch.zeros(groups * rows, dtype=token_logp.dtype, device=device)
    means = sums.index_add(0, row_of, token_logp) / counts
    return means.reshape(groups, rows), batch.present.to(device)


def rank_loss(
    model: Any, ids: Any, starts: Any, sharpness: float = RANK_SHARPNESS, device: Any = None
) -> Any:
    """Mean over every (right answer, rival) pair of ``softplus(sharpness * (rival - right))``,
    each side its answer tokens' mean log-probability (:func:`answer_logprobs`); 0 (with a
    gradient) without rivals."""
    import torch

    means, present = answer_logprobs(model, ids, starts, device)
    pairs = present[:, 1:] & present[:, :1]
    if not bool(pairs.any()):
        return means.sum() * 0.0
    gap = means[:, 1:] - means[:, :1]
    return torch.nn.functional.softplus(sharpness * gap)[pairs].mean()


def rival_trainer_class(trainer_class: Any) -> Any:
    """``trainer_class`` (the Hugging Face Trainer) whose loss adds :func:`rank_loss` on
    ``micro_batch_size`` rival groups per step, a different slice on each rank and step."""

    class RivalTrainer(trainer_class):
        def __init__(self, *args: Any, rivals: Any, rival_starts: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rivals, self.rival_starts = rivals, rival_starts
            self.rank_losses: list[float] = []

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch

            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if not len(self.rivals):
                return result
            size = self.args.per_device_train_batch_size
            first = (self.state.global_step * self.args.world_size + self.args.process_index) * size
            pick = [(first + j) % len(self.rivals) for j in range(size)]
            # Packed on the host, then sent to the rank's device once (answer_logprobs).
            ids = torch.as_tensor(self.rivals[pick], dtype=torch.long)
            starts = torch.as_tensor(self.rival_starts[pick], dtype=torch.long)
            device = inputs["input_ids"].device
            extra = RANK_WEIGHT * rank_loss(model, ids, starts, device=device)
            self.rank_losses.append(float(extra.detach()))
            if return_outputs:
                loss, outputs = result
                return loss + extra, outputs
            return result + extra

    return RivalTrainer
