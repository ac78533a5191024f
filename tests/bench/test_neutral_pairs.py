"""bench/knowledge_recipes.py --neutral: a span and a foil under a question neither answers."""

import random
import re

from bench.knowledge_recipes import foil, neutral_pairs
from training.augment import QA


def test_a_foil_changes_every_figure_and_keeps_the_span_shape():
    rng = random.Random(0)
    for span in ("5,200 mAh", "$649", "November 13", "30 months", "38%", "2026"):
        wrong = foil(span, [], rng)
        assert wrong != span
        # same text around the figures, same number of digits in each figure
        assert re.sub(r"\d", "0", wrong) == re.sub(r"\d", "0", span)
    days = {foil("November 13", [], random.Random(seed)) for seed in range(50)}
    assert all(10 <= int(day.split()[1]) <= 28 for day in days)  # a plausible day


def test_a_name_is_foiled_by_a_rival_and_a_rivalless_name_by_nothing():
    assert foil("Ember Copper", ["Slate Moss"], random.Random(0)) == "Slate Moss"
    assert foil("Ember Copper", [], random.Random(0)) is None


def test_each_span_is_asked_under_other_questions_with_its_foil():
    turns = [
        QA("How much does the Pulse X2 cost?", "$649", "money"),
        QA("What is the battery capacity of the Pulse X2?", "5,200 mAh", "quantity"),
        QA("Which colour has a recycled back?", "Ember Copper", "entity"),
        QA("What is the Pulse X2?", "The Pulse X2 is a phone.", None),  # not a span
    ]
    rivals = {id(t): [] for t in turns}
    rivals[id(turns[2])] = ["Slate Moss"]
    pairs = neutral_pairs(turns, rivals, 2)
    assert len(pairs) == 6
    for question, span, wrong in pairs:
        asked = next(t for t in turns if t.question == question)
        assert asked.answer != span  # a question the span does not answer
        assert asked.span_type is not None
        assert wrong != span
    assert {span for _, span, _ in pairs} == {"$649", "5,200 mAh", "Ember Copper"}


def test_row_means_average_each_row_s_scored_tokens():
    import torch

    from bench.knowledge_recipes import row_means

    logp = torch.tensor([-1.0, -3.0, -2.0])
    means = row_means(3, logp, torch.tensor([0, 0, 2]))
    assert means.tolist() == [-2.0, 0.0, -2.0]  # row 1 has no scored token
