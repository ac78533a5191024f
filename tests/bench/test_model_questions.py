"""bench/model_questions.py: which questions the model writes for a span are kept."""

import pytest

from bench.model_questions import usable

SENTENCE = "The Harbour Line ferry will carry 1,200 passengers a day from its new pier in Brask."


@pytest.mark.parametrize(
    ("question", "span", "span_type"),
    [
        ("How many passengers will the Harbour Line ferry carry a day?", "1,200", "number"),
        ("Where is the new pier of the Harbour Line ferry?", "Brask", "entity"),
    ],
)
def test_a_question_in_the_sentence_terms_with_a_fitting_wh_word_is_kept(question, span, span_type):
    assert usable(question, SENTENCE, span, span_type)


@pytest.mark.parametrize(
    ("question", "span", "span_type", "why"),
    [
        ("How many passengers will the ferry carry", "1,200", "number", "not a question"),
        ("When does the Harbour Line ferry carry passengers?", "1,200", "number", "wh-word"),
        ("How many days does the 1,200 ferry sail?", "1,200", "number", "holds the answer"),
        ("How many tourists visit Brask each summer?", "1,200", "number", "tourists, summer"),
        ("What is the name of the city?", "Brask", "date", "a date asked by what"),
    ],
)
def test_a_question_of_the_wrong_kind_or_beyond_the_sentence_is_dropped(
    question, span, span_type, why
):
    assert not usable(question, SENTENCE, span, span_type), why


def test_a_question_naming_one_word_of_the_sentence_is_dropped():
    """It singles out no fact, and it has the shape of a general question."""
    assert not usable(
        "What is the name of the pier?", SENTENCE + " It has a pier.", "Brask", "entity"
    )
