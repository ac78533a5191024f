"""Aliases: atomic compare-and-swap moves, `previous` follows `production`, an audit record per
move, exactly one winner among concurrent promotions, and crash safety between the writes."""

from __future__ import annotations

import threading

import pytest

from freshlm.registry import (
    ABSENT,
    PREVIOUS,
    PRODUCTION,
    PromotionConflict,
    RegistryError,
    VersionNotFound,
    list_aliases,
    move_alias,
    read_alias,
    read_audit,
    rollback,
)
from freshlm.registry.aliases import alias_key
from freshlm.store import StoreError


def _promote(store, version, **kwargs):
    args = {"actor": "dag:nightly/run:1", "reason": "passed the gate"}
    return move_alias(store, PRODUCTION, version.version_id, **{**args, **kwargs})


def test_first_move_then_previous_follows_with_an_audit_record_each(store, make_version):
    a, b, c = make_version("a"), make_version("b"), make_version("c")
    assert read_alias(store, PRODUCTION) is None and read_alias(store, PREVIOUS) is None

    first = _promote(store, a, metrics={"ppl": 30.0}, expected_from=ABSENT)
    assert (first.version_id, first.generation, first.from_version_id) == (a.version_id, 1, None)
    assert read_alias(store, PREVIOUS) is None

    _promote(store, b, metrics={"ppl": 25.0}, expected_from=a.version_id, report="reports/r2")
    third = _promote(store, c, reason="nightly 3", expected_from=b.version_id)
    assert read_alias(store, PRODUCTION).version_id == c.version_id
    previous = read_alias(store, PREVIOUS)
    assert previous.version_id == b.version_id and previous.follows == PRODUCTION
    assert set(list_aliases(store)) == {PRODUCTION, PREVIOUS}
    # The previous.json object itself was written (not only derived).
    assert store.read_json(alias_key(PREVIOUS))["version_id"] == b.version_id

    audit = read_audit(store)
    assert [(m.from_version_id, m.version_id) for m in audit] == [
        (None, a.version_id),
        (a.version_id, b.version_id),
        (b.version_id, c.version_id),
    ]
    assert [m.generation for m in audit] == [1, 2, 3]
    assert audit[1].metrics == {"ppl": 25.0} and audit[1].report == "reports/r2"
    assert audit[2].reason == "nightly 3" and audit[2].actor == "dag:nightly/run:1"
    assert audit[2].moved_at.endswith("Z") and not any(m.recovered for m in audit)
    assert audit[2] == third


def test_rerun_of_a_move_is_a_no_op(store, make_version):
    a, b = make_version("a"), make_version("b")
    _promote(store, a)
    moved = _promote(store, b, expected_from=a.version_id)
    # A retried task (same arguments, after it succeeded) neither fails nor records again.
    assert _promote(store, b, expected_from=a.version_id) == moved
    assert _promote(store, b) == moved
    assert len(read_audit(store)) == 2


def test_refused_moves_change_nothing(store, make_version):
    a, b = make_version("a"), make_version("b")
    _promote(store, a)
    with pytest.raises(VersionNotFound):
        move_alias(store, PRODUCTION, "e" * 32, actor="x", reason="y")
    with pytest.raises(PromotionConflict, match="re-evaluate") as info:
        _promote(store, b, expected_from="f" * 32)
    assert (info.value.expected, info.value.actual) == ("f" * 32, a.version_id)
    with pytest.raises(PromotionConflict):
        _promote(store, b, expected_from=ABSENT)
    with pytest.raises(RegistryError, match="follows 'production'"):
        move_alias(store, PREVIOUS, b.version_id, actor="x", reason="y")
    with pytest.raises(RegistryError, match="not a valid alias name"):
        move_alias(store, "../prod", b.version_id, actor="x", reason="y")
    with pytest.raises(ValueError, match="actor"):
        move_alias(store, PRODUCTION, b.version_id, actor=" ", reason="y")
    with pytest.raises(ValueError, match="finite"):
        _promote(store, b, metrics={"ppl": float("inf")})
    assert read_alias(store, PRODUCTION).version_id == a.version_id
    assert len(read_audit(store)) == 1


def test_rollback_swaps_production_and_previous(store, make_version):
    a, b = make_version("a"), make_version("b")
    _promote(store, a)
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        rollback(store, actor="oncall", reason="bad answers")
    _promote(store, b)
    back = rollback(store, actor="oncall:jiwoo", reason="bad answers on support probes")
    assert back.version_id == a.version_id
    assert read_alias(store, PREVIOUS).version_id == b.version_id
    assert read_audit(store)[-1].reason == "bad answers on support probes"


def test_other_aliases_move_independently(store, make_version):
    a, b = make_version("a"), make_version("b")
    _promote(store, a)
    move_alias(store, "candidate", b.version_id, actor="train", reason="trained")
    assert read_alias(store, "candidate").version_id == b.version_id
    assert read_alias(store, PREVIOUS) is None
    assert [m.alias for m in read_audit(store, alias="candidate")] == ["candidate"]


def test_concurrent_promotions_exactly_one_wins(store, make_version):
    base = make_version("base")
    _promote(store, base)
    candidates = [make_version(f"cand{i}") for i in range(6)]
    barrier = threading.Barrier(len(candidates), timeout=30)
    outcomes: dict[str, object] = {}

    def promote(version):
        barrier.wait()
        try:
            outcomes[version.version_id] = _promote(store, version, expected_from=base.version_id)
        except PromotionConflict as exc:
            outcomes[version.version_id] = exc

    threads = [threading.Thread(target=promote, args=(v,)) for v in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [vid for vid, outcome in outcomes.items() if not isinstance(outcome, Exception)]
    assert len(outcomes) == len(candidates) and len(winners) == 1
    assert read_alias(store, PRODUCTION).version_id == winners[0]
    assert read_alias(store, PREVIOUS).version_id == base.version_id
    assert [m.version_id for m in read_audit(store)] == [base.version_id, winners[0]]


def test_racing_writers_that_read_the_same_state_exactly_one_wins(store, make_version, monkeypatch):
    """Without expected_from, the compare-and-swap itself decides: both writers read the same
    ETag (a barrier holds them after reading), both write, one is refused."""
    base, x, y = make_version("base"), make_version("x"), make_version("y")
    _promote(store, base)
    barrier = threading.Barrier(2, timeout=30)
    original = store.read_bytes_with_etag
    waited = set()

    def read_then_wait(key):
        result = original(key)
        name = threading.current_thread().name
        if key == alias_key(PRODUCTION) and name.startswith("racer") and name not in waited:
            waited.add(name)  # only the first read: the loser re-reads to name the winner
            barrier.wait()
        return result

    monkeypatch.setattr(store, "read_bytes_with_etag", read_then_wait)
    outcomes = []

    def promote(version):
        try:
            outcomes.append(_promote(store, version).version_id)
        except PromotionConflict as exc:
            outcomes.append(exc)

    threads = [
        threading.Thread(target=promote, args=(v,), name=f"racer-{i}") for i, v in enumerate([x, y])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["PromotionConflict", "str"]
    winner = next(o for o in outcomes if isinstance(o, str))
    assert read_alias(store, PRODUCTION).version_id == winner
    assert [m.generation for m in read_audit(store)] == [1, 2]


def test_a_crash_after_the_commit_loses_nothing(store, make_version, monkeypatch):
    """Production moved but the writer died before the audit record and previous.json: readers
    still see the move and the right previous, and the next move completes the records."""
    a, b, c = make_version("a"), make_version("b"), make_version("c")
    _promote(store, a)
    original = store.write_bytes

    def crash_after_alias(key, data, **kwargs):
        if key != alias_key(PRODUCTION):
            raise StoreError(store.uri_for(key), "simulated crash")
        return original(key, data, **kwargs)

    monkeypatch.setattr(store, "write_bytes", crash_after_alias)
    with pytest.raises(RegistryError, match="the move is committed"):
        _promote(store, b, reason="crashes while recording")
    monkeypatch.setattr(store, "write_bytes", original)

    assert read_alias(store, PRODUCTION).version_id == b.version_id
    assert read_alias(store, PREVIOUS).version_id == a.version_id  # derived from production
    audit = read_audit(store)
    assert [(m.version_id, m.recovered) for m in audit] == [
        (a.version_id, False),
        (b.version_id, True),
    ]
    # Rerunning the same move finishes the recording without a second event.
    _promote(store, b, reason="crashes while recording")
    assert [(m.version_id, m.recovered) for m in read_audit(store)] == [
        (a.version_id, False),
        (b.version_id, False),
    ]
    assert store.read_json(alias_key(PREVIOUS))["version_id"] == a.version_id
    _promote(store, c)
    assert read_alias(store, PREVIOUS).version_id == b.version_id
    assert len(read_audit(store)) == 3


def test_a_crash_before_the_commit_changes_nothing(store, make_version, monkeypatch):
    a, b = make_version("a"), make_version("b")
    _promote(store, a)

    def crash(key, data, **kwargs):
        raise StoreError(store.uri_for(key), "simulated crash")

    monkeypatch.setattr(store, "write_bytes", crash)
    with pytest.raises(StoreError, match="simulated crash"):
        _promote(store, b)
    monkeypatch.undo()
    assert read_alias(store, PRODUCTION).version_id == a.version_id
    assert read_alias(store, PREVIOUS) is None
    assert len(read_audit(store)) == 1


def test_a_corrupt_alias_record_is_a_clear_error(store, make_version):
    store.write_bytes(alias_key(PRODUCTION), b"not json")
    with pytest.raises(RegistryError, match="not a valid alias record"):
        read_alias(store, PRODUCTION)
