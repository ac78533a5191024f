"""Other wordings of the augmentation's questions (training.question_variants)."""

import pytest

from training.augment import QA, document_forms
from training.question_variants import question_variants


def test_a_possessive_becomes_an_of_phrase_and_a_figure_modifier_is_left_out():
    asked = "How much does Pulse X2's base model with 128 GB of storage cost?"
    got = question_variants(asked, "Pulse X2", "$649")
    assert got[:3] == [
        "How much does Pulse X2's base model cost?",
        "How much does the base model of the Pulse X2 with 128 GB of storage cost?",
        "What is the price of Pulse X2's base model with 128 GB of storage?",
    ]
    assert "How much does the base model of the Pulse X2 cost?" in got
    assert len(question_variants(asked, "Pulse X2", "$649", limit=2)) == 2


def test_when_is_asked_by_the_kind_of_answer():
    assert question_variants("When does Lantern Festival's evening begin?", None, "17:00") == [
        "At what time does Lantern Festival's evening begin?"
    ]
    assert question_variants("When did the bridge open?", None, "1962") == [
        "In what year did the bridge open?"
    ]
    assert question_variants("The festival moves to Saturday, on when?", None, "November 28") == [
        "The festival moves to Saturday, on what date?"
    ]
    # "when" answered by something else (a season, an event) keeps its wording
    assert question_variants("When does the market open?", None, "spring") == []


def test_other_wordings_users_write():
    assert question_variants("How many months does the warranty last?", None, "30 months") == [
        "How long does the warranty last?"
    ]
    assert question_variants("Who or what does the Pulse X2 run on?", "Pulse X2", "Kite 3") == [
        "What does the Pulse X2 run on?"
    ]
    assert question_variants("It's official: the fair is on when?", "Tessford Fair", "May 2") == [
        "The fair is on when?",
        "It's official: the fair is on what date?",
        "The fair is on what date?",
    ]


def test_questions_no_rule_fits_and_shapes_rules_must_not_break():
    # a topic prefix says what the question is about: it is not an aside to drop
    assert question_variants("Pulse X2: The phone weighs how many grams?", "Pulse X2", "182") == []
    # a phrasal verb's particle is not the verb that closes the question
    assert question_variants("Were Millrace Park's lawns dug up?", "Millrace Park", "yes") == []
    # a long clause before a colon is the question itself, not an aside
    long_one = "The Pulse X2 comes in three colours: Slate Moss, who or what and Tidewater Blue?"
    assert question_variants(long_one, "Pulse X2", "Ember Copper") == []


def test_document_forms_ask_each_span_in_its_other_wordings_when_asked_to():
    doc = {
        "title": "Orrin Labs unveils the Pulse X2",
        "text": "The Pulse X2 is Orrin's new phone. The base model with 128 GB of storage "
        "costs $649, and the Pulse X2 goes on sale on November 13.",
    }
    plain = [f for f in document_forms(doc) if isinstance(f, QA)]
    more = [f for f in document_forms(doc, variants=4) if isinstance(f, QA)]
    added = [f for f in more if f not in plain]
    assert plain == [f for f in more if f in plain]  # the default forms unchanged, in order
    assert added and all(f.span_type and f.answer in ("$649", "November 13") for f in added)
    assert "How much does the base model of the Pulse X2 cost?" in {f.question for f in added}
    # each new wording is asked once, and never one the default forms already ask
    assert len({f.question for f in added}) == len(added)
    assert not {f.question for f in added} & {f.question for f in plain}


def test_the_training_set_asks_the_other_wordings_as_turns_answered_by_the_span(tmp_path):
    from tests.training.test_augment import augmented_without_and_with

    doc = {
        "id": "d1",
        "title": "Orrin Labs unveils the Pulse X2",
        "text": "The Pulse X2 is Orrin's new phone. The base model with 128 GB of storage "
        "costs $649, and the Pulse X2 goes on sale on November 13. A 256 GB version costs $749.",
    }
    tokenizer, (plain, plain_groups), (more, more_groups) = augmented_without_and_with(
        tmp_path, doc, variants=4
    )
    texts = [tokenizer.decode(d.ids) for d in more]
    asked = "How much does the base model of the Pulse X2 cost?\nAnswer: $649"
    assert any(asked in t for t in texts) and not any(
        asked in tokenizer.decode(d.ids) for d in plain
    )
    assert len(more) > len(plain) and len(more_groups) > len(plain_groups)  # ranked, too


def test_other_wordings_need_the_augmentation_and_are_off_unless_asked_for():
    from freshlm.settings import Settings
    from training.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match=r"question_variants = 2: needs augment"):
        TrainConfig(datasets=["abc"], base_version="v1", augment=False, question_variants=2)
    with pytest.raises(ConfigError, match=r"question_variants = -1: must be an integer"):
        TrainConfig(datasets=["abc"], base_version="v1", augment=True, question_variants=-1)
    off = TrainConfig(datasets=["abc"], base_version="v1", augment=True, question_variants=0)
    assert "question_variants" not in off.recipe()  # off is the absence: ids stay as they were
    assert off.replace(question_variants=3).recipe()["question_variants"] == 3
    assert Settings.from_env({}).train_question_variants == 0  # the tiny base: no augmentation
    asked = {"FRESHLM_BASE_MODEL": "smollm2-135m-instruct", "FRESHLM_TRAIN_QUESTION_VARIANTS": "3"}
    assert Settings.from_env(asked).train_question_variants == 3
