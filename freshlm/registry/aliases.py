"""Aliases (``production``, ``previous``, …) that point at model versions, and their audit log.

Layout in the store::

    registry/aliases/<name>.json     the alias's current state: version, generation, last move
    registry/audit/<time>-<name>-g<generation>-<version>.json   one immutable object per move

**Moving an alias is one compare-and-swap** on ``registry/aliases/<name>.json``: the writer
reads the document with its ETag and writes the new one with ``if_match`` (``if_none_match``
when the alias does not exist yet). The store makes that check-and-write atomic (a conditional
PUT on S3, a locked rename locally), so of two concurrent promotions exactly one wins; the
other gets :class:`PromotionConflict` and has written nothing. Every document carries a
``generation`` that grows by one per move, which orders the moves of one alias exactly.

**``previous`` follows ``production``.** It is never moved on its own: each production move
records the version it replaced (``from_version_id``), and ``previous`` is set from that.

**Write order, and what a crash leaves** (one logical operation, several objects):

1. The target version's manifest is read: only a published version can be pointed at, and
   published versions are immutable, so no alias ever points at a missing version.
2. The alias document is swapped. This is the commit point: before it nothing changed, after
   it the move has happened, and the document itself holds the whole event (who, when, why,
   metrics, and the key its audit record will have).
3. The audit record is written with ``if_none_match`` under the key named in the document.
4. ``previous.json`` is set to the replaced version, guarded by generation so a slow writer can
   never overwrite a newer value with an older one.

A crash between 2 and 4 leaves production correct and, at worst, the audit record or
``previous.json`` behind. Nothing reads them stale: :func:`read_alias` derives ``previous`` from
the production document when ``previous.json`` lags, :func:`read_audit` includes the event held
in the alias document when its record is missing, and the next move of that alias (or a rerun
of the same move, which is a no-op) writes both for good.

Importing this module is cheap (no torch or transformers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from freshlm.registry.errors import PromotionConflict, RegistryError
from freshlm.registry.versions import check_metrics, get_version
from freshlm.store import KeyNotFound, PreconditionFailed, Store, StoreError

log = logging.getLogger(__name__)

ALIASES_PREFIX = "registry/aliases"
AUDIT_PREFIX = "registry/audit"
PRODUCTION = "production"
PREVIOUS = "previous"
#: Pass as ``expected_from`` to move an alias only if it does not exist yet.
ABSENT = "(absent)"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_SYNC_ATTEMPTS = 20


@dataclasses.dataclass(frozen=True)
class AliasMove:
    """One move of an alias; an alias's current state is its latest move.

    ``from_version_id`` is what the alias pointed at before (None for its first move);
    ``generation`` counts the alias's moves from 1. For ``previous``, the fields describe the
    production move that set it (``follows == "production"``). ``recovered`` is True only in
    :func:`read_audit` results rebuilt from an alias document whose audit record a crash kept
    from being written.
    """

    alias: str
    version_id: str
    generation: int
    from_version_id: str | None
    moved_at: str
    actor: str
    reason: str
    metrics: Mapping[str, Any]
    report: str | None
    audit_key: str
    follows: str | None = None
    recovered: bool = False

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["metrics"] = dict(self.metrics)
        del doc["recovered"]  # a property of how it was read, not of the event
        return doc

    def to_json_bytes(self) -> bytes:
        return (json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n").encode()

    @classmethod
    def from_json_bytes(cls, data: bytes, uri: str) -> AliasMove:
        try:
            doc = json.loads(data)
            return cls(
                alias=str(doc["alias"]),
                version_id=str(doc["version_id"]),
                generation=int(doc["generation"]),
                from_version_id=doc.get("from_version_id"),
                moved_at=str(doc["moved_at"]),
                actor=str(doc["actor"]),
                reason=str(doc["reason"]),
                metrics=dict(doc.get("metrics") or {}),
                report=doc.get("report"),
                audit_key=str(doc["audit_key"]),
                follows=doc.get("follows"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(
                f"{uri}: not a valid alias record ({type(exc).__name__}: {exc}); it was not "
                "written by FreshLM's registry, restore it from the audit log"
            ) from None


def alias_key(name: str) -> str:
    return f"{ALIASES_PREFIX}/{_check_name(name)}.json"


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise RegistryError(
            f"{name!r} is not a valid alias name (lowercase letters, digits, '-' and '_', "
            "starting with a letter, at most 63 characters)"
        )
    return name


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string (it goes into the audit log)")
    return value.strip()


def _read(store: Store, key: str) -> tuple[AliasMove | None, str | None]:
    try:
        data, etag = store.read_bytes_with_etag(key)
    except KeyNotFound:
        return None, None
    return AliasMove.from_json_bytes(data, store.uri_for(key)), etag


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def read_alias(store: Store, name: str) -> AliasMove | None:
    """The alias's current state, or None if it was never set.

    ``previous`` is read consistently with ``production``: if a crash kept ``previous.json``
    from following the latest production move, the value that move implies is returned.
    """
    _check_name(name)
    if name != PREVIOUS:
        return _read(store, alias_key(name))[0]
    production, _ = _read(store, alias_key(PRODUCTION))
    previous, _ = _read(store, alias_key(PREVIOUS))
    if production is not None and (previous is None or previous.generation < production.generation):
        implied = _previous_from(production)
        if implied is not None:
            return implied
    return previous


def list_aliases(store: Store) -> dict[str, AliasMove]:
    """Every alias that is set, by name."""
    names = [
        key[len(ALIASES_PREFIX) + 1 : -len(".json")]
        for key in store.list(ALIASES_PREFIX + "/")
        if key.endswith(".json")
    ]
    aliases = {}
    for name in names:
        if _NAME_RE.match(name):
            state = read_alias(store, name)
            if state is not None:
                aliases[name] = state
    if PRODUCTION in aliases and PREVIOUS not in aliases:
        implied = read_alias(store, PREVIOUS)
        if implied is not None:
            aliases[PREVIOUS] = implied
    return dict(sorted(aliases.items()))


def move_alias(
    store: Store,
    name: str,
    version_id: str,
    *,
    actor: str,
    reason: str,
    metrics: Mapping[str, Any] | None = None,
    expected_from: str | None = None,
    report: str | None = None,
) -> AliasMove:
    """Point alias ``name`` at ``version_id`` atomically and record who, when, why, metrics.

    ``actor`` is who or which run moved it (e.g. ``"dag:freshlm_evaluate/run:…"`` or a user
    name), ``reason`` why, ``metrics`` the figures that justified it, ``report`` the evaluation
    report's id or URI. ``expected_from`` makes the move conditional on the version the alias
    points at now (:data:`ABSENT`: on its not existing): a promotion passes the production
    version it evaluated against, so it cannot replace a model it never compared with.
    Without it the move is still a compare-and-swap against the state just read.

    Moving ``production`` moves ``previous`` to the version it replaces. Returns the move;
    moving an alias to where it already points (a rerun of a move that succeeded) changes
    nothing and returns the existing state.

    Raises :class:`~freshlm.registry.errors.VersionNotFound` if the version is not published,
    :class:`PromotionConflict` if the alias is not at ``expected_from`` or another writer moved
    it first (nothing was written then), :class:`RegistryError` for an invalid name (including
    ``previous``, which only follows production; see :func:`rollback`).
    """
    _check_name(name)
    if name == PREVIOUS:
        raise RegistryError(
            "'previous' follows 'production' and moves with it; to go back to the previous "
            "version use rollback(), or move 'production' to that version"
        )
    actor = _check_text(actor, "actor")
    reason = _check_text(reason, "reason")
    metrics = check_metrics(metrics)
    if report is not None:
        report = _check_text(report, "report")
    get_version(store, version_id)  # step 1: only a published version can be pointed at

    key = alias_key(name)
    current, etag = _read(store, key)
    if current is not None:
        _finish_recording(store, current)  # a crashed earlier move is completed first
    current_id = current.version_id if current is not None else None
    if expected_from is not None:
        wanted = None if expected_from == ABSENT else expected_from
        if current is not None and current_id == version_id and current.from_version_id == wanted:
            log.info("%s already moved from %s to %s; nothing to do", name, wanted, version_id)
            return current
        if current_id != wanted:
            raise PromotionConflict(
                name,
                wanted,
                current_id,
                f"{name} points at {current_id or 'nothing'}, not "
                f"{wanted or 'nothing'} as expected: another promotion moved it first. "
                f"Nothing was changed; re-evaluate {version_id} against {current_id} "
                "before promoting again",
            )
    if current is not None and current_id == version_id:
        log.info("%s already points at %s; nothing to do", name, version_id)
        return current

    now = _now()
    generation = current.generation + 1 if current is not None else 1
    move = AliasMove(
        alias=name,
        version_id=version_id,
        generation=generation,
        from_version_id=current_id,
        moved_at=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        actor=actor,
        reason=reason,
        metrics=metrics,
        report=report,
        audit_key=(
            f"{AUDIT_PREFIX}/{now.strftime('%Y%m%dT%H%M%S%fZ')}-{name}-g{generation:06d}-"
            f"{version_id}.json"
        ),
    )
    try:  # step 2: the commit point
        if etag is None:
            store.write_bytes(key, move.to_json_bytes(), if_none_match=True)
        else:
            store.write_bytes(key, move.to_json_bytes(), if_match=etag)
    except PreconditionFailed:
        winner, _ = _read(store, key)
        winner_id = winner.version_id if winner is not None else None
        raise PromotionConflict(
            name,
            current_id,
            winner_id,
            f"{name} was moved by {winner.actor if winner else 'another writer'} to "
            f"{winner_id} while this move (to {version_id}) was being made; nothing was "
            "changed by this call. Re-read the alias and decide again",
        ) from None
    log.info(
        "moved %s: %s -> %s (generation %d) by %s: %s",
        name,
        current_id,
        version_id,
        generation,
        actor,
        reason,
    )
    try:  # steps 3 and 4
        _finish_recording(store, move)
    except StoreError as exc:
        raise RegistryError(
            f"{name} now points at {version_id} (the move is committed), but recording it "
            f"failed: {exc}. Rerun the same move to finish recording it"
        ) from exc
    return move


def rollback(
    store: Store,
    *,
    actor: str,
    reason: str,
    metrics: Mapping[str, Any] | None = None,
    report: str | None = None,
) -> AliasMove:
    """Move ``production`` back to ``previous`` (which then holds the version rolled back
    from). Conditional on production not moving meanwhile; :class:`RegistryError` if there is
    nothing to roll back to."""
    production = read_alias(store, PRODUCTION)
    previous = read_alias(store, PREVIOUS)
    if production is None or previous is None:
        raise RegistryError(
            "nothing to roll back to: production has never been replaced "
            f"(production: {production.version_id if production else 'unset'})"
        )
    return move_alias(
        store,
        PRODUCTION,
        previous.version_id,
        actor=actor,
        reason=reason,
        metrics=metrics,
        expected_from=production.version_id,
        report=report,
    )


def read_audit(store: Store, alias: str | None = None) -> list[AliasMove]:
    """Every alias move, oldest first (by time; one alias's moves by generation), optionally
    for one alias. Includes a move whose record a crash kept from being written (rebuilt
    from the alias document, ``recovered=True``), so the log always explains the current
    state. ``previous`` has no moves of its own: see ``production``'s."""
    if alias is not None:
        _check_name(alias)
    moves = []
    stored = set()
    for key in store.list(AUDIT_PREFIX + "/"):
        if key.endswith(".json"):
            stored.add(key)
            moves.append(AliasMove.from_json_bytes(store.read_bytes(key), store.uri_for(key)))
    for key in store.list(ALIASES_PREFIX + "/"):
        if not key.endswith(".json") or key == alias_key(PREVIOUS):
            continue
        current, _ = _read(store, key)
        if current is not None and current.audit_key not in stored:
            moves.append(dataclasses.replace(current, recovered=True))
    if alias is not None:
        moves = [m for m in moves if m.alias == alias]
    return sorted(moves, key=lambda m: (m.moved_at, m.alias, m.generation))


# --- recording a committed move ---------------------------------------------------------------


def _finish_recording(store: Store, move: AliasMove) -> None:
    """Write the move's audit record and, for production, ``previous``; both idempotent."""
    if not store.exists(move.audit_key):
        # PreconditionFailed: a concurrent repair wrote the same record first.
        with contextlib.suppress(PreconditionFailed):
            store.write_bytes(move.audit_key, move.to_json_bytes(), if_none_match=True)
    if move.alias == PRODUCTION:
        _sync_previous(store, move)


def _previous_from(production: AliasMove) -> AliasMove | None:
    if production.from_version_id is None:
        return None
    return dataclasses.replace(
        production,
        alias=PREVIOUS,
        version_id=production.from_version_id,
        from_version_id=None,
        follows=PRODUCTION,
    )


def _sync_previous(store: Store, production: AliasMove) -> None:
    """Set ``previous.json`` from a production move unless it already reflects that move or a
    newer one: the generation check keeps a slow writer from moving ``previous`` backwards."""
    desired = _previous_from(production)
    if desired is None:
        return
    key = alias_key(PREVIOUS)
    for _ in range(_SYNC_ATTEMPTS):
        current, etag = _read(store, key)
        if current is not None and current.generation >= desired.generation:
            return
        try:
            if etag is None:
                store.write_bytes(key, desired.to_json_bytes(), if_none_match=True)
            else:
                store.write_bytes(key, desired.to_json_bytes(), if_match=etag)
            return
        except PreconditionFailed:
            continue  # someone else updated it; re-read and compare generations again
    raise RegistryError(
        f"{store.uri_for(key)}: could not update 'previous' after {_SYNC_ATTEMPTS} attempts "
        "under contention; it is still read correctly (derived from production) and the next "
        "production move will update it"
    )
