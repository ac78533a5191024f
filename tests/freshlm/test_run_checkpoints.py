"""A training run's checkpoints are deleted whole once they serve no resume
(:func:`freshlm.artifacts.delete_run`): published ones and an upload a killed rank left
half-written, and no other run's."""

from __future__ import annotations

from freshlm.artifacts import delete_run
from freshlm.store import open_store


def _publish(store, run_key: str, step: int, size: int) -> str:
    prefix = f"runs/{run_key}/checkpoints/step-{step}"
    with store.publisher(prefix, kind="checkpoint") as pub:
        pub.write_bytes("optim_states.pt", b"o" * size)
        pub.write_bytes("trainer_state.json", b'{"global_step": %d}' % step)
    return prefix


def test_delete_run_removes_its_checkpoints_and_half_uploads_and_counts_their_bytes(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    mine = [_publish(store, "a" * 32, step, 1000) for step in (2, 4)]
    sizes = sum(store.read_manifest(p).total_size for p in mine)
    store.write_bytes(f"runs/{'a' * 32}/checkpoints/step-6/optim_states.pt", b"partial")
    other = _publish(store, "b" * 32, 2, 10)

    assert delete_run(store, "a" * 32) == (2, sizes)
    assert sizes > 2000
    assert list(store.list(f"runs/{'a' * 32}/")) == []
    assert list(store.list_published("runs/")) == [other]
    assert store.read_manifest(other, verify=True) is not None
    assert delete_run(store, "a" * 32) == (0, 0)  # nothing left is not an error
