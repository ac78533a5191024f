"""Pytest fixtures: the sandbox world server (packaged scenario) on a free port.

``world`` starts one :class:`~sandbox.server.WorldServer` per test session in a
background thread; ``world_at_start`` hands it to a test with the clock at the scenario's
start and no faults, Slack messages, rate-limit counts or request log left from other tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.server import WorldServer


@pytest.fixture(scope="session")
def world() -> Iterator[WorldServer]:
    """The world server with the packaged scenario, serving for the whole session."""
    with WorldServer(port=0) as server:
        yield server


@pytest.fixture
def world_at_start(world: WorldServer) -> Iterator[WorldServer]:
    """The session's world, reset before and after the test."""
    world.reset()
    yield world
    world.reset()
