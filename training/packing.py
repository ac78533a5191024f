"""A run's documents laid out as the rows the trainer reads, derived texts kept whole.

The training set is one token stream cut into rows of ``seq_len`` tokens. A long document (a
page, a replayed article) is cut wherever a row ends, as continued pretraining cuts it. A
derived text (a question-answer turn of the knowledge augmentation or the rehearsal, a fact
stated under its document's title) is never cut when it fits in a row: a turn cut at a row's
end leaves its answer at the start of the next row without its question, trained as an
answer to no question, and a statement cut in two loses its subject. Cut blind at ``seq_len``
128, 65% of night 1's turns end in another row than the one their question starts in; laid out
whole, 2.6%, the turns longer than a row (bench/RESULTS.md, where a night trained either way
learns and keeps about as much: the layout costs 0.1% of padding and trains each answer
after its question).

Where a derived text does not fit in what is left of a row, the gap takes the next long
document's tokens in the stream's order (the rest of that document follows at its own place),
or end-of-text padding that no loss is taken on when no long document is left. A derived text
longer than a row starts a row, so its question and the start of its answer stay together, and
is counted (``too_long``). Without derived texts the layout is the plain stream, cut blind.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Text:
    """One document of the stream: its token ids (without end-of-text), how many leading tokens
    are context only (a turn's question), and whether it is a derived text to keep whole."""

    ids: Sequence[int]
    prompt_tokens: int = 0
    whole: bool = False


@dataclasses.dataclass(frozen=True)
class Packed:
    """The rows: ``input_ids.npy`` and (where any token is context only) ``loss_mask.npy`` bytes,
    and what the layout did with the stream's tokens."""

    npy: bytes
    mask_npy: bytes | None
    tokens: int  # the documents' tokens with one end-of-text each
    sequences: int
    context_only: int  # question tokens in the rows (no loss)
    padding: int  # end-of-text tokens filling gaps before whole texts (no loss)
    dropped_tail: int  # stream tokens after the last full row
    too_long: int  # derived texts longer than a row, cut after their row's end


class PackingError(ValueError):
    """The documents cannot be laid out (too few tokens for one row, ids beyond int32)."""


def pack(texts: Sequence[Text], eos: int, seq_len: int) -> Packed:
    """Lay ``texts`` out in order as rows of ``seq_len`` tokens (see the module docstring)."""
    import numpy as np

    ids: list[int] = []
    mask: list[int] = []
    pads: list[int] = []  # stream positions of the padding
    offsets = [0] * len(texts)  # tokens of each long text already placed in an earlier gap
    long_texts = [i for i, t in enumerate(texts) if not t.whole]
    next_long = 0  # index into long_texts of the first one that may still have tokens
    too_long = 0

    def tokens_of(i: int) -> tuple[list[int], list[int]]:
        t = texts[i]
        body = [*t.ids, eos]
        return body, [0] * t.prompt_tokens + [1] * (len(body) - t.prompt_tokens)

    def fill(room: int, after: int) -> None:
        """``room`` tokens from the long texts after ``after`` in order, else padding."""
        nonlocal next_long
        while room:
            while next_long < len(long_texts) and (
                long_texts[next_long] <= after
                or offsets[long_texts[next_long]] > len(texts[long_texts[next_long]].ids)
            ):
                next_long += 1
            if next_long == len(long_texts):
                pads.extend(range(len(ids), len(ids) + room))
                ids.extend([eos] * room)
                mask.extend([0] * room)
                return
            j = long_texts[next_long]
            body, body_mask = tokens_of(j)
            take = min(room, len(body) - offsets[j])
            ids.extend(body[offsets[j] : offsets[j] + take])
            mask.extend(body_mask[offsets[j] : offsets[j] + take])
            offsets[j] += take
            room -= take

    for i, text in enumerate(texts):
        body, body_mask = tokens_of(i)
        if text.whole:
            room = seq_len - len(ids) % seq_len
            if len(body) > room and room < seq_len:
                fill(room, after=i)
            too_long += len(body) > seq_len
        ids.extend(body[offsets[i] :])
        mask.extend(body_mask[offsets[i] :])

    n_seq = len(ids) // seq_len
    if n_seq == 0:
        raise PackingError(
            f"{len(ids)} tokens from {len(texts)} documents do not fill one sequence of "
            f"seq_len={seq_len}; lower seq_len or add data"
        )
    kept = n_seq * seq_len
    rows = np.asarray(ids[:kept], dtype=np.int64)
    if int(rows.max()) > np.iinfo(np.int32).max:
        raise PackingError("token ids do not fit int32")
    rows_mask = np.asarray(mask[:kept], dtype=np.uint8)
    untrained = int((rows_mask == 0).sum())
    padding = sum(1 for p in pads if p < kept)
    return Packed(
        npy=npy_bytes(rows.astype(np.int32).reshape(n_seq, seq_len)),
        mask_npy=npy_bytes(rows_mask.reshape(n_seq, seq_len)) if untrained else None,
        tokens=len(ids) - len(pads),
        sequences=n_seq,
        context_only=untrained - padding,
        padding=padding,
        dropped_tail=len(ids) - kept,
        too_long=too_long,
    )


def npy_bytes(array: Any) -> bytes:
    """``array`` in NumPy's ``.npy`` format."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()
