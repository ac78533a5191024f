"""Query strings of source URLs stay out of records, manifests and logs: they may carry tokens.

Feed URLs in the sources file often authenticate with the query (``?token=...``, ``?key=...``).
:func:`redact_url` keeps the parameter names and replaces each value with ``REDACTED``;
:func:`redact_urls` does that to every http(s) URL inside a text (a log line, an error).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "REDACTED"
_URL_RE = re.compile(r"https?://[^\s'\"<>;,)]+")


def redact_url(url: str) -> str:
    """``url`` with every query value (and any user:password) replaced by ``REDACTED``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query and "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(name, MASK) for name, _ in pairs], safe=MASK) if pairs else ""
    if parts.query and not pairs:
        query = MASK
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_urls(text: str) -> str:
    """``text`` with every http(s) URL in it passed through :func:`redact_url`."""
    return _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
