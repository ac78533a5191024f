"""Evaluation: knowledge probes built from the published data, and the scoring of a candidate
model against production on them (new knowledge, retention, perplexity, bias, latency)."""
