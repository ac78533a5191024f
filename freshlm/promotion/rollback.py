"""Rollback: move ``production`` back to an earlier version, record why, and tell Slack.

:func:`rollback_production` is one compare-and-swap of the ``production`` alias through the
registry (:func:`freshlm.registry.move_alias`, expecting the production it validated against,
so of two concurrent rollbacks or a rollback racing a promotion exactly one wins; the other
gets :class:`~freshlm.registry.PromotionConflict` and changes nothing). The audit record
carries the reason (prefixed ``rollback:``), who and which run; ``previous`` then holds the
version rolled back from, so a second rollback undoes the first.

Refused, with a :class:`RollbackRefused` that says what to do instead:

* a version that is not in the registry (:class:`~freshlm.registry.VersionNotFound`, listing
  the versions there are, production's history first);
* the version that is production already (nothing to roll back);
* a version the promotion gate rejected (its latest verdict, see
  :func:`freshlm.promotion.decision.is_rejected`), unless ``allow_rejected=True``: rolling back
  to a model the gate found worse than its champion reintroduces a known regression, so it
  takes an explicit override, which the audit reason and the Slack notice both state.

A version that never served production (e.g. a candidate never promoted) is allowed but
flagged in the result and in the Slack notice: it reaches production without having passed
the gate.
"""

from __future__ import annotations

import logging
from typing import Any

from freshlm.alerts.sender import send_slack
from freshlm.promotion.decision import REJECTED, actor_label, is_rejected, latest_verdict
from freshlm.promotion.messages import rollback_notice
from freshlm.registry import (
    PREVIOUS,
    PRODUCTION,
    RegistryError,
    VersionNotFound,
    get_version,
    list_versions,
    move_alias,
    read_alias,
    read_audit,
)
from freshlm.store import Store

log = logging.getLogger(__name__)

MAX_VERSIONS_LISTED = 20


class RollbackRefused(RegistryError):
    """The rollback was not done: production is unset, already at that version, or the version
    was rejected by the gate (see ``allow_rejected``). Nothing was changed."""


def available_versions(store: Store) -> list[str]:
    """The registry's versions for messages: those that served production, most recent first
    (annotated ``production`` / ``previous``), then the others; rejected ones are marked."""
    production = read_alias(store, PRODUCTION)
    previous = read_alias(store, PREVIOUS)
    served: list[str] = []
    for move in reversed(read_audit(store, PRODUCTION)):
        if move.version_id not in served:
            served.append(move.version_id)
    published = sorted(v.version_id for v in list_versions(store))
    ordered = [v for v in served if v in published] + [v for v in published if v not in served]
    lines = []
    for vid in ordered:
        tags = []
        if production is not None and vid == production.version_id:
            tags.append("production")
        elif previous is not None and vid == previous.version_id:
            tags.append("previous")
        elif vid in served:
            tags.append("served before")
        if is_rejected(store, vid):
            tags.append("rejected")
        lines.append(f"{vid} ({', '.join(tags)})" if tags else vid)
    return lines


def _versions_text(store: Store) -> str:
    lines = available_versions(store)
    if not lines:
        return "the registry has no model versions"
    shown = lines[:MAX_VERSIONS_LISTED]
    more = len(lines) - len(shown)
    return "available versions: " + "; ".join(shown) + (f"; … and {more} more" if more else "")


def rollback_production(
    store: Store,
    to_version: str | None = None,
    *,
    reason: str,
    actor: str,
    run_id: str | None = None,
    allow_rejected: bool = False,
    notify: bool = True,
    slack_conn_id: str | None = None,
    log_url: str | None = None,
) -> dict[str, Any]:
    """Move ``production`` to ``to_version`` (default: ``previous``) and record why.

    ``reason`` (required) and ``actor`` / ``run_id`` go to the audit log. Returns
    ``{"from_version", "to_version", "reason", "actor", "run_id", "served_before",
    "was_rejected", "rejection_key", "alias_move", "audit_key", "slack_sent"}``.

    Raises :class:`~freshlm.registry.VersionNotFound` (listing the versions there are),
    :class:`RollbackRefused` (see the module doc), ``ValueError`` for an empty reason or actor,
    and :class:`~freshlm.registry.PromotionConflict` if production moved while this ran.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("a rollback needs a reason (it goes to the audit log and to Slack)")
    reason = reason.strip()
    who = actor_label(actor, run_id)
    production = read_alias(store, PRODUCTION)
    if production is None:
        raise RollbackRefused(
            f"production is not set, so there is nothing to roll back; {_versions_text(store)}"
        )
    if to_version is None:
        previous = read_alias(store, PREVIOUS)
        if previous is None:
            raise RollbackRefused(
                f"production ({production.version_id}) has no previous version to roll back "
                f"to; name one: {_versions_text(store)}"
            )
        to_version = previous.version_id
    try:
        get_version(store, to_version)
    except RegistryError as exc:
        raise VersionNotFound(
            f"cannot roll back production to {to_version!r}: no such model version in the "
            f"registry ({exc}); {_versions_text(store)}"
        ) from None
    if to_version == production.version_id:
        raise RollbackRefused(
            f"{to_version} is production already (moved there at {production.moved_at} by "
            f"{production.actor}: {production.reason}); nothing to roll back. Choose another "
            f"version: {_versions_text(store)}"
        )
    verdict = latest_verdict(store, to_version)
    was_rejected = verdict is not None and verdict["outcome"] == REJECTED
    if was_rejected and not allow_rejected:
        reasons = "; ".join(verdict.get("reasons") or []) or "see the record"
        raise RollbackRefused(
            f"{to_version} was rejected by the promotion gate at {verdict.get('decided_at')} "
            f"({reasons}; record {store.uri_for(verdict['key'])}). Rolling back to it would "
            "bring back a model the gate found worse than its champion; pass "
            "allow_rejected=True to do it anyway (the override is recorded)"
        )
    served_before = any(m.version_id == to_version for m in read_audit(store, PRODUCTION))
    audit_reason = f"rollback: {reason}"
    if was_rejected:
        audit_reason += " (allowed although the promotion gate rejected this version)"
    move = move_alias(
        store,
        PRODUCTION,
        to_version,
        actor=who,
        reason=audit_reason,
        metrics={"rollback": True, "allow_rejected": bool(allow_rejected and was_rejected)},
        expected_from=production.version_id,
    )
    result: dict[str, Any] = {
        "from_version": production.version_id,
        "to_version": to_version,
        "reason": reason,
        "actor": who,
        "run_id": run_id,
        "served_before": served_before,
        "was_rejected": was_rejected,
        "rejection_key": verdict["key"] if was_rejected else None,
        "alias_move": move.to_dict(),
        "audit_key": move.audit_key,
        "slack_sent": None,
    }
    log.warning(
        "production rolled back from %s to %s by %s: %s%s",
        production.version_id,
        to_version,
        who,
        reason,
        "" if served_before else " (this version never served production before)",
    )
    if notify:
        result["slack_sent"] = send_slack(rollback_notice(result, log_url=log_url), slack_conn_id)
    return result
