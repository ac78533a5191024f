"""The server's Prometheus metrics, in the text exposition format (version 0.0.4).

Few and fixed, so they are kept here by hand rather than through a client library: counters
and a histogram with labels, guarded by one lock, rendered on ``GET /metrics``.

* ``freshlm_serve_requests_total{endpoint,status}`` — HTTP requests answered;
* ``freshlm_serve_request_seconds{endpoint}`` — latency histogram of generation requests;
* ``freshlm_serve_prompt_tokens_total`` / ``freshlm_serve_completion_tokens_total``;
* ``freshlm_serve_batch_size`` — histogram of how many requests shared one forward pass;
* ``freshlm_serve_model_info{version,backend}`` — 1 for the version being served;
* ``freshlm_serve_models_loaded`` / ``freshlm_serve_model_weight_bytes`` — models held now
  (2 only while a swap warms the new one beside the old);
* ``freshlm_serve_swaps_total{result}`` — version swaps: ``swapped``, ``unchanged``, ``failed``.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name: str, labels: Labels) -> list[str]:
        out = []
        for bound, count in zip(self.buckets, self.counts, strict=True):
            out.append(f"{name}_bucket{_labels((*labels, ('le', _number(bound))))} {count}")
        out.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {self.count}")
        out.append(f"{name}_sum{_labels(labels)} {_number(self.total)}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out


class ServingMetrics:
    """Every figure of one server process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[Labels, int] = defaultdict(int)
        self._latency: dict[Labels, _Histogram] = {}
        self._batch = _Histogram(BATCH_BUCKETS)
        self._swaps: dict[Labels, int] = defaultdict(int)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        #: Read at render time: ``(version, backend)`` served now, or None while none is loaded.
        self.serving: Callable[[], tuple[str, str] | None] = lambda: None
        #: Read at render time: ``(models held, their weight bytes)``.
        self.held: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def request(self, endpoint: str, status: int, seconds: float | None = None) -> None:
        with self._lock:
            self._requests[(("endpoint", endpoint), ("status", str(status)))] += 1
            if seconds is not None:
                key = (("endpoint", endpoint),)
                self._latency.setdefault(key, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion

    def batch(self, size: int) -> None:
        with self._lock:
            self._batch.observe(size)

    def swap(self, result: str) -> None:
        with self._lock:
            self._swaps[(("result", result),)] += 1

    def render(self) -> str:
        """The text exposition of every metric."""
        lines: list[str] = []

        def family(name: str, kind: str, doc: str) -> None:
            lines.extend([f"# HELP {name} {doc}", f"# TYPE {name} {kind}"])

        with self._lock:
            family("freshlm_serve_requests_total", "counter", "HTTP requests answered.")
            for labels, count in sorted(self._requests.items()):
                lines.append(f"freshlm_serve_requests_total{_labels(labels)} {count}")
            family("freshlm_serve_request_seconds", "histogram", "Generation request latency.")
            for labels, histogram in sorted(self._latency.items()):
                lines.extend(histogram.lines("freshlm_serve_request_seconds", labels))
            family("freshlm_serve_prompt_tokens_total", "counter", "Prompt tokens read.")
            lines.append(f"freshlm_serve_prompt_tokens_total {self.prompt_tokens}")
            family("freshlm_serve_completion_tokens_total", "counter", "Tokens generated.")
            lines.append(f"freshlm_serve_completion_tokens_total {self.completion_tokens}")
            family("freshlm_serve_batch_size", "histogram", "Requests per generate call.")
            lines.extend(self._batch.lines("freshlm_serve_batch_size", ()))
            family("freshlm_serve_swaps_total", "counter", "Model version swaps by result.")
            for labels, count in sorted(self._swaps.items()):
                lines.append(f"freshlm_serve_swaps_total{_labels(labels)} {count}")
        serving = self.serving()
        family("freshlm_serve_model_info", "gauge", "1 for the model version being served.")
        if serving is not None:
            labels = (("version", serving[0]), ("backend", serving[1]))
            lines.append(f"freshlm_serve_model_info{_labels(labels)} 1")
        models, weight_bytes = self.held()
        family("freshlm_serve_models_loaded", "gauge", "Model versions held in memory.")
        lines.append(f"freshlm_serve_models_loaded {models}")
        family("freshlm_serve_model_weight_bytes", "gauge", "Weight bytes of the models held.")
        lines.append(f"freshlm_serve_model_weight_bytes {weight_bytes}")
        return "\n".join(lines) + "\n"
