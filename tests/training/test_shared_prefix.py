"""Rival groups packed one sequence each (the question once, every answer after it) give each
answer token exactly the log-probability it gets in its own turn."""

from __future__ import annotations

import pytest

from training.rivals import PAD, answer_logprobs, pack_groups
from training.shared_prefix import pack_shared_prefix


def _model(family: str, attention: str):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if family == "gpt2":
        config = GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=4)
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(
            vocab_size=97,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            tie_word_embeddings=True,
        )
        model = LlamaForCausalLM(config)
    model.config._attn_implementation = attention
    return model.eval()


def _groups():
    # Two groups of different question lengths; the second has one rival fewer (a PAD row).
    ids, starts = pack_groups(
        [
            (
                5,
                [
                    [3, 4, 5, 6, 7, 20, 21, 2],
                    [3, 4, 5, 6, 7, 30, 2],
                    [3, 4, 5, 6, 7, 40, 41, 42, 2],
                ],
            ),
            (3, [[8, 9, 10, 50, 2], [8, 9, 10, 60, 61, 2]]),
        ],
        k=2,
    )
    return ids, starts


def test_the_packed_layout_reads_the_question_once():
    import torch

    ids, starts = _groups()
    batch = pack_shared_prefix(torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(starts))
    # Group 0: 5 question tokens, then answers of 3, 2 and 4 tokens.
    assert batch.input_ids[0].tolist() == [3, 4, 5, 6, 7, 20, 21, 2, 30, 2, 40, 41, 42, 2]
    assert batch.position_ids[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 5, 6, 5, 6, 7, 8]
    allowed = batch.attention_mask[0, 0] == 0
    assert allowed[8, :5].all() and not allowed[8, 5:8].any() and allowed[8, 8]  # "30"
    # Every answer's first token is predicted from the question's last token.
    firsts = [i for i, g in enumerate(batch.group_of.tolist()) if g == 0]
    assert batch.predict_at[firsts[0]] == 4 and batch.predict_at[firsts[3]] == 4
    assert batch.present.tolist() == [[True, True, True], [True, True, False]]
    assert (torch.as_tensor(ids)[1, 2] == PAD).all()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_each_answer_token_gets_its_own_turn_s_log_probability(family, attention):
    import torch

    model = _model(family, attention)
    ids, starts = _groups()
    ids_t, starts_t = torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(starts)
    with torch.no_grad():
        reference, present = answer_logprobs(model, ids_t, starts_t)
        batch = pack_shared_prefix(ids_t, starts_t)
        logits = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
        ).logits
    logp = torch.log_softmax(logits[batch.group_of, batch.predict_at].float(), -1)
    token = logp.gather(1, batch.target[:, None])[:, 0]
    counts = torch.bincount(batch.row_of, minlength=present.numel()).clamp(min=1)
    means = torch.zeros(present.numel()).index_add(0, batch.row_of, token) / counts
    assert (batch.present == present).all()
    torch.testing.assert_close(
        means.reshape(present.shape)[present], reference[present], atol=1e-5, rtol=1e-5
    )
