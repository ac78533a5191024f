"""The loss with the output head at labelled positions only (training.answer_loss): the same
value and gradients as Hugging Face's loss on GPT-2 and Llama shapes, with and without a loss
mask and in chunks; no logits tensor over more than a chunk of rows; the same rival answer
log-probabilities as the full-vocabulary computation; and the Trainer that uses it."""

from __future__ import annotations

import pytest
import torch

from training.answer_loss import (
    answer_loss_trainer_class,
    final_hidden_states,
    labelled_loss,
    token_logprobs,
)
from training.rivals import PAD, answer_logprobs

VOCAB = 211
HIDDEN = 32


def tiny_gpt2() -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB, n_embd=HIDDEN, n_layer=2, n_head=2, n_positions=64,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(config).eval()  # eval: no dropout, so two forwards agree


def tiny_llama() -> torch.nn.Module:
    """SmolLM2's shape, shrunk: grouped KV heads, tied embeddings."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, tie_word_embeddings=True,
        bos_token_id=0, eos_token_id=0, pad_token_id=0,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


MODELS = {"gpt2": tiny_gpt2, "llama": tiny_llama}


def batch(masked: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (3, 16), generator=gen)
    labels = ids.clone()
    if masked:  # ~25% of positions labelled, as with answers-only loss masks
        labels[torch.rand(3, 16, generator=gen) > 0.25] = -100
    return ids, labels


def ours(model: torch.nn.Module, ids, labels, chunk: int, num_items=None) -> torch.Tensor:
    hidden = final_hidden_states(model, input_ids=ids)
    return labelled_loss(hidden, model.get_output_embeddings(), labels, num_items, chunk)


def grads(model: torch.nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("masked", [True, False])
@pytest.mark.parametrize("chunk", [3, 4096])  # 3: many chunks, recomputed in the backward
def test_the_loss_and_its_gradients_equal_hugging_faces(name, masked, chunk):
    torch.manual_seed(0)
    model = MODELS[name]()
    ids, labels = batch(masked)
    ref = model(input_ids=ids, labels=labels).loss
    ref_grads = grads(model, ref)
    loss = ours(model, ids, labels, chunk)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), abs=1e-5)
    got = grads(model, loss)
    assert got.keys() == ref_grads.keys()
    for key, value in ref_grads.items():
        torch.testing.assert_close(got[key], value, atol=1e-5, rtol=1e-4, msg=key)


@pytest.mark.parametrize("name", MODELS)
def test_num_items_in_batch_normalises_as_hugging_face_does(name):
    """The Trainer passes the labelled tokens of the whole accumulated batch."""
    torch.manual_seed(0)
    model = MODELS[name]()
    ids, labels = batch(masked=True)
    items = torch.tensor(37)
    ref = model(input_ids=ids, labels=labels, num_items_in_batch=items).loss
    assert float(ours(model, ids, labels, 4, items).detach()) == pytest.approx(
        float(ref.detach()), abs=1e-5
    )


def test_a_batch_without_a_label_gives_zero_with_a_gradient():
    """Where Hugging Face's mean over no token is NaN, this loss is 0 and still backward-able
    (so a rank whose batch has no answer joins the backward pass)."""
    model = tiny_gpt2()
    ids, _ = batch(masked=False)
    labels = torch.full_like(ids, -100)
    assert torch.isnan(model(input_ids=ids, labels=labels).loss)
    loss = ours(model, ids, labels, chunk=4)
    assert float(loss.detach()) == 0.0
    got = grads(model, loss)
    assert got and all(float(g.abs().max()) == 0.0 for g in got.values())


class _LargestVocabTensor(torch.utils._python_dispatch.TorchDispatchMode):
    """The most rows of any tensor an op returns whose last dimension is the vocabulary, but
    the head's weight transposed (``(hidden, vocab)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else [out]:
            if isinstance(t, torch.Tensor) and t.dim() and t.shape[-1] == VOCAB:
                if tuple(t.shape) == (HIDDEN, VOCAB):
                    continue
                self.rows = max(self.rows, t.numel() // VOCAB)
        return out


@pytest.mark.parametrize("name", MODELS)
def test_no_logits_over_more_than_a_chunk_of_rows_exist(name):
    """In the forward and the backward pass no tensor spans the vocabulary over more than
    ``chunk`` rows (the model's own head runs on the last position only), where Hugging Face's
    loss builds one over every position."""
    torch.manual_seed(0)
    model = MODELS[name]()
    ids, labels = batch(masked=True)
    assert int((labels[:, 1:] != -100).sum()) > 5
    seen: list[int] = []
    model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: seen.append(args[0].numel() // args[0].shape[-1])
    )
    with _LargestVocabTensor() as ours_mode:
        ours(model, ids, labels, chunk=5).backward()
    assert ours_mode.rows <= 5 and max(seen) <= 5
    with _LargestVocabTensor() as theirs:
        model(input_ids=ids, labels=labels).loss.backward()
    assert theirs.rows == ids.numel()


def test_a_lora_wrapped_model_gets_the_same_loss_and_adapter_gradients():
    from peft import LoraConfig, TaskType, get_peft_model

    torch.manual_seed(0)
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, lora_dropout=0.0)
    model = get_peft_model(tiny_gpt2(), lora)
    for module in model.modules():  # adapters start at zero: give them a gradient to compare
        if hasattr(module, "lora_B"):
            torch.nn.init.normal_(module.lora_B["default"].weight, std=0.1)
    ids, labels = batch(masked=True)
    ref = model(input_ids=ids, labels=labels).loss
    ref_grads = grads(model, ref)
    loss = ours(model, ids, labels, chunk=3)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), abs=1e-5)
    got = grads(model, loss)
    assert got.keys() == ref_grads.keys() and all("lora" in k for k in got)
    for key, value in ref_grads.items():
        torch.testing.assert_close(got[key], value, atol=1e-5, rtol=1e-4, msg=key)


def reference_answer_logprobs(model, ids, starts):
    """The full-vocabulary computation ``answer_logprobs`` replaced."""
    groups, rows, length = ids.shape
    flat = ids.reshape(groups * rows, length)
    present = (flat != PAD).any(dim=1)
    real = flat[present]
    mask = real != PAD
    out = model(input_ids=real.clamp(min=0), attention_mask=mask.long())
    logp = torch.log_softmax(out.logits[:, :-1].float(), dim=-1)
    token_logp = logp.gather(-1, real[:, 1:].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    row_starts = starts.repeat_interleave(rows)[present]
    positions = torch.arange(1, length, device=real.device).unsqueeze(0)
    scored = mask[:, 1:] & (positions >= row_starts.unsqueeze(1))
    mean = (token_logp * scored).sum(1) / scored.sum(1).clamp(min=1)
    means = torch.zeros(groups * rows, dtype=mean.dtype, device=mean.device)
    means[present] = mean
    return means.reshape(groups, rows), present.reshape(groups, rows)


@pytest.mark.parametrize("name", MODELS)
def test_answer_logprobs_equal_the_full_vocabulary_computation(name):
    from training.rivals import pack_groups

    torch.manual_seed(0)
    model = MODELS[name]()
    groups = [
        (3, [[5, 6, 7, 8, 9], [5, 6, 7, 10], [5, 6, 7, 11, 12, 13]]),
        (2, [[20, 21, 22]]),  # no rival: rows of PAD only
        (4, [[30, 31, 32, 33], [30, 31, 32, 33, 34]]),  # a row with no answer token
    ]
    ids, starts = (torch.as_tensor(a, dtype=torch.long) for a in pack_groups(groups, k=2))
    means, present = answer_logprobs(model, ids, starts)
    ref_means, ref_present = reference_answer_logprobs(model, ids, starts)
    assert torch.equal(present, ref_present) and means.dtype == ref_means.dtype
    torch.testing.assert_close(means, ref_means, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(means)
    got, ref = grads(model, (means * weights).sum()), grads(model, (ref_means * weights).sum())
    for key, value in ref.items():
        torch.testing.assert_close(got[key], value, atol=1e-5, rtol=1e-4, msg=key)


def test_token_logprobs_are_the_log_softmax_at_the_targets():
    head = torch.nn.Linear(8, VOCAB, bias=False)
    hidden, targets = torch.randn(10, 8), torch.randint(0, VOCAB, (10,))
    expected = torch.log_softmax(head(hidden), -1).gather(-1, targets[:, None])[:, 0]
    for chunk in (1, 3, 10, 64):
        torch.testing.assert_close(token_logprobs(hidden, head, targets, chunk), expected)
    assert token_logprobs(hidden[:0], head, targets[:0], 4).shape == (0,)


def _trainer(trainer_class, model, tmp_path, **kwargs):
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=3
    )
    return trainer_class(model=model, args=args, **kwargs)


@pytest.mark.parametrize("items", [None, torch.tensor(29)])
def test_the_trainer_loss_equals_the_plain_trainers(tmp_path, items):
    from transformers import Trainer

    torch.manual_seed(0)
    model = tiny_llama()
    ids, labels = batch(masked=True)
    inputs = {"input_ids": ids, "labels": labels}
    plain = _trainer(Trainer, model, tmp_path).compute_loss(model, inputs, False, items)
    trainer = _trainer(answer_loss_trainer_class(Trainer, chunk=4), model, tmp_path)
    rows: list[int] = []
    hook = model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: rows.append(args[0].numel() // HIDDEN)
    )
    loss = trainer.compute_loss(model, inputs, False, items)
    hook.remove()
    assert float(loss.detach()) == pytest.approx(float(plain), abs=1e-5)
    assert len(rows) > 2 and max(rows) <= 4  # the head ran in chunks, not over every position
    loss, outputs = trainer.compute_loss(model, inputs, True, items)  # evaluation: the logits
    assert outputs.logits.shape == (*ids.shape, VOCAB)


def test_the_ranking_loss_composes_with_the_answer_loss(tmp_path):
    """``rival_trainer_class`` adds its ranking loss on top of this loss via ``super()``."""
    from transformers import Trainer

    from training.rivals import RANK_WEIGHT, pack_groups, rank_loss, rival_trainer_class

    torch.manual_seed(0)
    model = tiny_gpt2()
    rivals, starts = pack_groups([(2, [[1, 2, 3, 4], [1, 2, 5]])] * 3, k=1)
    trainer_class = rival_trainer_class(answer_loss_trainer_class(Trainer))
    trainer = _trainer(trainer_class, model, tmp_path, rivals=rivals, rival_starts=starts)
    ids, labels = batch(masked=True)
    loss = trainer.compute_loss(model, {"input_ids": ids, "labels": labels})
    lm = model(input_ids=ids, labels=labels).loss
    rank = rank_loss(model, torch.as_tensor(rivals, dtype=torch.long), torch.as_tensor(starts))
    assert float(loss.detach()) == pytest.approx(float(lm + RANK_WEIGHT * rank), abs=1e-5)
    assert trainer.rank_losses == [pytest.approx(float(rank), abs=1e-6)]


def test_a_model_that_transforms_its_logits_keeps_its_own_loss():
    """Softcapped or scaled logits are not the head's output: ``plain_head`` says so, through
    a wrapper whose own ``config`` is something else (DeepSpeed's engine)."""
    from training.answer_loss import plain_head

    model = tiny_llama()
    assert plain_head(model)
    model.config.final_logit_softcapping = 30.0
    assert not plain_head(model)

    class Engine(torch.nn.Module):
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module, self.config = module, {"train_batch_size": 8}

    assert not plain_head(Engine(model))
