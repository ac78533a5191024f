"""bench/knowledge_recipes.py --patch-keys: new neurons keyed on given MLP inputs."""


def test_keyed_neurons_fire_at_their_key_and_meet_general_inputs_at_zero():
    import torch

    from bench.knowledge_recipes import neuron_keys

    g = torch.Generator().manual_seed(0)
    general = torch.randn(200, 16, generator=g) + 3.0  # a shared mean, as hidden states have
    keys = torch.randn(4, 16, generator=g) * 2 + 3.0
    gate, up, spread = neuron_keys(keys, general, 4.0)
    assert torch.allclose((gate @ (keys - general.mean(0)).T).diagonal(), torch.full((4,), 4.0))
    assert torch.allclose((up @ (keys - general.mean(0)).T).diagonal(), torch.ones(4))
    # the general inputs' mean direction is removed: their mean meets every neuron at zero
    assert torch.allclose(gate @ general.mean(0), torch.zeros(4), atol=1e-4)
    assert 0 < spread < 1
