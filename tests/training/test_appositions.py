"""Appositions restated as sentences of their own (training.appositions), and asked."""

import pytest

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


def test_the_training_set_states_and_asks_the_restatements_when_the_config_asks(tmp_path):
    from freshlm.store import open_store
    from tests.training.test_augment import augmented_without_and_with
    from tests.training.test_trainset import publish_dataset
    from training.trainset import build_training_set

    doc = {
        "id": "d1",
        "title": "LexiDrift",
        "text": "We present LexiDrift, a benchmark of 14,200 neologisms collected from public "
        "posts. It was released on November 2 by the Freshwater Lab.",
    }
    tokenizer, (plain, _), (more, _) = augmented_without_and_with(tmp_path, doc, appositions=True)
    stated = "LexiDrift is a benchmark of 14,200 neologisms."
    assert any(stated in tokenizer.decode(d.ids) for d in more)
    assert not any(stated in tokenizer.decode(d.ids) for d in plain)

    store = open_store((tmp_path / "store").as_uri())
    day = publish_dataset(store, 0)
    kw = {"epochs": 1.0, "seed": 0, "seq_len": 32, "tokenizer": tokenizer, "replay_ratio": 0.0}
    off = build_training_set(store, [day], augment=True, **kw)
    on = build_training_set(store, [day], augment=True, appositions=True, **kw)
    assert on.fields["appositions"] is True and "appositions" not in off.fields
    assert on.trainset_id != off.trainset_id  # a set built without them is never reused


def test_appositions_need_the_augmentation_and_are_off_unless_asked_for():
    from freshlm.settings import Settings
    from training.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match=r"appositions = True: needs augment"):
        TrainConfig(datasets=["abc"], base_version="v1", augment=False, appositions=True)
    off = TrainConfig(datasets=["abc"], base_version="v1", augment=True, appositions=False)
    assert "appositions" not in off.recipe()  # off is the absence: ids stay as they were
    assert off.replace(appositions=True).recipe()["appositions"] is True
    pretrained = {"FRESHLM_BASE_MODEL": "smollm2-135m-instruct"}
    assert Settings.from_env(pretrained).train_appositions is False
    asked = {**pretrained, "FRESHLM_TRAIN_APPOSITIONS": "true"}
    assert Settings.from_env(asked).train_appositions is True
