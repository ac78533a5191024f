"""How many of a training set's turns are cut across its rows (`training.packing`).

    .venv/bin/python bench/turn_layout.py --store file:///HOME/store TRAINSET_ID [...]

A turn is a question (tokens the loss mask marks as context only) followed by its answer, up
to the end-of-text token that closes it. A turn whose answer ends in another row than the
one its question starts in is trained, in that other row, without its question (or without
part of it). For each published training set: its turns, how many are cut so, the rows'
padding and the turns longer than a row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cut_turns(ids, mask, eos: int) -> tuple[int, int, int]:
    """``(turns, turns cut across rows, turns longer than a row)`` of the rows ``ids`` with
    their loss ``mask`` (padding, an untrained run of end-of-text tokens, is no turn)."""
    seq_len = ids.shape[1]
    flat, trained = ids.reshape(-1), mask.reshape(-1)
    turns = cut = too_long = 0
    i = 0
    while i < len(flat):
        if trained[i]:
            i += 1
            continue
        start = i
        while i < len(flat) and not trained[i]:
            i += 1
        if (flat[start:i] == eos).all():
            continue  # padding
        end = i
        while end < len(flat) and flat[end] != eos:
            end += 1
        if end == len(flat):
            break  # the last turn runs past the set's end
        turns += 1
        cut += start // seq_len != end // seq_len
        too_long += end - start + 1 > seq_len
        i = end + 1
    return turns, cut, too_long


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="the store's URI (file:///HOME/store)")
    parser.add_argument("trainsets", nargs="+", help="published training set ids")
    args = parser.parse_args()

    from freshlm.store import open_store
    from training.trainset import load_input_ids, load_loss_mask, read_training_set

    store = open_store(args.store)
    for trainset_id in args.trainsets:
        trainset = read_training_set(store, trainset_id)
        ids, mask = load_input_ids(store, trainset), load_loss_mask(store, trainset)
        if mask is None:
            print(f"{trainset_id}: no turns (every token is trained on)")
            continue
        turns, cut, too_long = cut_turns(ids, mask, int(trainset.fields["eos_token_id"]))
        padding = trainset.fields.get("padding_tokens", 0)
        print(
            f"{trainset_id}: {ids.shape[0]} rows x {ids.shape[1]}; {turns} turns, {cut} "
            f"({cut / max(turns, 1):.1%}) cut across rows, {too_long} longer than a row; "
            f"padding {padding} tokens ({padding / ids.size:.2%})"
        )


if __name__ == "__main__":
    main()
