"""Self-synthesized rehearsal: the base's own turns, cleaned, published once, trained on their
answers. The real base writing them is in ``test_base_import.py`` (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from freshlm.store import open_store
from tests.training.test_trainset import make_tiny_model, publish_dataset
from training.config import ConfigError, TrainConfig
from training.rehearsal import (
    REHEARSAL_KIND,
    Rehearsal,
    RehearsalSet,
    clean_question,
    ensure_rehearsal_set,
    read_rehearsal_set,
    rehearsal_prefix,
    whole_sentences,
)
from training.trainset import build_training_set, load_input_ids, load_loss_mask

ROOT = "0123456789abcdef0123456789abcdef"


def test_a_sampled_user_turn_is_kept_only_as_one_whole_question():
    assert clean_question("Who won? It was close.") is None  # too short to be about anything
    assert (
        clean_question("Which river flows through the city of Vienna? Asked twice.")
        == "Which river flows through the city of Vienna?"
    )
    assert clean_question("How many moons does Mars have") is None  # cut before its end
    assert clean_question("Which of these is a fruit:\nA) a stone\nB) an apple?") is None
    assert clean_question("What " + "very " * 50 + "long question?") is None


def test_an_answer_cut_by_the_token_limit_is_trained_up_to_its_last_whole_sentence():
    assert whole_sentences("Paris is the capital.", finished=True) == "Paris is the capital."
    assert (
        whole_sentences("Mars has two moons. They are Phobos and Dei", finished=False)
        == "Mars has two moons."
    )
    assert whole_sentences("The answer depends on 3.5 and", finished=False) is None
    assert whole_sentences("  ", finished=True) is None


def test_a_malformed_published_turn_names_its_row():
    with pytest.raises(ValueError, match=r"turns\.jsonl row 3.*'question' and 'answer'"):
        Rehearsal.from_dict({"question": "Who?", "answer": ""}, "turns.jsonl row 3")


def _publish(store, turns, requested):
    def load():
        raise AssertionError("a published set is read, the base is not loaded")

    with store.publisher(rehearsal_prefix(ROOT), kind=REHEARSAL_KIND) as pub:
        pub.write_jsonl("turns.jsonl", [t.to_dict() for t in turns])
        pub.set_manifest_fields(base_version=ROOT, requested=requested, turns=len(turns))
    return load


def test_a_published_set_is_read_without_loading_the_base(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    turns = [Rehearsal(f"What is item {i} called?", f"Item {i} is called Bo{i}.") for i in range(5)]
    load = _publish(store, turns, requested=5)
    got = ensure_rehearsal_set(store, ROOT, load, 3)
    assert got.turns == tuple(turns[:3]) and got.prefix == rehearsal_prefix(ROOT)
    # Asking for more than were asked for when it was built means building it again.
    assert read_rehearsal_set(store, ROOT, 6) is None


def test_rehearsal_turns_train_on_their_answers_each_pass(tmp_path):
    """The turns ride every pass beside the night's documents, their questions context only,
    and the manifest says where they come from and what they add."""
    from transformers import AutoTokenizer

    store = open_store((tmp_path / "store").as_uri())
    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    day = publish_dataset(store, 0)
    turns = tuple(
        Rehearsal(f"Which harbor story came first on day {i}?", f"The harbor story number {i}.")
        for i in range(4)
    )
    rehearsal = RehearsalSet(ROOT, turns, rehearsal_prefix(ROOT))
    kw = {"epochs": 2.0, "seed": 0, "seq_len": 32, "tokenizer": tokenizer, "replay_ratio": 0.0}
    plain = build_training_set(store, [day], **kw)
    rehearsed = build_training_set(store, [day], rehearsal=rehearsal, **kw)
    assert rehearsed.trainset_id != plain.trainset_id
    fields = rehearsed.fields["rehearsal"]
    assert fields["source"] == rehearsal_prefix(ROOT) and fields["base_version"] == ROOT
    assert (fields["turns"], fields["occurrences"]) == (4, 8)  # each turn once per pass
    assert rehearsed.fields["tokens"] == fields["tokens"] + sum(
        m["tokens"] for m in rehearsed.fields["mix"]
    )
    assert [m["role"] for m in rehearsed.fields["mix"]] == ["new"]  # the mix lists datasets
    # Without a chat template a turn is "Question: …\nAnswer: …": the question is context.
    ids, mask = load_input_ids(store, rehearsed), load_loss_mask(store, rehearsed)
    text = tokenizer.decode(ids.reshape(-1)[mask.reshape(-1) == 0].tolist())
    assert text.count("Which harbor story came first") == 8
    trained = tokenizer.decode(ids.reshape(-1)[mask.reshape(-1) == 1].tolist())
    assert "The harbor story number 3." in trained and "came first" not in trained
    untrained = rehearsed.fields["context_only_tokens"] + rehearsed.fields["padding_tokens"]
    assert untrained == int(np.sum(mask == 0))


def test_a_base_without_a_chat_template_cannot_rehearse(tmp_path):
    from training.train import load_tokenizer, resolve_base, resolve_rehearsal

    store = open_store((tmp_path / "store").as_uri())
    folder = make_tiny_model(tmp_path / "model")
    config = TrainConfig(
        datasets=["abc"], base_model_path=str(folder), rehearsal=8, work_dir=str(tmp_path / "w")
    )
    base = resolve_base(store, config, tmp_path / "w")
    with pytest.raises(ConfigError, match=r"TrainConfig\.rehearsal = 8: .*no chat template"):
        resolve_rehearsal(store, config, base, load_tokenizer(base.path))
    assert resolve_rehearsal(store, config.replace(rehearsal=0), base, None) is None


def test_something_else_published_where_the_set_belongs_is_named(tmp_path):
    from freshlm.artifacts import ArtifactNotFound

    store = open_store((tmp_path / "store").as_uri())
    with store.publisher(rehearsal_prefix(ROOT), kind="dataset") as pub:
        pub.write_jsonl("turns.jsonl", [])
    with pytest.raises(ArtifactNotFound, match=r"kind 'dataset', not 'rehearsal-set'"):
        read_rehearsal_set(store, ROOT, 1)
