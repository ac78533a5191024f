"""FreshLM training package."""
