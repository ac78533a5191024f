"""How much each trained token weighs in the loss: every token alike, or every turn alike.

The trainer's loss is the mean over a step's trained tokens, so a text weighs as much as it
has trained tokens. For a night's facts that is lopsided: a question answered by a span ("How
much does the Pulse X3 cost?" → "$999") trains four or five tokens, a turn answered by a
sentence or the base's own rehearsal answer thirty to fifty, and a replayed page every token
it has. Among a night's turns, the span answers hold about 3% of the trained tokens.

With ``"turn"`` weighting each question-answer turn of the training set (the augmentation's,
the written questions', the answers in context, the rehearsal's: every text with a context-
only question) weighs the same whatever its answer's length: its tokens weigh
``mean answer length / its answer length``, so the turns together weigh what their tokens
weigh under ``"token"`` and the pages (documents, statements, replay) keep their share. A
span answer's tokens then weigh about six times what a rehearsal answer's do; the recipe
trials that train texts alone, in batches of like length (``bench/knowledge_recipes.py``),
weigh them so (bench/RESULTS.md, "Every turn weighing the same").
"""

from __future__ import annotations

from collections.abc import Sequence

#: ``TrainConfig.answer_weighting`` values: each trained token alike, or each turn alike.
ANSWER_WEIGHTINGS = ("token", "turn")


def turn_weights(answer_tokens: Sequence[int]) -> list[float]:
    """The weight of each token of each turn whose answer (the trained tokens, end of turn
    included) has ``answer_tokens[i]`` tokens: the turns' mean over its own, so every turn
    weighs the same and their total is their tokens' count. Turns with no trained token
    weigh 1 (nothing to weigh)."""
    trained = [n for n in answer_tokens if n > 0]
    if not trained:
        return [1.0] * len(answer_tokens)
    mean = sum(trained) / len(trained)
    return [mean / n if n > 0 else 1.0 for n in answer_tokens]
