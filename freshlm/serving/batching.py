"""Request batching: many HTTP handlers submit, one worker thread generates for them in groups.

The worker waits for the first request, then gathers whatever else arrives within
``batch_wait_s`` (up to ``max_batch``), and hands each group of requests that share sampling
settings to the backend's ``generate`` in one call: concurrent users share each forward pass
instead of queueing behind each other. The worker owns the model, so no two generations ever
run on it at once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from freshlm.serving.generation import Generation, GenerationRequest, chat_prompt

log = logging.getLogger(__name__)

_STOP = object()
GenerateFn = Callable[[Sequence[GenerationRequest]], list[Generation]]


class BatchQueue:
    """Queue requests for ``generate`` and run it on one worker thread; see the module doc."""

    def __init__(
        self,
        generate: GenerateFn,
        *,
        max_batch: int,
        batch_wait_s: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
    ):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._generate = generate
        self._on_batch = on_batch
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self._queue: queue.Queue[Any] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="generate", daemon=True)
        self._worker.start()

    def submit(self, request: GenerationRequest) -> concurrent.futures.Future[Generation]:
        """Queue ``request``; the future resolves to its :class:`Generation` (or the error)."""
        future: concurrent.futures.Future[Generation] = concurrent.futures.Future()
        if not self._worker.is_alive():
            future.set_exception(RuntimeError("this model has been unloaded"))
            return future
        self._queue.put((request, future))
        return future

    def close(self) -> None:
        """Finish every queued request, then stop the worker."""
        self._queue.put(_STOP)
        self._worker.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.batch_wait_s
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            groups: dict[tuple[float, float], list[Any]] = {}
            for request, future in batch:
                if future.set_running_or_notify_cancel():
                    groups.setdefault(request.sampling_key, []).append((request, future))
            for group in groups.values():
                self._run_group(group)

    def _run_group(self, group: list[Any]) -> None:
        if self._on_batch is not None:
            self._on_batch(len(group))
        try:
            results = self._generate([request for request, _ in group])
        except Exception as exc:  # each waiting request gets the error; the worker goes on
            log.exception("generation failed for a batch of %d", len(group))
            for _, future in group:
                future.set_exception(exc)
            return
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)


class QueuedBackend:
    """What every backend does the same way: prompts in the model's chat template, requests
    through a :class:`BatchQueue` into the backend's ``generate``, and a short warm-up.
    Subclasses set ``tokenizer`` and ``_batches`` and define ``generate`` and ``close``."""

    tokenizer: Any
    _batches: BatchQueue

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> str:
        return chat_prompt(self.tokenizer, messages)

    def submit(self, request: GenerationRequest) -> concurrent.futures.Future[Generation]:
        """Queue ``request``; the future resolves to its :class:`Generation`."""
        return self._batches.submit(request)

    def warm_up(self) -> None:
        """One short generation, so the first user does not pay for one-off initialisation."""
        self.submit(GenerationRequest(prompt="Hello", max_new_tokens=2)).result()
