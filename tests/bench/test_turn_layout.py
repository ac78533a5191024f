"""bench/turn_layout.py counts the turns a training set's rows cut from their questions."""

from __future__ import annotations

import io

import numpy as np

from bench.turn_layout import cut_turns
from training.packing import Text, pack


def rows(texts, seq_len):
    packed = pack(texts, 0, seq_len)
    return np.load(io.BytesIO(packed.npy)), np.load(io.BytesIO(packed.mask_npy))


def test_turns_cut_blind_are_counted_and_whole_ones_are_not():
    # Pages of 7 tokens and turns of 6 (3 of question) in rows of 8: cut blind, turns run over
    # row ends; laid out whole, none does.
    texts = []
    for n in range(12):
        texts.append(Text(list(range(100 + 10 * n, 107 + 10 * n))))
        texts.append(Text(list(range(500 + 10 * n, 505 + 10 * n)), prompt_tokens=3))
    blind = cut_turns(*rows(texts, 8), eos=0)
    whole = cut_turns(
        *rows([Text(t.ids, t.prompt_tokens, bool(t.prompt_tokens)) for t in texts], 8), eos=0
    )
    assert blind[0] >= 10 and blind[1] >= 5 and blind[2] == 0
    assert whole[0] >= 10 and whole[1] == 0 and whole[2] == 0
