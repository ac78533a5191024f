"""The vLLM backend, for a machine with a GPU and the ``vllm`` package.

vLLM batches continuously and pages the KV cache, so on a GPU it serves many more users per
second than the transformers backend. It is optional: FreshLM's pinned requirements do not
include it (it has no CPU build and pins its own torch); install it in the serving image and
``FRESHLM_SERVE_BACKEND=auto`` (or ``vllm``) picks it. :func:`available` says whether it can
run here; nothing imports ``vllm`` unless it can.

A version whose folder is a LoRA adapter (``adapter_config.json``) is served as an adapter on
its base model (``base_model_name_or_path`` in that file).

Requests go through vLLM's own engine (``LLM.generate`` with a list of prompts), gathered by
:class:`~freshlm.serving.batching.BatchQueue` as the transformers backend's are. Not exercised
by the test suite (no GPU and no ``vllm`` here); the transformers backend is.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from freshlm.serving.batching import BatchQueue, QueuedBackend
from freshlm.serving.generation import Generation, GenerationRequest


def available() -> bool:
    """Whether vLLM can serve here: the package is installed and a CUDA GPU is visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


class VLLMBackend(QueuedBackend):
    """One model version in vLLM; the same contract as
    :class:`~freshlm.serving.transformers_backend.TransformersBackend`."""

    name = "vllm"

    def __init__(
        self,
        folder: str | Path,
        *,
        max_batch: int = 64,
        batch_wait_s: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
    ):
        from vllm import LLM  # the optional dependency: only on a GPU machine that has it

        folder = Path(folder)
        adapter = folder / "adapter_config.json"
        self._lora = None
        if adapter.is_file():
            from vllm.lora.request import LoRARequest

            base = json.loads(adapter.read_text())["base_model_name_or_path"]
            self.llm = LLM(model=base, enable_lora=True)
            self._lora = LoRARequest(folder.name, 1, str(folder))
        else:
            self.llm = LLM(model=str(folder))
        self.tokenizer = self.llm.get_tokenizer()
        self.weight_bytes = 0  # held on the GPU; vLLM reports its own memory
        self._batches = BatchQueue(
            self.generate, max_batch=max_batch, batch_wait_s=batch_wait_s, on_batch=on_batch
        )

    def close(self) -> None:
        import torch

        self._batches.close()
        del self.llm
        torch.cuda.empty_cache()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                max_tokens=r.max_new_tokens, temperature=r.temperature, top_p=r.top_p, seed=r.seed
            )
            for r in requests
        ]
        outputs = self.llm.generate(
            [r.prompt for r in requests], params, lora_request=self._lora, use_tqdm=False
        )
        results = []
        for output in outputs:
            completion = output.outputs[0]
            results.append(
                Generation(
                    text=completion.text.strip(),
                    prompt_tokens=len(output.prompt_token_ids),
                    completion_tokens=len(completion.token_ids),
                    finish_reason="length" if completion.finish_reason == "length" else "stop",
                )
            )
        return results
