"""Browser fixtures: Debian's chromium driven by Playwright against a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# tests/ is not a package but the repository root is on sys.path (pytest's pythonpath = ["."]),
# so the server tests' fixtures import by their dotted name, the one module pytest also uses
from tests.server import conftest as support

seeded = support.seeded
live_server = support.live_server
LiveServer = support.LiveServer
Seeded = support.Seeded
PASSWORDS = support.PASSWORDS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server: LiveServer):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def login(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORDS[username])
    page.press("input[name=password]", "Enter")
    page.wait_for_url("**/")
