"""The language-modelling loss with the output head run only where a token carries a label.

Hugging Face's causal-LM loss multiplies every position's final hidden state by the output head
and takes the cross-entropy over the whole vocabulary in fp32: a ``(batch, sequence, vocab)``
tensor, then dropped at the positions labelled -100. With a loss mask (answers only, ~10-30% of
positions labelled) most of that head is wasted; on a CPU rank training SmolLM2-135M's top
blocks it costs about as much as seven transformer blocks, and on a GPU a model without Liger
Kernel's fused head + loss (GPT-2) holds the whole fp32 logits tensor. Here the model runs
through its normal forward (DeepSpeed engine and PEFT wrappers included) with
``output_hidden_states`` and ``logits_to_keep=1``, and the head (the module, so ZeRO-3's hooks
gather its weight) runs on the labelled positions' hidden states only, :data:`CHUNK_ROWS` rows
at a time. With more than one chunk each chunk is recomputed in the backward pass instead of
kept, so at most one chunk's logits exist at once (not under ZeRO-3, which keeps them all: see
:func:`token_logprobs`). The value and gradients equal Hugging Face's
``ForCausalLMLoss`` (the same normalisation: by ``num_items_in_batch`` when the Trainer counts
the labelled tokens of the accumulated batch, else by this batch's), except that a batch with
no labelled token gives 0 (with a gradient) where Hugging Face's mean gives NaN.
"""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100
#: Rows of the output head per chunk: a chunk's fp32 logits are ``CHUNK_ROWS * vocab * 4``
#: bytes (0.8 GB at GPT-2's and SmolLM2's ~50k vocabulary).
CHUNK_ROWS = 4096
#: Config fields of models that transform the logits after the head (softcapping, scaling):
#: those keep Hugging Face's own loss.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def plain_head(model: Any) -> bool:
    """Whether ``model``'s logits are its output head applied to the last hidden state and
    nothing more (GPT-2, Llama, Qwen, Mistral...), as the loss here assumes."""
    import torch

    # A DeepSpeed engine's (or DDP's) own `config` is its settings: the model's is inside.
    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    config = getattr(model, "config", None)
    return config is not None and all(
        getattr(config, name, None) in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS
    )


def final_hidden_states(model: Any, **inputs: Any) -> Any:
    """``(batch, sequence, hidden)``: the last hidden state (after the final norm, GPT-2's
    ``ln_f``, Llama's ``norm``) from ``model``'s own forward, which runs its head on the last
    position only."""
    out = model(**inputs, output_hidden_states=True, logits_to_keep=1)
    return out.hidden_states[-1]


def _zero3_partitioned(param: Any) -> bool:
    return hasattr(param, "ds_id")


def _chunks(rows: int, chunk: int, head: Any) -> int:
    """How many head calls cover ``rows``: at least one (an empty one when there is no row), and
    under ZeRO-3 the most any rank needs, since each call gathers the head's weight with a
    collective every rank must join."""
    import torch

    count = max(1, -(-rows // chunk))
    weight = next(head.parameters(), None)
    if weight is not None and _zero3_partitioned(weight) and torch.distributed.is_initialized():
        n = torch.tensor([count], device=weight.device)
        torch.distributed.all_reduce(n, op=torch.distributed.ReduceOp.MAX)
        count = int(n.item())
    return count


def _chunk_logprobs(head: Any, hidden: Any, targets: Any) -> Any:
    import torch

    logits = head(hidden).float()
    return -torch.nn.functional.cross_entropy(logits, targets, reduction="none")


def token_logprobs(hidden: Any, head: Any, targets: Any, chunk: int = CHUNK_ROWS) -> Any:
    """fp32 ``(rows,)``: log p(``targets[i]``) under ``head`` applied to ``hidden[i]``
    (``(rows, hidden)``), the head run on at most ``chunk`` rows at a time."""
    import torch
    from torch.utils.checkpoint import checkpoint

    rows = hidden.shape[0]
    count = _chunks(rows, chunk, head)
    # One chunk's logits are kept for the backward pass; more are recomputed there, but under
    # ZeRO-3, whose head weight is partitioned again by the time of the recomputation (which
    # torch's checkpoint refuses): there every chunk's logits are kept.
    weight = next(head.parameters(), None)
    zero3 = weight is not None and _zero3_partitioned(weight)
    recompute = count > 1 and torch.is_grad_enabled() and not zero3
    pieces = []
    for i in range(count):
        h, t = hidden[i * chunk : (i + 1) * chunk], targets[i * chunk : (i + 1) * chunk]
        if recompute:
            pieces.append(checkpoint(_chunk_logprobs, head, h, t, use_reentrant=False))
        else:
            pieces.append(_chunk_logprobs(head, h, t))
    return torch.cat(pieces)


def labelled_loss(
    hidden_states: Any,
    head: Any,
    labels: Any,
    num_items_in_batch: Any = None,
    chunk: int = CHUNK_ROWS,
) -> Any:
    """Mean cross-entropy of the next token at the positions whose (shifted) label is not -100:
    ``hidden_states`` ``(batch, sequence, hidden)`` after the final norm, ``labels``
    ``(batch, sequence)`` unshifted as Hugging Face takes them. Summed in fp32 and divided by
    ``num_items_in_batch`` when given, else by the number of labelled tokens (at least 1)."""
    targets = labels[:, 1:].to(hidden_states.device)
    keep = targets != IGNORE_INDEX
    logp = token_logprobs(hidden_states[:, :-1][keep], head, targets[keep], chunk)
    if num_items_in_batch is None:
        return -logp.sum() / keep.sum().clamp(min=1)
    if hasattr(num_items_in_batch, "to"):
        num_items_in_batch = num_items_in_batch.to(logp.device)
    return -logp.sum() / num_items_in_batch


def answer_loss_trainer_class(trainer_class: Any, chunk: int = CHUNK_ROWS) -> Any:
    """``trainer_class`` (the Hugging Face Trainer) whose training loss is :func:`labelled_loss`
    where Hugging Face's would be the plain causal-LM loss; evaluation (``return_outputs``, which
    wants the logits), label smoothing, a custom loss function and models that transform their
    logits keep the Trainer's own."""

    class AnswerLossTrainer(trainer_class):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            parallel = getattr(self.accelerator, "parallelism_config", None)
            if (
                return_outputs
                or "labels" not in inputs
                or self.label_smoother is not None
                or self.compute_loss_func is not None
                or (parallel is not None and getattr(parallel, "sp_enabled", False))
                or not plain_head(model)
            ):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            rest = {k: v for k, v in inputs.items() if k != "labels"}
            hidden = final_hidden_states(model, **rest)
            # As the Trainer's own: the model divides by the accumulated batch's labelled tokens
            # when it takes loss kwargs and the Trainer counted them, else by this batch's.
            scaled = self.model_accepts_loss_kwargs and num_items_in_batch is not None
            head = model.get_output_embeddings()
            loss = labelled_loss(
                hidden, head, inputs["labels"], num_items_in_batch if scaled else None, chunk
            )
            if self.args.average_tokens_across_devices and scaled:
                # The Trainer's scaling of a loss averaged over all ranks' tokens: DDP and
                # DeepSpeed average the gradients over ranks, which this undoes.
                processes = self.accelerator.num_processes // self.get_tp_size()
                loss = loss * (processes if self.args.n_gpu <= 1 else self.args.n_gpu)
            return loss

    return AnswerLossTrainer
