"""Headless Chromium for the dashboard's browser tests (Debian's `chromium`, driven by
Playwright's protocol client; Playwright's own browser download is never used).

Where Chromium or Playwright is absent the tests skip, saying why; with
`FLOWLORD_REQUIRE_BROWSER=1` (set by `.ci/run`) they fail instead, so CI cannot skip them.
Screenshots go to `artifacts/screenshots/` (ignored by git) or `$FLOWLORD_ARTIFACTS`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.processes import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
"""As the machine notes advise: no sandbox (tests run as root), and no background traffic,
which this machine's closed network refuses."""
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
VIEWPORT = {"width": 1360, "height": 900}
EXPECTED = "Failed to load resource"
"""The console line of a page answered with a 4xx on purpose (a 404 page, a refused form)."""


def chromium_path() -> str | None:
    configured = os.environ.get("FLOWLORD_CHROMIUM")
    if configured:
        return configured
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def artifacts() -> Path:
    folder = Path(os.environ.get("FLOWLORD_ARTIFACTS", ROOT / "artifacts")) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _unavailable(why: str) -> None:
    if os.environ.get("FLOWLORD_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here, but {why}")
    pytest.skip(f"browser tests skipped: {why} (apt-get install chromium; pip install playwright)")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event
    loop running in this thread while it is open, and later tests call `asyncio.run`."""
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium was found (chromium, chromium-browser, google-chrome)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=list(ARGS))
        yield launched
        launched.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) whose script errors fail the test."""
    context = chromium.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda err: problems.append(f"script error: {err}"))
    opened.on("console", lambda message: _console(message, problems))
    opened.set_default_timeout(10_000)
    yield opened
    context.close()
    assert not problems, problems


def _console(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error" and not message.text.startswith(EXPECTED):
        problems.append(f"console: {message.text}")


def sign_in(page: Page, base: str, token: str, *, name: str = "ada") -> None:
    """Through the sign-in form, as a person would."""
    page.goto(f"{base}/web/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=token]", token)
    page.click("#login button[type=submit]")
    page.wait_for_url(f"{base}/web/")
