"""How a fine-tune starts from each kind of base model: passes, rate, trained blocks, augmentation.

The right recipe depends on what the base already knows. The ``tiny`` base is a 4M-parameter
GPT-2 trained from scratch on the sandbox archive: it has no general knowledge to protect and
learns only by repetition, so every block trains for many passes over plain documents. A
pretrained chat model (SmolLM2-135M-Instruct, or any Hugging Face model) knows language and the
world already; on a CPU it can afford a few passes, so the top blocks train at a high rate on the
night's facts stated as questions and answers in its chat template, ranked against rival
answers (``training.augment``, ``training.rivals``; the trials behind the numbers are in
bench/RESULTS.md, "knowledge: recipes tried on the pretrained base").

The settings take their defaults from :func:`recipe_for` of ``FRESHLM_BASE_MODEL``
(``FRESHLM_TRAIN_EPOCHS``, ``_LEARNING_RATE``, ``_LAYERS``, ``_AUGMENT``, ``_REPLAY_RATIO``,
``_REHEARSAL``, ``_CONTEXT_ANSWERS``, ``_QUESTION_VARIANTS``, ``_RIVALS``, ``_APPOSITIONS``,
``_WRITTEN_QUESTIONS``, ``_BF16`` override each), so
choosing a base chooses a recipe that works for it, and ``freshlm_train``'s Params show it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FineTuneRecipe:
    """Defaults of one nightly fine-tune (see :class:`training.config.TrainConfig`)."""

    epochs: float  # passes over each night's new documents
    learning_rate: float
    train_layers: int  # top transformer blocks trained; 0: all of them
    augment: bool  # also train on each document's facts as questions and answers
    replay_ratio: float  # share of the tokens replayed from earlier data, against forgetting
    rehearsal: int = 0  # the base's own question-answer turns trained each pass (0: none)
    # The model's answers given the sentence, trained after the question alone: off, since as
    # hard targets they cost the base's general answers and say no more (bench/RESULTS.md).
    context_answers: bool = False
    question_variants: int = 0  # other wordings of each span question, by rule (0: none)
    rivals: int = 3  # other spans ranked below each span answer (training.rivals; 0: none)
    appositions: bool = False  # appositions also stated and asked as sentences of their own
    # The root base's own questions for the night's figures and dates
    # (training.written_questions): off, since through the product they say no more of the
    # night than the recipe, though the fast loop says half again as much (bench/RESULTS.md).
    written_questions: bool = False
    bf16: bool | str = "auto"  # number format (training.precision)


#: The 4M GPT-2 bootstrapped from the sandbox archive.
TINY = FineTuneRecipe(
    epochs=30.0, learning_rate=1e-3, train_layers=0, augment=False, replay_ratio=0.6
)
#: A pretrained model: measured on SmolLM2-135M-Instruct (30 blocks; the top 8 hold 28M
#: parameters), where 4 passes on the top 8 blocks learn a night's facts at 5e-4 and 1e-3 and
#: 3 passes at 1e-4 learn nothing; 5e-4 says as much of night 1 as 1e-3 and keeps 0.78 of the
#: base's general answers against 0.69 (bench/RESULTS.md, over four and five orders), and a
#: 0.3 replay share kept retention; bf16 products on a CPU that has them train it 1.66x faster
#: than fp32. For a much larger model set the ``FRESHLM_TRAIN_*`` settings for it.
PRETRAINED = FineTuneRecipe(
    epochs=4.0,
    learning_rate=5e-4,
    train_layers=8,
    augment=True,
    replay_ratio=0.3,
    rehearsal=256,
    bf16="native",
)

RECIPES: dict[str, FineTuneRecipe] = {"tiny": TINY, "smollm2-135m-instruct": PRETRAINED}


def recipe_for(base_model: str) -> FineTuneRecipe:
    """The recipe of ``base_model`` (a ``FRESHLM_BASE_MODEL`` value): its own when it is a named
    base, :data:`PRETRAINED` for any other model folder or hub name."""
    return RECIPES.get(base_model.strip(), PRETRAINED)
