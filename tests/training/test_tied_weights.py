"""A tied output head stays tied in the saved weights: its duplicate copy is dropped, and the
model loads back with the same outputs."""

from __future__ import annotations

import pytest

from training.tied_weights import HEAD_KEY, WEIGHTS_FILE, drop_duplicate_head


@pytest.fixture
def tiny(tmp_path):
    from tests.training.test_trainset import make_tiny_model

    return make_tiny_model(tmp_path / "model")


def _with_head(folder, head):
    """The folder's weights rewritten with an explicit output head, as a gathered save has."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / WEIGHTS_FILE))
    tensors[HEAD_KEY] = head(tensors["transformer.wte.weight"]).clone()
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})


def _logits(folder):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder))
    with torch.no_grad():
        return model(torch.tensor([[1, 2, 3, 4]])).logits


def test_a_duplicate_of_the_tied_embeddings_is_dropped_and_loads_the_same(tiny):
    import torch
    from safetensors import safe_open

    before = _logits(tiny)
    size = (tiny / WEIGHTS_FILE).stat().st_size
    _with_head(tiny, lambda wte: wte)
    grown = (tiny / WEIGHTS_FILE).stat().st_size
    assert grown > size

    saved = drop_duplicate_head(tiny)
    assert saved == grown - (tiny / WEIGHTS_FILE).stat().st_size > 0
    with safe_open(str(tiny / WEIGHTS_FILE), framework="pt") as f:
        assert HEAD_KEY not in set(f.keys())
    assert torch.equal(_logits(tiny), before)
    assert drop_duplicate_head(tiny) == 0  # nothing left to drop


def test_a_head_that_differs_from_the_embeddings_is_kept(tiny):
    _with_head(tiny, lambda wte: wte + 1.0)
    assert drop_duplicate_head(tiny) == 0
    from safetensors import safe_open

    with safe_open(str(tiny / WEIGHTS_FILE), framework="pt") as f:
        assert HEAD_KEY in set(f.keys())
