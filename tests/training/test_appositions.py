"""Appositions restated as sentences of their own (training.appositions), and asked."""

from training.appositions import restated
from training.augment import QA, document_forms


def test_a_name_and_its_description_become_a_copular_sentence():
    assert restated(
        "We present LexiDrift, a benchmark of 14,200 neologisms collected from public posts."
    ) == ["LexiDrift is a benchmark of 14,200 neologisms."]
    assert restated(
        "Also new today: LexiDrift (arXiv 2611.01047), a benchmark of 14,200 neologisms."
    ) == ["LexiDrift is a benchmark of 14,200 neologisms."]
    assert restated('"It works," said Colm Reddy, an analyst at Harrow & Finch.') == [
        "Colm Reddy is an analyst at Harrow & Finch."
    ]


def test_a_role_and_the_person_who_holds_it_become_a_copular_sentence():
    assert restated('"Nobody knew," said the lab\'s director, Dr. Tunde Adeyemi.') == [
        "The lab's director is Tunde Adeyemi."
    ]
    assert restated("Brannock's mayor, Lena Skov, called it good news.") == [
        "Brannock's mayor is Lena Skov."
    ]


def test_commas_that_are_not_appositions_restate_nothing():
    for sentence in (
        "The bridge will close until Friday, November 20, the city announced on Wednesday.",
        "Sam, the spare key is under the blue pot by the back door.",
        "Because of Storm Ilse, the Lantern Festival moves to Saturday, November 28.",
        "In Tessford, the festival draws about 40,000 visitors.",
        "Prices start at $649, a cut of $50.",  # a figure is no name
    ):
        assert restated(sentence) == [], sentence


def test_the_restated_sentence_is_stated_and_asked_only_when_asked_to():
    doc = {
        "title": "Ondra University opens a lab",
        "text": (
            "Ondra University opened a lab on Monday. "
            '"Old models miss new prices," said the lab\'s director, Dr. Tunde Adeyemi.'
        ),
    }
    plain = document_forms(doc)
    more = document_forms(doc, appositions=True)
    assert [f for f in more if f in plain] == plain  # every form it wrote before, in order
    added = [f for f in more if f not in plain]
    assert "Ondra University opens a lab: The lab's director is Tunde Adeyemi." in added
    asked = {f.question for f in added if isinstance(f, QA) and f.answer == "Tunde Adeyemi"}
    assert "Who or what is the lab's director?" in asked  # wh-word first, as users ask
