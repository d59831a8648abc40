"""Model text → safe HTML, checked with an HTML parser; security headers on every page."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from preflab.server.render import render_markdown


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(html)
    return p.tags


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "<a href='javascript:alert(1)'>x</a>",
    "![pixel](https://evil.example/p.png)",
    "<iframe src=//evil.example></iframe>",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
])
def test_hostile_markdown_has_no_active_tags(text: str) -> None:
    tags = _parse(str(render_markdown(text)))
    assert {t for t, _ in tags} <= {"p", "a", "code", "pre"}
    for _, attrs in tags:
        assert not any(k.startswith("on") for k in attrs)
        href = attrs.get("href")
        assert href is None or href.startswith(("http://", "https://", "mailto:"))


def test_markdown_keeps_code_blocks_and_safe_links() -> None:
    html = str(render_markdown("See [docs](https://example.org).\n\n```python\nprint('<b>')\n```"))
    tags = _parse(html)
    assert ("a", {"href": "https://example.org", "rel": "noopener noreferrer nofollow"}) in tags
    assert [t for t, _ in tags if t in ("pre", "code")] == ["pre", "code"]
    assert "print(&#x27;&lt;b&gt;&#x27;)" in html or "print('&lt;b&gt;')" in html


def test_pages_carry_a_strict_csp(client: TestClient) -> None:
    r = client.get("/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_unknown_page_renders_error_html(client: TestClient) -> None:
    r = client.get("/no/such/page")
    assert r.status_code == 404
    tags = _parse(r.text)
    alert = [a for t, a in tags if t == "p" and a.get("role") == "alert"]
    assert alert and alert[0]["data-code"] == "not_found"
