"""Browser fixtures: Debian's chromium driven by Playwright against a real uvicorn server."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _server_support():  # type: ignore[no-untyped-def]
    # tests/ is not a package (import-mode=importlib): load the server tests' fixtures by path
    name = "preflab_tests_server_support"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "server" / "conftest.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


support = _server_support()
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
