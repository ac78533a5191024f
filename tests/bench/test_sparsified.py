"""bench/knowledge_recipes.py --sparsify keeps an update's largest changes and nothing else."""

import torch

from bench.knowledge_recipes import sparsified


def test_only_the_largest_changes_survive_with_their_sign():
    delta = torch.tensor([[0.5, -0.01, 0.02], [-0.9, 0.03, 0.0]])
    kept = sparsified(delta, 2 / 6)
    assert torch.equal(kept, torch.tensor([[0.5, 0.0, 0.0], [-0.9, 0.0, 0.0]]))


def test_a_fraction_that_covers_every_entry_keeps_the_update_whole():
    delta = torch.randn(4, 5)
    assert torch.equal(sparsified(delta, 1.0), delta)


def test_at_least_one_change_is_kept():
    delta = torch.tensor([0.1, -0.4, 0.2])
    assert torch.equal(sparsified(delta, 0.01), torch.tensor([0.0, -0.4, 0.0]))


def test_each_moved_update_is_evaluated_and_the_trained_weights_come_back():
    from types import SimpleNamespace

    from bench.knowledge_recipes import evaluate_moved

    seen = []
    trial = SimpleNamespace(
        params=[torch.tensor([3.0, -1.0])],
        initial=[torch.tensor([1.0, 1.0])],
        evaluate=lambda facts, tag, general: seen.append((tag, trial.params[0].tolist())),
    )
    evaluate_moved(trial, "0.5,0", "merged", lambda delta, a: a * delta, [], None)
    assert seen == [("merged 0.5", [2.0, 0.0]), ("merged 0", [1.0, 1.0])]
    assert trial.params[0].tolist() == [3.0, -1.0]
