"""FreshLM's DAG files: wiring only; the logic they call lives in the stage packages."""
