"""Fixtures for the world server tests: the packaged-scenario server and a tiny exact one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.mastodon_api import RateLimit
from sandbox.server import WorldServer
from tests.sandbox import tiny_scenario


@pytest.fixture(scope="session")
def tiny_server() -> Iterator[WorldServer]:
    """A world over the tiny scenario, with a roomy rate limit (tests that count make their own)."""
    with WorldServer(tiny_scenario.build(), rate_limit=RateLimit(limit=10_000)) as server:
        yield server


@pytest.fixture
def tiny(tiny_server: WorldServer) -> Iterator[WorldServer]:
    """The tiny world, reset to its start before and after the test."""
    tiny_server.reset()
    yield tiny_server
    tiny_server.reset()
