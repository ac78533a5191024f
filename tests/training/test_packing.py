"""The training set's rows: long documents cut blind, derived texts (turns, statements) whole."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest

from training.packing import PackingError, Text, pack

EOS = 0


def rows_of(packed, seq_len):
    ids = np.load(io.BytesIO(packed.npy))
    mask = None if packed.mask_npy is None else np.load(io.BytesIO(packed.mask_npy))
    assert ids.shape == (packed.sequences, seq_len)
    return ids, mask


def doc(start, n, prompt=0, whole=False):
    """A text of ``n`` distinct token ids from ``start`` (never EOS)."""
    return Text(list(range(start, start + n)), prompt, whole)


def test_without_derived_texts_the_stream_is_cut_blind():
    texts = [doc(100, 5), doc(200, 9), doc(300, 4)]
    packed = pack(texts, EOS, 8)
    ids, mask = rows_of(packed, 8)
    stream = [*range(100, 105), EOS, *range(200, 209), EOS, *range(300, 304), EOS]
    assert ids.reshape(-1).tolist() == stream[:16]
    assert mask is None and packed.padding == 0 and packed.too_long == 0
    assert (packed.tokens, packed.dropped_tail) == (len(stream), len(stream) - 16)


def test_a_turn_that_does_not_fit_starts_a_row_and_the_next_page_fills_the_gap():
    # Row 1: a 5-token page, then a 6-token turn (3 of question) that does not fit in the 3
    # left: the next page's first 3 tokens fill them, the turn starts row 2, the page's rest
    # follows the turn at the page's own place.
    texts = [doc(100, 4), doc(500, 5, prompt=3, whole=True), doc(200, 6)]
    packed = pack(texts, EOS, 8)
    ids, mask = rows_of(packed, 8)
    assert ids[0].tolist() == [100, 101, 102, 103, EOS, 200, 201, 202]
    assert ids[1].tolist() == [500, 501, 502, 503, 504, EOS, 203, 204]
    assert mask[1].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert (packed.padding, packed.context_only, packed.too_long) == (0, 3, 0)
    # Every document's tokens are placed once, in its own order.
    assert packed.tokens == 4 + 1 + 5 + 1 + 6 + 1


def test_with_no_page_left_the_gap_is_padding_without_loss():
    texts = [doc(100, 5, prompt=2, whole=True), doc(200, 5, prompt=2, whole=True)]
    packed = pack([*texts, doc(300, 1, whole=True)], EOS, 8)
    ids, mask = rows_of(packed, 8)
    assert ids[0].tolist() == [100, 101, 102, 103, 104, EOS, EOS, EOS]
    assert mask[0].tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    assert ids[1].tolist() == [200, 201, 202, 203, 204, EOS, 300, EOS]
    assert (packed.padding, packed.context_only, packed.dropped_tail) == (2, 4, 0)
    assert packed.tokens == 14  # padding is not the documents'


def test_a_text_longer_than_a_row_starts_one_and_is_counted():
    texts = [doc(100, 3), doc(500, 10, prompt=4, whole=True), doc(200, 20)]
    packed = pack(texts, EOS, 8)
    ids, _ = rows_of(packed, 8)
    assert ids[1, :4].tolist() == [500, 501, 502, 503]  # its question opens a row
    assert packed.too_long == 1


def test_every_turn_that_fits_lies_in_one_row_and_nothing_is_lost():
    rng = random.Random(7)
    texts, next_id = [], 1
    for _ in range(400):
        whole = rng.random() < 0.7
        n = rng.randint(4, 40) if whole else rng.randint(10, 300)
        prompt = rng.randint(1, n - 1) if whole else 0
        texts.append(doc(next_id, n, prompt, whole))
        next_id += n
    seq_len = 64
    packed = pack(texts, EOS, seq_len)
    ids, mask = rows_of(packed, seq_len)
    where = {}
    for r, row in enumerate(ids):
        for c, t in enumerate(row):
            if t != EOS:
                assert t not in where, "a token placed twice"
                where[int(t)] = (r, c)
    whole_in_rows = 0
    for t in texts:
        if t.whole and len(t.ids) + 1 <= seq_len and all(i in where for i in t.ids):
            assert len({where[i][0] for i in t.ids}) == 1, "a turn that fits was cut across rows"
            whole_in_rows += 1
        if t.whole and t.prompt_tokens and t.ids[0] in where:
            r, c = where[t.ids[0]]
            assert mask[r, c] == 0 and mask[where[t.ids[t.prompt_tokens]]] == 1
    assert whole_in_rows > 250
    placed = len(where) + int((ids == EOS).sum()) - packed.padding
    assert placed + packed.dropped_tail == packed.tokens
    # The gaps are filled with pages while pages remain: little padding.
    assert packed.padding < 0.05 * ids.size


def test_too_few_tokens_for_a_row_is_a_clear_error():
    with pytest.raises(PackingError, match="seq_len=64"):
        pack([doc(1, 5)], EOS, 64)
