"""Rival answers scored after one shared reading of their question.

A rival group (:mod:`training.rivals`) is one question answered by the right span and by up to
K rival spans. Written as K + 1 separate turns, the question, long (the whole fact sentence in
the model's chat template, system prompt included), is read K + 1 times for answers of a few
tokens: most of the ranking loss's cost. Here each group becomes ONE sequence, the question
followed by every answer, with an attention mask that lets each answer see the question and
itself only, and position ids that restart each answer right after the question (the
"shared prefix" packing of preference-training libraries). Every answer's tokens then get
exactly the log-probabilities they get in their own turn, for the question's tokens once.

The mask is a 4D additive one (0 where a query token may attend, the dtype's minimum where
not), which Hugging Face models take as given (``masking_utils``: a 4D mask is used as is).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from training.rivals import PAD


@dataclasses.dataclass(frozen=True)
class SharedPrefixBatch:
    """Rival groups packed one sequence each (see the module docstring).

    ``input_ids``, ``position_ids``: ``(groups, T)``; ``attention_mask``: ``(groups, 1, T, T)``
    additive; each scored answer token ``n`` is predicted at ``(group_of[n], predict_at[n])``
    and is ``target[n]``; it belongs to row ``row_of[n]`` of ``present`` (``(groups, rows)``,
    flattened), the rows that exist."""

    input_ids: Any
    position_ids: Any
    attention_mask: Any
    group_of: Any
    predict_at: Any
    target: Any
    row_of: Any
    present: Any


def pack_shared_prefix(ids: Any, starts: Any, dtype: Any = None) -> SharedPrefixBatch:
    """Pack ``ids`` ``(groups, rows, length)`` (:data:`PAD`-padded; every row of a group starts
    with the same ``starts[g]`` question tokens) into one sequence per group."""
    import torch

    dtype = dtype or torch.float32
    groups, rows, _ = ids.shape
    present = (ids != PAD).any(dim=2)
    packed: list[list[int]] = []
    positions: list[list[int]] = []
    owners: list[list[int]] = []  # per token: -1 for the question, else its row
    group_of, predict_at, target, row_of = [], [], [], []
    for g in range(groups):
        start = int(starts[g])
        first = next((r for r in range(rows) if present[g, r]), None)
        if first is None:
            start = 0  # an empty group: nothing to read or score
        elif start < 1:
            raise ValueError(f"rival group {g}: its question has no token (start {start})")
        question = ids[g, first, :start].tolist() if first is not None else []
        seq, pos, owner = list(question), list(range(start)), [-1] * start
        for r in range(rows):
            if not present[g, r]:
                continue
            row = ids[g, r]
            answer = row[start:][row[start:] != PAD].tolist()
            for k, token in enumerate(answer):
                # The first answer token is predicted from the question's last token, shared.
                predict_at.append(start - 1 if k == 0 else len(seq) - 1)
                group_of.append(g)
                target.append(token)
                row_of.append(g * rows + r)
                seq.append(token)
                pos.append(start + k)
                owner.append(r)
        packed.append(seq)
        positions.append(pos)
        owners.append(owner)
    length = max((len(s) for s in packed), default=0)
    input_ids = torch.zeros((groups, length), dtype=torch.long)
    position_ids = torch.zeros((groups, length), dtype=torch.long)
    allowed = torch.zeros((groups, length, length), dtype=torch.bool)
    for g, (seq, pos, owner) in enumerate(zip(packed, positions, owners, strict=True)):
        n = len(seq)
        input_ids[g, :n] = torch.tensor(seq, dtype=torch.long)
        position_ids[g, :n] = torch.tensor(pos, dtype=torch.long)
        who = torch.tensor(owner, dtype=torch.long)
        causal = torch.ones((n, n), dtype=torch.bool).tril()
        # A token sees the question and the tokens of its own answer before it.
        same = (who[None, :] == -1) | (who[None, :] == who[:, None])
        allowed[g, :n, :n] = causal & same
        # Padding queries attend to themselves only, so no row of the softmax is empty.
        allowed[g, n:, n:] = torch.eye(length - n, dtype=torch.bool)
    mask = torch.zeros((groups, 1, length, length), dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    as_long = dict(dtype=torch.long)
    return SharedPrefixBatch(
        input_ids=input_ids,
        position_ids=position_ids,
        attention_mask=mask,
        group_of=torch.tensor(group_of, **as_long),
        predict_at=torch.tensor(predict_at, **as_long),
        target=torch.tensor(target, **as_long),
        row_of=torch.tensor(row_of, **as_long),
        present=present,
    )
