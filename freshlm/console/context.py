"""What a request works with: the app's artifact store and its DAG trigger."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import Request

from freshlm.console.rendering import PageError
from freshlm.store import Store

_ARTIFACT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def store_of(request: Request) -> Store:
    return request.app.state.open_store()


def trigger_of(request: Request) -> Callable[..., dict[str, Any]]:
    return request.app.state.trigger


def check_artifact_id(value: str, what: str) -> str:
    """``value`` as one artifact id segment, or a 404 naming it (no ``/``, ``..`` or blanks
    can reach a store key from a URL)."""
    if not _ARTIFACT_ID.match(value) or ".." in value:
        raise PageError(404, f"No such {what}", f"{value!r} is not a valid {what} id.")
    return value
