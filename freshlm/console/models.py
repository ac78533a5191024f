"""Models: the registry's versions, which is production and previous, every alias move, each
version's model card and evaluation reports, and the Roll back action (``freshlm_rollback``).

Routes: :func:`freshlm.alerts.links.models_url`, ``model_url``, ``rollback_url``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request

from freshlm.artifacts import REPORT_JSON, REPORT_KIND, REPORTS
from freshlm.console.auth import Caller, Reader, triggering
from freshlm.console.context import store_of, trigger_of
from freshlm.console.rendering import PageError, render
from freshlm.registry import (
    PREVIOUS,
    PRODUCTION,
    ModelVersion,
    VersionNotFound,
    get_version,
    list_aliases,
    list_versions,
    read_audit,
)
from freshlm.registry.versions import CARD_NAME, VERSION_ID_RE
from freshlm.store import Store

ROLLBACK_DAG = "freshlm_rollback"
#: ``freshlm_rollback``'s Param ``reason``: its length limits.
REASON_MIN, REASON_MAX = 3, 2000

router = APIRouter()
#: The caller of this page's action: allowed to trigger ``freshlm_rollback``.
RollbackCaller = triggering(ROLLBACK_DAG)


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """A published evaluation report of a candidate against a baseline."""

    prefix: str
    baseline: str
    report: dict[str, Any]
    files: tuple[str, ...]

    @property
    def html_key(self) -> str | None:
        return f"{self.prefix}/report.html" if "report.html" in self.files else None

    @property
    def chart_key(self) -> str | None:
        return f"{self.prefix}/metrics.png" if "metrics.png" in self.files else None


def reports_of(store: Store, version_id: str) -> list[EvaluationReport]:
    """Every evaluation report with ``version_id`` as the candidate, newest first."""
    found = []
    for prefix in store.list_published(f"{REPORTS}/{version_id}/"):
        manifest = store.read_manifest(prefix)
        if manifest is None or manifest.kind != REPORT_KIND or "/_attempts/" in prefix:
            continue
        report = store.read_json(manifest.key(REPORT_JSON))
        baseline = str((report.get("baseline") or {}).get("version_id") or "")
        found.append(
            EvaluationReport(prefix, baseline, report, tuple(f.name for f in manifest.files))
        )
    return sorted(found, key=lambda r: str(r.report.get("created_at")), reverse=True)


def version_or_404(store: Store, version_id: str) -> ModelVersion:
    if not VERSION_ID_RE.match(version_id):
        raise PageError(
            404, "No such model version", f"{version_id!r} is not a model version id (32 hex)."
        )
    try:
        return get_version(store, version_id)
    except VersionNotFound:
        raise PageError(
            404, "No such model version", f"No model version {version_id} is in the registry."
        ) from None


def _aliases_by_version(store: Store) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {}
    for name, move in list_aliases(store).items():
        held.setdefault(move.version_id, []).append(name)
    return held


@router.get("/models", name="models")
def models_page(request: Request, caller: Reader):
    store = store_of(request)
    return render(
        request,
        "models.html.j2",
        caller=caller,
        versions=list_versions(store),
        aliases=list_aliases(store),
        held=_aliases_by_version(store),
        audit=list(reversed(read_audit(store))),
    )


def _rollback_form(request: Request, caller: Caller, *, status: int = 200, **values: Any):
    store = store_of(request)
    aliases = list_aliases(store)
    return render(
        request,
        "rollback.html.j2",
        status=status,
        caller=caller,
        versions=list_versions(store),
        production=aliases.get(PRODUCTION),
        previous=aliases.get(PREVIOUS),
        values=values,
    )


@router.get("/models/rollback", name="rollback_form")
def rollback_form(request: Request, caller: RollbackCaller, version: str = ""):
    return _rollback_form(request, caller, version=version)


@router.post("/models/rollback", name="rollback")
def rollback(
    request: Request,
    caller: RollbackCaller,
    version: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    allow_rejected: Annotated[str, Form()] = "",
):
    """Check the request against the registry, then trigger ``freshlm_rollback`` as the
    caller; the DAG checks again (the registry may move meanwhile) and makes the move."""
    store = store_of(request)
    version, reason = version.strip(), reason.strip()
    aliases = list_aliases(store)
    production, previous = aliases.get(PRODUCTION), aliases.get(PREVIOUS)
    if not version:
        if previous is None:
            raise PageError(
                400, "Nothing to roll back to", "There is no previous production version."
            )
        version = previous.version_id
    target = version_or_404(store, version)
    if production is not None and production.version_id == target.version_id:
        raise PageError(400, "Already in production", f"Version {version} is production already.")
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise PageError(
            400,
            "A reason is required",
            f"Say why you roll back ({REASON_MIN} to {REASON_MAX} characters): it goes to the "
            "audit log and to Slack.",
        )
    conf = {"version": target.version_id, "reason": reason, "allow_rejected": bool(allow_rejected)}
    run = trigger_of(request)(
        ROLLBACK_DAG, conf, token=caller.token, note=f"Roll back from the FreshLM console: {reason}"
    )
    return render(
        request,
        "triggered.html.j2",
        caller=caller,
        title=f"Roll back to {target.version_id} triggered",
        dag_id=ROLLBACK_DAG,
        run=run,
        conf=conf,
    )


@router.get("/models/{version_id}", name="model")
def model_page(request: Request, version_id: str, caller: Reader):
    store = store_of(request)
    version = version_or_404(store, version_id)
    card = None
    if CARD_NAME in version.files:
        card = store.read_bytes(version.manifest.key(CARD_NAME)).decode("utf-8", "replace")
    return render(
        request,
        "model.html.j2",
        caller=caller,
        version=version,
        held=_aliases_by_version(store).get(version.version_id, []),
        card=card,
        card_key=f"{version.prefix}/{CARD_NAME}" if card is not None else None,
        reports=reports_of(store, version.version_id),
        moves=[m for m in reversed(read_audit(store)) if version.version_id in _ends(m)],
    )


def _ends(move: Any) -> tuple[str | None, str]:
    return (move.from_version_id, move.version_id)
