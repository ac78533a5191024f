"""Every turn weighing the same (training.answer_weights): the weights, the rows that carry them,
the training set that publishes them, the loss that applies them, and the setting and Param."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from training.answer_weights import turn_weights
from training.packing import Text, pack


def test_each_turn_weighs_the_same_and_the_turns_keep_their_total():
    answers = [2, 10, 40, 0]
    weights = turn_weights(answers)
    totals = [w * n for w, n in zip(weights, answers, strict=True) if n]
    assert totals == pytest.approx([totals[0]] * 3)
    assert sum(totals) == pytest.approx(sum(answers))
    assert weights[0] > weights[1] > weights[2]  # the shortest answer's tokens weigh most
    assert weights[3] == 1.0  # nothing trained, nothing to weigh
    assert turn_weights([]) == [] and turn_weights([0]) == [1.0]


def test_the_rows_carry_each_trained_tokens_weight_and_zero_elsewhere():
    eos = 0
    texts = [
        Text(list(range(100, 105))),  # a page: weight 1
        Text(list(range(500, 505)), prompt_tokens=3, whole=True, weight=2.5),
        Text(list(range(200, 206))),
    ]
    packed = pack(texts, eos, 8)
    mask = np.load(io.BytesIO(packed.mask_npy))
    weights = np.load(io.BytesIO(packed.weights_npy))
    assert weights.shape == mask.shape and weights.dtype == np.float32
    # Row 2 opens with the turn: its question (3 tokens) untrained, its answer and end at 2.5,
    # then the page's rest at 1.
    assert weights[1].tolist() == [0, 0, 0, 2.5, 2.5, 2.5, 1, 1]
    assert (weights[mask == 0] == 0).all()
    # Every text weighing 1: no weights file, the rows as before.
    plain = pack([Text(t.ids, t.prompt_tokens, t.whole) for t in texts], eos, 8)
    assert plain.weights_npy is None and plain.npy == packed.npy


def test_the_weighted_loss_is_each_tokens_cross_entropy_times_its_weight():
    from training.answer_loss import labelled_loss, token_logprobs

    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50, bias=False)
    hidden = torch.randn(2, 6, 8)
    labels = torch.randint(0, 50, (2, 6))
    labels[0, :3] = -100
    weights = torch.rand(2, 6) * 3
    loss = labelled_loss(hidden, head, labels, None, 4, weights)
    targets, keep = labels[:, 1:], labels[:, 1:] != -100
    logp = token_logprobs(hidden[:, :-1][keep], head, targets[keep])
    expected = -(logp * weights[:, 1:][keep]).sum() / keep.sum()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    ones = labelled_loss(hidden, head, labels, None, 4, torch.ones(2, 6)).detach()
    assert float(ones) == pytest.approx(
        float(labelled_loss(hidden, head, labels).detach()), rel=1e-6
    )


def test_the_trainer_applies_the_weights_and_the_model_never_sees_them(tmp_path):
    from transformers import Trainer, TrainingArguments

    from tests.training.test_answer_loss import batch, tiny_llama
    from training.answer_loss import answer_loss_trainer_class

    torch.manual_seed(0)
    model = tiny_llama()
    ids, labels = batch(masked=True)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = answer_loss_trainer_class(Trainer)(model=model, args=args)
    plain = trainer.compute_loss(model, {"input_ids": ids, "labels": labels})
    doubled = trainer.compute_loss(
        model, {"input_ids": ids, "labels": labels, "loss_weights": torch.full(ids.shape, 2.0)}
    )
    assert float(doubled) == pytest.approx(2 * float(plain), rel=1e-5)


def test_a_weighted_set_where_the_trainers_own_loss_is_needed_is_refused(tmp_path):
    from transformers import Trainer, TrainingArguments

    from tests.training.test_answer_loss import batch, tiny_llama
    from training.answer_loss import answer_loss_trainer_class

    model = tiny_llama()
    ids, labels = batch(masked=True)
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", label_smoothing_factor=0.1
    )
    trainer = answer_loss_trainer_class(Trainer)(model=model, args=args)
    inputs = {"input_ids": ids, "labels": labels, "loss_weights": torch.ones(ids.shape)}
    with pytest.raises(ValueError, match="answer_weighting='token'"):
        trainer.compute_loss(model, inputs)


def weighted_and_plain_sets(tmp_path):
    """``(store, set, the same set with every turn weighing the same)``: a tiny day with its
    augmentation and a rehearsal of long answers."""
    from transformers import AutoTokenizer

    from freshlm.store import open_store
    from tests.training.test_trainset import make_tiny_model, publish_dataset
    from training.rehearsal import Rehearsal, RehearsalSet, rehearsal_prefix
    from training.trainset import build_training_set

    store = open_store((tmp_path / "store").as_uri())
    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    day = publish_dataset(store, 0)
    root = "0123456789abcdef0123456789abcdef"
    turns = tuple(
        Rehearsal(f"What happened at the harbor on day {i}?", "The harbor story " * 8)
        for i in range(4)
    )
    kw = {
        "epochs": 2.0, "seed": 0, "seq_len": 32, "tokenizer": tokenizer, "replay_ratio": 0.0,
        "augment": True, "rehearsal": RehearsalSet(root, turns, rehearsal_prefix(root)),
    }  # fmt: skip
    plain = build_training_set(store, [day], **kw)
    weighted = build_training_set(store, [day], answer_weighting="turn", **kw)
    return store, plain, weighted


def test_a_turn_weighted_set_publishes_its_weights_under_its_own_id(tmp_path):
    from training.trainset import (
        TrainingSetError,
        build_training_set,
        load_input_ids,
        load_loss_mask,
        load_loss_weights,
    )

    store, plain, weighted = weighted_and_plain_sets(tmp_path)
    assert load_loss_weights(store, plain) is None and "answer_weighting" not in plain.fields
    assert weighted.fields["answer_weighting"] == "turn"
    assert weighted.trainset_id != plain.trainset_id  # never reused for the other weighting
    # The same rows and mask: only how much each trained token weighs differs.
    assert (load_input_ids(store, weighted) == load_input_ids(store, plain)).all()
    mask, weights = load_loss_mask(store, weighted), load_loss_weights(store, weighted)
    assert (weights[mask == 0] == 0).all() and (weights[mask == 1] > 0).all()
    # Pages weigh 1; the turns' short answers more, their long ones less.
    assert (weights == 1).any() and weights.max() > 1.5 and weights[mask == 1].min() < 1
    with pytest.raises(TrainingSetError, match="answer_weighting must be one of token, turn"):
        build_training_set(
            store, weighted.dataset_ids, epochs=1.0, seed=0, seq_len=32,
            tokenizer=_tokenizer(tmp_path), answer_weighting="sentence",
        )  # fmt: skip


def _tokenizer(tmp_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tmp_path / "model"))


def test_the_rank_reads_the_weights_with_its_rows(tmp_path):
    from training.train import _packed_dataset
    from training.trainset import load_input_ids, load_loss_mask, load_loss_weights

    store, _, weighted = weighted_and_plain_sets(tmp_path)
    weights = load_loss_weights(store, weighted)
    dataset = _packed_dataset(
        load_input_ids(store, weighted), load_loss_mask(store, weighted), weights
    )
    item = dataset[1]
    assert item["loss_weights"].dtype == torch.float32
    assert item["loss_weights"].tolist() == pytest.approx(weights[1].tolist())
    assert ((item["labels"] == -100) == (item["loss_weights"] == 0)).all()


def test_answer_weighting_is_a_setting_a_param_and_part_of_the_recipe():
    from freshlm.settings import Settings
    from training.config import ConfigError, TrainConfig

    config = TrainConfig(datasets=["abc"], base_version="v1", answer_weighting="token")
    assert "answer_weighting" not in config.recipe()  # the default leaves ids as they were
    turned = config.replace(answer_weighting="turn")
    assert turned.recipe()["answer_weighting"] == "turn"
    assert turned.fingerprint() != config.fingerprint()
    with pytest.raises(ConfigError, match=r"answer_weighting = 'answer': must be one of"):
        TrainConfig(datasets=["abc"], base_version="v1", answer_weighting="answer")
    pretrained = {"FRESHLM_BASE_MODEL": "smollm2-135m-instruct"}
    assert Settings.from_env(pretrained).train_answer_weighting == "token"
    asked = {**pretrained, "FRESHLM_TRAIN_ANSWER_WEIGHTING": "turn"}
    assert Settings.from_env(asked).train_answer_weighting == "turn"
    with pytest.raises(ValueError, match="TRAIN_ANSWER_WEIGHTING"):
        Settings.from_env({"FRESHLM_TRAIN_ANSWER_WEIGHTING": "tokens"})
