"""The transformers backend: one model version, its requests generated in batches.

Concurrent requests are gathered by :class:`~freshlm.serving.batching.BatchQueue` and
generated in one ``generate`` call with left padding. Greedy answers equal those of a plain
one-prompt ``generate``: the attention mask keeps the padding out, and each answer is cut at
its own end-of-text token and its own ``max_new_tokens``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from freshlm.serving.batching import BatchQueue, QueuedBackend
from freshlm.serving.generation import Generation, GenerationRequest


class TransformersBackend(QueuedBackend):
    """A loaded Hugging Face model folder that generates on a worker thread."""

    name = "transformers"

    def __init__(
        self,
        folder: str | Path,
        *,
        max_batch: int = 8,
        batch_wait_s: float = 0.005,
        device: str | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder}: no config.json; not a Hugging Face model folder")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = (
            AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
            .to(self.device)
            .eval()
        )
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.context = _context_size(self.model.config, self.tokenizer)
        self.weight_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self._batches = BatchQueue(
            self.generate, max_batch=max_batch, batch_wait_s=batch_wait_s, on_batch=on_batch
        )

    def close(self) -> None:
        """Finish what is queued, stop the worker and drop the weights."""
        self._batches.close()
        self.model = None
        self.tokenizer = None

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Generate for requests that share sampling settings, in one call."""
        import torch

        longest = min(max(r.max_new_tokens for r in requests), self.context // 2)
        batch = self.tokenizer(
            [r.prompt for r in requests],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.context - longest,
            add_special_tokens=False,
        ).to(self.device)
        sampling: dict[str, Any] = {"do_sample": False}
        first = requests[0]
        if first.temperature > 0:
            sampling = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p}
            if first.seed is not None:
                torch.manual_seed(first.seed)
        with torch.inference_mode():
            out = self.model.generate(
                **batch,
                max_new_tokens=longest,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        new_tokens = out[:, batch["input_ids"].shape[1] :].tolist()
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [
            self._finish(tokens, request, int(length))
            for tokens, request, length in zip(new_tokens, requests, prompt_lengths, strict=True)
        ]

    def _finish(self, tokens: list[int], request: GenerationRequest, prompt: int) -> Generation:
        """One row of a batch: cut at its end-of-text token and its own token limit."""
        eos = self.tokenizer.eos_token_id
        kept = tokens[: min(request.max_new_tokens, self.context // 2)]
        reason = "length"
        if eos is not None and eos in kept:
            kept, reason = kept[: kept.index(eos)], "stop"
        return Generation(
            text=self.tokenizer.decode(kept, skip_special_tokens=True).strip(),
            prompt_tokens=prompt,
            completion_tokens=len(kept),
            finish_reason=reason,
        )


def _context_size(config: Any, tokenizer: Any) -> int:
    """The model's context length in tokens (config, else the tokenizer's, else 1024)."""
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 1:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 1 < value < 1_000_000 else 1024
