"""A promotion whose S3 response was lost, and retried by botocore, is a success, not a conflict.

On a real S3 server (SeaweedFS): the first conditional PUT of the alias succeeds, then botocore is
told its response was lost (as a dropped connection would) and retries the same PUT, which now
fails its own ``If-Match``. The move must be reported as done, once.
"""

from __future__ import annotations

import pytest

from freshlm.registry import move_alias, read_alias

pytestmark = pytest.mark.s3


@pytest.fixture
def store(s3_server, monkeypatch):
    from freshlm.settings import Settings
    from freshlm.store import open_store

    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(
        {
            "FRESHLM_STORE_URI": f"s3://{s3_server.create_bucket()}/freshlm",
            "FRESHLM_S3_ENDPOINT_URL": s3_server.endpoint_url,
            "FRESHLM_S3_MAX_ATTEMPTS": "3",
        }
    )
    return open_store(settings=settings)


def lose_the_next_conditional_put_response(store) -> list[int]:
    """Make botocore retry the next successful conditional PutObject once; returns a log of
    the statuses it saw."""
    seen: list[int] = []

    def needs_retry(response=None, attempts=None, request_dict=None, **_):
        headers = (request_dict or {}).get("headers") or {}
        conditional = "If-Match" in headers or "If-None-Match" in headers
        if not conditional or response is None:
            return None
        seen.append(response[0].status_code)
        if attempts == 1 and response[0].status_code == 200:
            return 0  # "the response never arrived": retry now
        return None

    store.client.meta.events.register_first("needs-retry.s3.PutObject", needs_retry)
    return seen


def test_a_retried_alias_move_is_not_a_false_conflict(store, make_version):
    first, second = make_version("a"), make_version("b")
    move_alias(store, "production", first.version_id, actor="t", reason="first")
    seen = lose_the_next_conditional_put_response(store)
    move = move_alias(
        store,
        "production",
        second.version_id,
        actor="t",
        reason="promote b",
        expected_from=first.version_id,
    )
    assert seen[:2] == [200, 412], "the lost response was not replayed"
    assert move.version_id == second.version_id
    assert read_alias(store, "production").version_id == second.version_id
