"""FreshLM expectations package."""
