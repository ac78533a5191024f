"""bench/knowledge_recipes.py --project: updates kept off the inputs the base's turns give."""


def test_an_update_projected_off_the_subspace_leaves_those_inputs_outputs_unchanged():
    import torch

    from bench.knowledge_recipes import input_subspace

    g = torch.Generator().manual_seed(0)
    mixing = torch.randn(3, 8, generator=g)
    old = torch.randn(500, 3, generator=g) @ mixing  # inputs in a 3-dim subspace of 8
    basis = input_subspace(old.T @ old, 0.999)
    assert basis.shape == (8, 3)
    update = torch.randn(5, 8, generator=g)
    kept_off = update - (update @ basis) @ basis.T
    assert torch.allclose(old @ kept_off.T, torch.zeros(500, 5), atol=1e-3)
    # an input outside that subspace still sees the update
    new = torch.linalg.svd(mixing).Vh[-1]  # orthogonal to every old input
    assert (kept_off @ new).abs().max() > 0.1


def test_the_energy_share_decides_how_many_directions_are_kept_off():
    import torch

    from bench.knowledge_recipes import input_subspace

    moment = torch.diag(torch.tensor([50.0, 30.0, 15.0, 4.0, 1.0]))
    assert input_subspace(moment, 0.5).shape[1] == 1
    assert input_subspace(moment, 0.9).shape[1] == 3
    assert input_subspace(moment, 1.0).shape[1] == 5
