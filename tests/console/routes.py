"""Every route of the console, with sample values for its path parameters, for tests that must
cover them all (authentication refuses anyone else on each)."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from freshlm.alerts.links import CONSOLE_PREFIX
from freshlm.console import create_app

SAMPLE_PARAMS = {
    "version_id": "0" * 32,
    "batch_id": "no-such-batch",
    "key": "models/" + "0" * 32 + "/README.md",
}


def console_routes() -> list[tuple[str, str]]:
    """``(method, path under the site root)`` for every route of the console app."""
    found = []
    for route in create_app().routes:
        if not isinstance(route, APIRoute):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLE_PARAMS[m.group(1)], route.path_format)
        for method in sorted(route.methods):
            found.append((method, CONSOLE_PREFIX + path))
    return found
