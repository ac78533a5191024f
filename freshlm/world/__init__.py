"""The sandbox world: a local stand-in for news sites, Mastodon and arXiv, with dated content.

``freshlm.world.model`` is the content model, ``freshlm.world.scenario`` loads the scenario
files, ``freshlm.world.clock`` decides what "now" is. Importing this package imports nothing
else, so DAG files stay fast to parse.
"""
