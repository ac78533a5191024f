"""A real browser for tests: Debian's Chromium driven by Playwright for Python.

Playwright's own browser download is never used: :func:`chromium` launches the Chromium that
``make services`` installs (``chromium`` on PATH, else ``/usr/bin/chromium``) by its executable
path. The browser only talks to the servers a test names (``allowed``): any other request (the
CDN stylesheets and scripts a Great Expectations Data Docs page links) is aborted at once, so a
page renders the same with or without a network, and no test waits on one.

:func:`log_in_to_airflow` logs in through Airflow's own login page (the simple auth manager's
form), which sets the ``_token`` cookie the UI and the FreshLM console read.
:class:`Screenshots` writes full-page PNGs into a test's output folder.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

#: Where Debian's ``chromium`` package puts the browser.
DEBIAN_CHROMIUM = "/usr/bin/chromium"
#: The cookie Airflow's UI keeps its JWT in.
TOKEN_COOKIE = "_token"


class ChromiumUnavailable(RuntimeError):
    """No Chromium to drive, or no Playwright to drive it with."""


def chromium_executable() -> str:
    """The Chromium binary: ``chromium`` on PATH, else Debian's; raises with what to install."""
    found = shutil.which("chromium") or (
        DEBIAN_CHROMIUM if os.access(DEBIAN_CHROMIUM, os.X_OK) else None
    )
    if found is None:
        raise ChromiumUnavailable(
            "Chromium was not found (`chromium` on PATH or /usr/bin/chromium); `make services` "
            "installs Debian's chromium package (apt-get install chromium)"
        )
    return found


@contextmanager
def chromium(
    allowed: Iterable[str], *, width: int = 1280, height: int = 800, timeout_s: float = 30.0
) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies) in headless Chromium, whose requests may only go to
    the origins in ``allowed`` (``http://127.0.0.1:8080``; ``data:`` and ``about:`` URLs too);
    anything else is aborted. Closed on exit.

    ``timeout_s`` bounds each action, navigation and ``expect`` assertion (Playwright's default
    of 5 s for assertions is short for a loaded test machine; a passing one returns at once)."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        raise ChromiumUnavailable(
            "the playwright package is not installed; `make install` installs requirements-dev.txt"
        ) from None
    executable = chromium_executable()
    origins = tuple(origin.rstrip("/") for origin in allowed)

    def local_only(route) -> None:
        url = route.request.url
        if url.startswith(("data:", "about:")) or any(
            url == o or url.startswith(o + "/") for o in origins
        ):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as playwright:
        # Chromium's own sandbox needs user namespaces, which containers running as root (CI,
        # this project's dev machines) do not give; the browser only loads the test's servers.
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.set_default_timeout(timeout_s * 1000)
            expect.set_options(timeout=timeout_s * 1000)
            context.route("**/*", local_only)
            yield context
        finally:
            browser.close()


def log_in_to_airflow(
    page: Page, base_url: str, username: str, password: str, *, timeout_s: float = 30.0
) -> None:
    """Log in on Airflow's login page (``{base_url}/auth/login``) as a user would; returns once
    the ``_token`` cookie is set and the page has left the login URL.

    The login page sets the cookie and then replaces its own location with the UI's start page;
    a ``goto`` issued between the two is aborted by that navigation (``net::ERR_ABORTED``), so
    this waits for the page to leave the login URL and load before it returns."""
    page.goto(f"{base_url.rstrip('/')}/auth/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    deadline = time.monotonic() + timeout_s
    while not any(c["name"] == TOKEN_COOKIE for c in page.context.cookies()):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {TOKEN_COOKIE} cookie {timeout_s:.0f}s after logging in as {username!r}; "
                f"the page is {page.url}: {page.inner_text('body')[:500]}"
            )
        page.wait_for_timeout(100)
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=timeout_s * 1000)
    page.wait_for_load_state(timeout=timeout_s * 1000)


class Screenshots:
    """Full-page screenshots of a test's pages, numbered in the order taken, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def take(self, page: Page, name: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.folder / f"{len(self.taken) + 1:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path
