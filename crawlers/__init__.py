"""FreshLM crawlers package."""
