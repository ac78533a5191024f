"""A forget request as the UI sends it, checked: what to forget, why, who asked, when."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

from freshlm.deny_list import Target, TargetError


class ForgetRequestError(ValueError):
    """A Param of the forget request is invalid; the message names it and what it accepts."""


@dataclasses.dataclass(frozen=True)
class ForgetRequest:
    target: Target
    reason: str
    actor: str
    requested_at: str  # ISO 8601 UTC
    request_id: str  # 16 hex: the same run asking the same thing gets the same id

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.to_dict(),
            "reason": self.reason,
            "actor": self.actor,
            "requested_at": self.requested_at,
            "request_id": self.request_id,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ForgetRequest:
        target = Target(str(doc["target"]["kind"]), str(doc["target"]["value"]))
        return cls(
            target=target,
            reason=str(doc["reason"]),
            actor=str(doc["actor"]),
            requested_at=str(doc["requested_at"]),
            request_id=str(doc["request_id"]),
        )


def parse_request(
    params: Mapping[str, Any], *, actor: str, run_id: str, requested_at: str
) -> ForgetRequest:
    """The request from the DAG's Params ``item``, ``item_kind`` and ``reason``."""
    reason = params.get("reason")
    if not isinstance(reason, str) or len(reason.strip()) < 3:
        raise ForgetRequestError(
            "reason: say why the item is forgotten (at least 3 characters, e.g. 'author "
            "asked on 2026-11-04, ticket 123'); it goes to the audit log"
        )
    kind = params.get("item_kind") or "auto"
    try:
        target = Target.parse(params.get("item"), str(kind))
    except TargetError as exc:
        raise ForgetRequestError(str(exc)) from None
    digest = hashlib.sha256(f"{target.key}\n{run_id}".encode()).hexdigest()[:16]
    return ForgetRequest(target, reason.strip(), actor, requested_at, digest)
