"""Pure parsers for what the spiders fetch: bytes in, plain Python values out, no Scrapy.

Each module parses one kind of response (feeds, article pages, Mastodon JSON, arXiv Atom) so
it can be unit-tested on recorded real responses without a crawl.
"""
