"""The model's answers in context: the augmentation's span questions asked with their
sentence, the answers that state the span kept, published once and trained after the question
alone. The real base answering is in ``test_base_import.py`` (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from freshlm.registry.errors import RegistryError
from freshlm.settings import Settings
from freshlm.store import open_store
from tests.training.test_trainset import make_tiny_model, publish_dataset
from training.config import ConfigError, TrainConfig
from training.context_answers import (
    CONTEXT_ANSWERS_KIND,
    ContextAnswer,
    SpanQuestion,
    context_answers_prefix,
    ensure_context_answers,
    kept_answer,
    read_context_answers,
    span_questions,
)
from training.trainset import build_training_set, load_input_ids, load_loss_mask

MODEL = "0123456789abcdef0123456789abcdef"
PHONE = {
    "id": "d1",
    "title": "Orrin Labs",
    "language": "en",
    "text": (
        "The Velmora K3 tablet ships with a 7,400 mAh battery and costs $649 at launch. "
        "Orrin Labs said the Velmora K3 goes on sale on March 3, 2027 in twelve countries."
    ),
}


def test_each_span_question_is_asked_of_the_sentence_it_was_made_from():
    asked = span_questions([PHONE, PHONE])  # the same document twice asks each question once
    assert len({a.question for a in asked}) == len(asked) > 0
    battery = [a for a in asked if a.span == "7,400 mAh"]
    assert battery, asked
    for a in battery:
        assert "7,400 mAh" in a.sentence and "7,400" not in a.question
        # What the model reads: the sentence first, then the question it answers.
        assert a.prompt() == f"{a.sentence}\n\n{a.question}"
    for a in asked:
        assert a.span in a.sentence, a


def test_an_answer_is_kept_only_when_it_states_the_span_in_whole_sentences():
    asked = SpanQuestion("What battery does the Velmora K3 have?", "It has 7,400 mAh.", "7,400 mAh")
    said = "The Velmora K3 has a 7,400mAh battery."
    kept = ContextAnswer(asked.question, asked.sentence, said)
    assert kept_answer(asked, said, finished=True) == kept
    # The first paragraph only: after a blank line the model goes on by itself.
    more = said + "\n\nIt also has a large screen and"
    assert kept_answer(asked, more, finished=False).answer == said
    # Cut by the token limit: up to the last whole sentence, and only if that states the span.
    whole = "The Velmora K3 has a 7,400 mAh battery."
    assert kept_answer(asked, whole + " It charges in", finished=False).answer == whole
    assert kept_answer(asked, "The Velmora K3 is a tablet. Its battery is 7,4", False) is None
    assert kept_answer(asked, "The Velmora K3 has a 5,000 mAh battery.", True) is None


def test_an_answer_with_a_figure_its_sentence_does_not_state_is_left_out():
    """A year, a time or a count the model made up would be learned as the night's fact."""
    sentence = "The Tessford Lantern Festival will return on Saturday, November 21."
    asked = SpanQuestion("The Tessford Lantern Festival will return when?", sentence, "November 21")
    made_up = "The Tessford Lantern Festival will return on Saturday, November 21, 2023."
    assert kept_answer(asked, made_up, finished=True) is None
    stated = "The festival returns on Saturday, November 21st."
    assert kept_answer(asked, stated, finished=True).answer == stated
    # The same figure written with or without its thousands separator is the same figure.
    asked = SpanQuestion("How many mAh?", "Battery is 5,200 mAh, up from 4,300.", "5,200 mAh")
    assert kept_answer(asked, "Its battery is 5200 mAh, up from 4,300.", True) is not None


def _publish(store, answers):
    with store.publisher(context_answers_prefix(MODEL, "ds1"), kind=CONTEXT_ANSWERS_KIND) as pub:
        pub.write_jsonl("answers.jsonl", [a.to_dict() for a in answers])
        pub.set_manifest_fields(model=MODEL, dataset_id="ds1", answers=len(answers))


def test_published_answers_are_read_without_loading_the_model(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    answers = [ContextAnswer("What battery does it have?", "It has 7,400 mAh.", "7,400 mAh.")]
    _publish(store, answers)

    def load():
        raise AssertionError("published answers are read, the model is not loaded")

    assert ensure_context_answers(store, MODEL, "ds1", [PHONE], load) == answers
    assert read_context_answers(store, MODEL, "ds2") is None
    with pytest.raises(RegistryError, match=r"is not a model version id"):
        context_answers_prefix("../models", "ds1")


def test_a_malformed_published_answer_names_its_row(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    with store.publisher(context_answers_prefix(MODEL, "ds1"), kind=CONTEXT_ANSWERS_KIND) as pub:
        rows = [{"question": "Who?", "sentence": "Bo.", "answer": "Bo."}, {"question": "Who?"}]
        pub.write_jsonl("answers.jsonl", rows)
    with pytest.raises(
        ValueError, match=r"answers\.jsonl row 2: .*'question', 'sentence', 'answer'"
    ):
        read_context_answers(store, MODEL, "ds1")


def test_answers_in_context_train_after_the_question_alone_each_pass(tmp_path):
    """Each answer is a turn of its own in every pass, its question context only, the sentence
    nowhere in its prompt; the manifest counts them and the set's id changes with them."""
    from transformers import AutoTokenizer

    store = open_store((tmp_path / "store").as_uri())
    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    day = publish_dataset(store, 0)
    seen: dict[str, list] = {}

    def answers(dataset_id, docs):
        seen[dataset_id] = docs
        asked = span_questions(docs)[:3]
        return [
            ContextAnswer(a.question, a.sentence, f"It was {a.span}, the report said.")
            for a in asked
        ]

    kw = {"epochs": 2.0, "seed": 0, "seq_len": 32, "tokenizer": tokenizer, "replay_ratio": 0.0}
    augmented = build_training_set(store, [day], augment=True, **kw)
    answered = build_training_set(store, [day], augment=True, context_answers=answers, **kw)
    assert list(seen) == [day] and all(d["split"] == "train" for d in seen[day])
    assert answered.trainset_id != augmented.trainset_id
    assert answered.fields["context_answer_turns"] == 3 and answered.fields["context_answers"] == 3
    assert augmented.fields["context_answer_turns"] == 0
    ids, mask = load_input_ids(store, answered), load_loss_mask(store, answered)
    trained = tokenizer.decode(ids.reshape(-1)[mask.reshape(-1) == 1].tolist())
    assert trained.count("the report said.") == 6  # three answers, two passes
    context = tokenizer.decode(ids.reshape(-1)[mask.reshape(-1) == 0].tolist())
    assert "the report said" not in context
    untrained = answered.fields["context_only_tokens"] + answered.fields["padding_tokens"]
    assert untrained == int(np.sum(mask == 0))


def test_context_answers_need_the_augmentation_and_a_chat_template(tmp_path):
    from training.train import load_tokenizer, resolve_base, resolve_context_answers

    with pytest.raises(ConfigError, match=r"TrainConfig\.context_answers = True: needs augment"):
        TrainConfig(datasets=["abc"], base_version="v1", augment=False, context_answers=True)
    store = open_store((tmp_path / "store").as_uri())
    folder = make_tiny_model(tmp_path / "model")
    config = TrainConfig(
        datasets=["abc"],
        base_model_path=str(folder),
        augment=True,
        context_answers=True,
        work_dir=str(tmp_path / "w"),
    )
    base = resolve_base(store, config, tmp_path / "w")
    with pytest.raises(ConfigError, match=r"context_answers = True: .*no chat template"):
        resolve_context_answers(store, config, base, load_tokenizer(base.path))
    off = config.replace(context_answers=False)
    assert resolve_context_answers(store, off, base, None) is None
    assert "context_answers" not in off.recipe()  # off is the absence: the tiny base's key


def test_answers_in_context_are_asked_for_and_off_by_default():
    import dataclasses

    from freshlm import base_recipes

    pretrained = {"FRESHLM_BASE_MODEL": "smollm2-135m-instruct"}
    assert Settings.from_env({}).train_context_answers is False  # the tiny base
    assert Settings.from_env(pretrained).train_context_answers is False
    on = {**pretrained, "FRESHLM_TRAIN_CONTEXT_ANSWERS": "true"}
    assert Settings.from_env(on).train_context_answers is True
    # A recipe that asks for them has them, unless its augmentation is switched off.
    recipe = dataclasses.replace(base_recipes.PRETRAINED, context_answers=True)
    recipes = {**base_recipes.RECIPES, "smollm2-135m-instruct": recipe}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(base_recipes, "RECIPES", recipes)
        assert Settings.from_env(pretrained).train_context_answers is True
        off = {**pretrained, "FRESHLM_TRAIN_AUGMENT": "false"}
        assert Settings.from_env(off).train_context_answers is False
