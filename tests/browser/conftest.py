"""The console in a real browser: Debian's chromium driven by Playwright, against the local
cloud. The Makefile installs chromium when it is missing; Playwright's own browser download
cannot reach this machine's network, so it is pointed at that binary."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.conftest import LocalService, local_service  # noqa: F401  (the module's local cloud)

CHROMIUM = Path(os.environ.get("JOBS_CHROMIUM", "/usr/bin/chromium"))
# Chromium's own calls home are refused by this machine's closed network, many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip
# Sized for a loaded 2-core machine: a function's cold start, the stream's delay, a poll.
EXPECT_MS = 60_000
expect.set_options(timeout=EXPECT_MS)
# Where the screenshots go: a temporary folder, or docs/ with `make console-screenshots`.
SCREENSHOTS = os.environ.get("JOBS_CONSOLE_SCREENSHOTS")


# Per module, not per session: Playwright's sync API keeps an event loop on the main thread
# while it runs, and later tests call asyncio.run() there.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=EXPECT_MS)
        try:
            yield browser
        finally:
            browser.close()


# A 4xx answer the page expects (a refused token, a missing job) is logged by Chromium too.
EXPECTED_REFUSAL = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


def unexpected(text: str, kind: str) -> bool:
    return kind == "error" and not EXPECTED_REFUSAL.match(text)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) that fails the test on any script error, failed load or
    CSP refusal (Chromium reports each as a console error)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(EXPECT_MS)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    tab.on(
        "console", lambda message: problems.append(f"console: {message.text}") if unexpected(message.text, message.type) else None
    )
    try:
        yield tab
    finally:
        context.close()
    assert not problems, problems


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    return Path(SCREENSHOTS) if SCREENSHOTS else tmp_path


def open_console(page: Page, local: LocalService, token: str, route: str = "") -> None:
    """Sign in as a new user would: the token in the link's fragment, then to a page. In a
    tab signed in already this is a switch of identity: it is done once the new principal
    is shown (until then a route would be taken by the session being replaced)."""
    page.goto(f"{local.http_url}/#token={token}")
    expect(page).not_to_have_url(re.compile("token="))  # (no wait_for_function: the CSP forbids eval)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    expect(page.locator("#who .principal")).to_have_text(f"{claims['sub']} ({claims['role']})", timeout=EXPECT_MS)
    if route:
        page.evaluate("route => { location.hash = route }", route)


def wait_live(page: Page) -> None:
    """Until the socket is open and the server has answered every subscribe of the view."""
    page.locator("#live-state [data-state='live']").wait_for(timeout=EXPECT_MS)


def call(local: LocalService, method: str, path: str, token: str, body: Any = None, expect: int | tuple[int, ...] = 200) -> Any:
    reply = local.request(method, path, token=token, body=body)
    wanted = expect if isinstance(expect, tuple) else (expect,)
    assert reply.status in wanted, (method, path, reply.status, reply.body)
    return reply.body
