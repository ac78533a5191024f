from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def scenario():
    from sandbox.scenario import load_scenario

    return load_scenario()
