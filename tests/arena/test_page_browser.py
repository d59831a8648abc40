"""The leaderboard page renders in real headless Chromium with the network cut off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from preflab.arena import build_leaderboard, render_leaderboard_html

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


@pytest.mark.browser
def test_page_renders_offline_with_visible_plots(tmp_path: Path, simulate_battles) -> None:
    from playwright.sync_api import sync_playwright

    battles, _ = simulate_battles(np.linspace(-1, 1, 6), 3_000, seed=51)
    path = tmp_path / "board.html"
    path.write_text(render_leaderboard_html(build_leaderboard(battles, rounds=20)))
    requested: list[str] = []

    def handle(route) -> None:  # type: ignore[no-untyped-def]
        requested.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", handle)
            page.goto(path.as_uri())
            boxes = {
                section: page.locator(f"#{section} svg").bounding_box()
                for section in ("ratings-plot", "win-rate", "predicted-win", "battle-counts")
            }
            rows = page.locator("#ratings-table tbody tr").count()
            dots = page.locator("#ratings-plot circle").count()
        finally:
            browser.close()
    assert [u for u in requested if not u.startswith("file:")] == []
    for section, box in boxes.items():
        assert box is not None and box["width"] > 100 and box["height"] > 100, section
    assert rows == dots == 6
