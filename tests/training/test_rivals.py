"""Rival answers: the training set holds each span-answered question with the dataset's other
spans of that type as answers, and the ranking loss lifts the right answer above them."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import QA, plain_turn, rival_answers
from training.rivals import PAD, answer_logprobs, pack_groups, rank_loss


def test_rivals_are_other_answers_of_the_same_type():
    turns = [
        QA("The phone costs how much?", "$649", "price"),
        QA("A battery costs how much?", "$59", "price"),
        QA("The lens costs how much?", "$199", "price"),
        QA("It opens when?", "November 13", "date"),
        QA("The phone costs how much?", "The phone costs $649."),  # a sentence answer
    ]
    rivals = rival_answers(turns, 3, "seed")
    assert sorted(rivals[0]) == ["$199", "$59"]
    assert "$59" not in rivals[1] and set(rivals[1]) == {"$649", "$199"}
    assert rivals[3] == []  # no other date
    assert rivals[4] == []  # not a span answer
    assert rival_answers(turns, 3, "seed") == rivals  # deterministic


def test_groups_pack_right_answer_first_padded_with_pad():
    ids, starts = pack_groups([(2, [[1, 2, 3], [1, 2, 4, 5]]), (1, [[7, 8]])], k=2)
    assert ids.shape == (2, 3, 4) and ids.dtype == np.int32
    assert ids[0, 0].tolist() == [1, 2, 3, PAD]
    assert ids[0, 1].tolist() == [1, 2, 4, 5]
    assert (ids[0, 2] == PAD).all() and (ids[1, 1:] == PAD).all()
    assert starts.tolist() == [2, 1]


def test_the_ranking_loss_lifts_the_right_answer_above_its_rivals(tmp_path):
    """A few optimiser steps on the ranking loss alone, on a tiny GPT-2: the right answer's
    mean log-probability after the question rises above every rival's."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.training.test_trainset import make_tiny_model

    torch.manual_seed(0)
    folder = make_tiny_model(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    question = "The river ferry costs how much?"
    answers = ["$12", "$30", "$7", "$99"]
    prompt = tokenizer(f"Question: {question}\nAnswer:")["input_ids"]
    rows = [tokenizer(plain_turn(question, a))["input_ids"] for a in answers]
    assert all(row[: len(prompt)] == prompt for row in rows)
    ids, starts = pack_groups([(len(prompt), rows)], k=3)
    ids_t, starts_t = torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(starts)

    def margin() -> float:
        with torch.no_grad():
            means, present = answer_logprobs(model, ids_t, starts_t)
        assert present.all()
        return float(means[0, 0] - means[0, 1:].max())

    before = margin()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = rank_loss(model, ids_t, starts_t)
        losses.append(float(loss.detach()))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert margin() > max(0.5, before)
    assert losses[-1] < losses[0]


def test_without_rivals_the_loss_is_zero_but_keeps_the_graph(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from tests.training.test_trainset import make_tiny_model

    model = AutoModelForCausalLM.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    ids, starts = pack_groups([(1, [[5, 6, 7]])], k=2)
    loss = rank_loss(model, torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(starts))
    assert float(loss.detach()) == pytest.approx(0.0)
    loss.backward()  # differentiable, so a rank without rivals this step joins the backward


def test_an_augmented_training_set_publishes_its_rival_groups(tmp_path):
    from tests.training.test_augment import plain_and_augmented_sets
    from training.trainset import load_rivals

    store, tokenizer, plain, augmented = plain_and_augmented_sets(tmp_path)
    assert load_rivals(store, plain) is None
    ids, starts = load_rivals(store, augmented)
    assert augmented.fields["rival_groups"] == len(ids) == len(starts) > 0
    for group, start in zip(ids[:10], starts, strict=False):
        rows = [tokenizer.decode([t for t in row if t != PAD]) for row in group if row[0] != PAD]
        assert len(rows) >= 2
        questions = {row.split("\nAnswer:")[0] for row in rows}
        answers = [row.split("\nAnswer:")[1] for row in rows]
        assert len(questions) == 1 and len(set(answers)) == len(answers)  # one question
        prompt = tokenizer.decode(group[0][:start])
        assert prompt.endswith("\nAnswer:") and prompt.startswith("Question: ")


def test_the_rivals_per_answer_are_the_configs_and_none_leaves_the_set_without_groups(tmp_path):
    from tests.training.test_augment import plain_and_augmented_sets
    from training.trainset import build_training_set, load_rivals

    store, tokenizer, plain, three = plain_and_augmented_sets(tmp_path)
    kw = {"epochs": 1.0, "seed": 0, "seq_len": 32, "tokenizer": tokenizer, "replay_ratio": 0.0}
    day = plain.fields["new_datasets"]
    none, one = (build_training_set(store, day, augment=True, rivals=k, **kw) for k in (0, 1))
    assert load_rivals(store, none) is None and none.fields["rival_groups"] == 0
    assert (three.fields["rivals"], none.fields["rivals"], one.fields["rivals"]) == (3, 0, 1)
    ids, _ = load_rivals(store, one)
    assert ids.shape[1] == 2  # the right answer and one rival
    assert one.fields["rival_groups"] == three.fields["rival_groups"]
    # the same turns are trained: only the ranked answers differ
    assert none.fields["input_ids_sha256"] == three.fields["input_ids_sha256"]
    assert len({three.trainset_id, none.trainset_id, one.trainset_id}) == 3


def test_rivals_come_from_the_base_models_recipe_and_count_only_with_the_augmentation():
    from freshlm.settings import Settings
    from training.config import ConfigError, TrainConfig

    assert Settings.from_env({"FRESHLM_BASE_MODEL": "smollm2-135m-instruct"}).train_rivals == 3
    assert Settings.from_env({"FRESHLM_TRAIN_RIVALS": "0"}).train_rivals == 0
    with pytest.raises(ConfigError, match=r"rivals = -1: must be an integer"):
        TrainConfig(datasets=["abc"], base_version="v1", augment=True, rivals=-1)
    ranked = TrainConfig(datasets=["abc"], base_version="v1", augment=True, rivals=3)
    assert ranked.recipe()["rivals"] == 3 and "rivals" not in ranked.replace(rivals=0).recipe()
    plain = TrainConfig(datasets=["abc"], base_version="v1", augment=False, rivals=3)
    assert "rivals" not in plain.recipe()  # no span answers to rank: not part of the run


def test_a_reused_training_set_that_differs_from_the_config_names_each_difference(tmp_path):
    from tests.training.test_augment import plain_and_augmented_sets
    from training.config import ConfigError, TrainConfig
    from training.train import resolve_trainset

    store, _, _, three = plain_and_augmented_sets(tmp_path)
    config = TrainConfig(
        datasets=three.fields["new_datasets"], base_version="v1", augment=True, rivals=3,
        epochs=1.0, seed=0, seq_len=32, replay_ratio=0.0, trainset_id=three.trainset_id,
    )  # fmt: skip
    assert resolve_trainset(store, config, None).trainset_id == three.trainset_id
    with pytest.raises(ConfigError) as raised:
        resolve_trainset(store, config.replace(rivals=1, seed=5), None)
    message = str(raised.value)
    assert three.trainset_id in message
    assert "rivals is 3 in the set, 1 here" in message and "seed is 0 in the set, 5 here" in message
    assert "seq_len" not in message and "appositions" not in message  # only what differs
