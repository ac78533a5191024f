"""Pages from the console's Jinja2 templates, and the error page every refusal becomes.

Templates autoescape: whatever comes from the store (reasons, observed values, model cards)
is shown as text, never as markup. Links between pages are built with the builders of
:mod:`freshlm.alerts.links` from the site's root as this request reached it, so they work
behind a proxy path as well as on ``localhost``.
"""

from __future__ import annotations

import functools
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from freshlm.alerts import links
from freshlm.alerts.links import CONSOLE_PREFIX


class PageError(Exception):
    """A request the console refuses: the status, a title and what was wrong, for a person."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("freshlm.console", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = lambda value: str(value)[:12] if value else ""
    env.filters["pct"] = _pct
    return env


def _pct(value: Any) -> str:
    if isinstance(value, int | float):
        return f"{value:.0%}" if abs(value) <= 1 else f"{value:g}"
    return "—" if value is None else str(value)


def site_root(request: Request) -> str:
    """The Airflow site's root as this request reached it (``root_path`` without the
    console's mount prefix): what the link builders take as their base URL."""
    root = request.scope.get("root_path", "").rstrip("/")
    return root[: -len(CONSOLE_PREFIX)] if root.endswith(CONSOLE_PREFIX) else root


class Urls:
    """The link builders bound to this request's site root, for templates."""

    def __init__(self, root: str) -> None:
        self.root = root

    def __getattr__(self, name: str) -> Any:
        builder = getattr(links, f"{name}_url")
        return functools.partial(builder, base_url=self.root)

    def airflow(self, path: str) -> str:
        return f"{self.root}/{path.lstrip('/')}"


def render(
    request: Request, template: str, *, status: int = 200, caller: Any = None, **context: Any
) -> HTMLResponse:
    page = (
        environment()
        .get_template(template)
        .render(urls=Urls(site_root(request)), caller=caller, **context)
    )
    return HTMLResponse(page, status_code=status)


def error_page(request: Request, error: PageError) -> HTMLResponse:
    response = render(request, "error.html.j2", status=error.status, error=error)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response
