"""``/docs`` works offline: Swagger UI's files come from the app (package fastapi-offline), the
page names no outside URL, and Chromium renders the operations with no request leaving
loopback."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest
from tests.server.conftest import LiveServer, Seeded, make_client

# the page does not touch the database: one engine is enough
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_docs_page_loads_its_assets_from_the_app(seeded: Seeded) -> None:
    with make_client(seeded) as c:
        r = c.get("/docs")
        assert r.status_code == 200
        page = lxml.html.fromstring(r.text)
        refs = [el.get("src") for el in page.iter("script") if el.get("src")]
        refs += [el.get("href") for el in page.iter("link") if el.get("href")]
        assert len(refs) >= 3, refs  # the bundle, its stylesheet, the icon
        base = "http://testserver/docs"
        for ref in refs:
            url = urljoin(base, ref)
            assert urlsplit(url).netloc == "testserver", f"{ref} is not same-origin"
            asset = c.get(url)
            assert asset.status_code == 200 and len(asset.content) > 100, ref
        assert "cdn." not in r.text and "https://" not in r.text.replace(
            "https://swagger.io", ""), "an outside URL in /docs"
        assert "/api/v1/openapi.json" in r.text


@SQLITE_ONLY
def test_chromium_renders_swagger_ui_with_no_outside_request(live_server: LiveServer) -> None:
    from playwright.sync_api import sync_playwright
    from tests.pages.conftest import CHROMIUM, CHROMIUM_ARGS

    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda req: outside.append(req.url)
                    if not req.url.startswith(live_server.url) else None)
            page.goto(live_server.url + "/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            operations = page.locator(".opblock").count()
        finally:
            browser.close()
    assert operations >= 30, f"Swagger UI showed {operations} operations"
    assert not outside, f"requests left the app: {outside}"
