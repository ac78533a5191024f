"""The sandbox world: a local stand-in for news sites, Mastodon and arXiv, with dated content.

``sandbox.model`` is the content model, ``sandbox.scenario`` loads the scenario
files, ``sandbox.clock`` decides what "now" is. Importing this package imports nothing
else, so DAG files stay fast to parse.
"""
