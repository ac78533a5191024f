"""Who is calling, and may they: the console's authentication through Airflow's auth manager.

Airflow does not authenticate plugin apps, so every route depends on :func:`reader` or
:func:`trigger_permission`. The caller is identified like Airflow's own API does
(``airflow.api_fastapi.core_api.security.get_user``): an ``Authorization: Bearer`` token wins,
else the UI's ``_token`` cookie; no token or an expired one is 401, an invalid or forged one is
403. Reading pages needs permission to read DAGs; an action needs permission to trigger the DAG
it triggers.

Actions are POST forms. A browser sends the cookie with any request, including one a hostile
page makes it send, so a POST must also carry :func:`form_token` (derived from the caller's own
token, which another site cannot read) and, when the browser names an ``Origin``, come from
this host.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

from fastapi import Depends, Request

from freshlm.console.rendering import PageError

#: The cookie the Airflow UI keeps its JWT in (``COOKIE_NAME_JWT_TOKEN``).
TOKEN_COOKIE = "_token"
#: The form field that carries :func:`form_token`.
FORM_TOKEN_FIELD = "form_token"


class TokenExpired(Exception):
    """The token was valid once and has expired: log in again."""


class TokenInvalid(Exception):
    """The token is not one this Airflow issued (bad signature, revoked, malformed)."""


class Gatekeeper(Protocol):
    """What the console asks the auth manager."""

    async def user_from_token(self, token: str) -> Any:
        """The user the token belongs to; :class:`TokenExpired` or :class:`TokenInvalid`."""

    def user_name(self, user: Any) -> str: ...

    def may_read(self, user: Any) -> bool:
        """Whether the user may read DAGs (what every page shows is about them)."""

    def may_trigger(self, user: Any, dag_id: str) -> bool:
        """Whether the user may create runs of ``dag_id``."""


class AirflowGatekeeper:
    """The API server's own auth manager (``get_auth_manager()``), whichever is configured."""

    def _manager(self) -> Any:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager()

    async def user_from_token(self, token: str) -> Any:
        from jwt import ExpiredSignatureError, InvalidTokenError

        try:
            return await self._manager().get_user_from_token(token)
        except ExpiredSignatureError:  # a subclass of InvalidTokenError: test it first
            raise TokenExpired from None
        except InvalidTokenError:
            raise TokenInvalid from None

    def user_name(self, user: Any) -> str:
        return str(user.get_name())

    def may_read(self, user: Any) -> bool:
        return bool(self._manager().is_authorized_dag(method="GET", user=user))

    def may_trigger(self, user: Any, dag_id: str) -> bool:
        from airflow.api_fastapi.auth.managers.models.resource_details import (
            DagAccessEntity,
            DagDetails,
        )

        return bool(
            self._manager().is_authorized_dag(
                method="POST",
                user=user,
                access_entity=DagAccessEntity.RUN,
                details=DagDetails(id=dag_id),
            )
        )


@dataclasses.dataclass(frozen=True)
class Caller:
    """An authenticated caller: who, and the token to act with on their behalf."""

    user: Any
    name: str
    token: str

    @property
    def form_token(self) -> str:
        return form_token(self.token)


def form_token(token: str) -> str:
    """The anti-CSRF value a form of this caller carries: an HMAC keyed by their own JWT."""
    return hmac.new(token.encode(), b"freshlm-console-form", hashlib.sha256).hexdigest()


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


def gatekeeper_of(request: Request) -> Gatekeeper:
    return request.app.state.gatekeeper


async def authenticate(request: Request) -> Caller:
    """The caller, or a 401/403 page saying why not."""
    token = _presented_token(request)
    if token is None:
        raise PageError(
            401, "Not logged in", "Log in to Airflow first; FreshLM's pages use its login."
        )
    gatekeeper = gatekeeper_of(request)
    try:
        user = await gatekeeper.user_from_token(token)
    except TokenExpired:
        raise PageError(
            401, "Session expired", "Your Airflow login expired; log in again."
        ) from None
    except TokenInvalid:
        raise PageError(
            403, "Invalid token", "The token presented is not valid for Airflow."
        ) from None
    return Caller(user=user, name=gatekeeper.user_name(user), token=token)


async def reader(request: Request) -> Caller:
    """Dependency of every page: an authenticated caller allowed to read DAGs."""
    caller = await authenticate(request)
    if not gatekeeper_of(request).may_read(caller.user):
        raise PageError(
            403, "Not allowed", f"User {caller.name!r} may not read DAGs in this Airflow."
        )
    return caller


#: A page's caller parameter: authenticated and allowed to read DAGs.
Reader = Annotated[Caller, Depends(reader)]


def trigger_permission(dag_id: str) -> Callable[[Request], Awaitable[Caller]]:
    """Dependency of an action that triggers ``dag_id``: an authenticated caller allowed to
    trigger it, whose POST carries their form token and comes from this site."""

    async def dependency(request: Request) -> Caller:
        caller = await reader(request)
        if not gatekeeper_of(request).may_trigger(caller.user, dag_id):
            raise PageError(
                403, "Not allowed", f"User {caller.name!r} may not trigger the DAG {dag_id}."
            )
        if request.method == "POST":
            await _check_same_site(request, caller)
        return caller

    return dependency


async def _check_same_site(request: Request, caller: Caller) -> None:
    # "null" is a sandboxed or privacy-sensitive context (a stored Data Docs page among them):
    # refused like another site.
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise PageError(403, "Cross-site request refused", f"The form was sent from {origin}.")
    sent = str((await request.form()).get(FORM_TOKEN_FIELD) or "")
    if not hmac.compare_digest(sent, caller.form_token):
        raise PageError(
            403,
            "Form expired or forged",
            "The form did not carry this session's form token; reload the page and send again.",
        )


def triggering(dag_id: str) -> Any:
    """The type of an action's caller parameter: allowed to trigger ``dag_id`` (see
    :func:`trigger_permission`)."""
    return Annotated[Caller, Depends(trigger_permission(dag_id))]
