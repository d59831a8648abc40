"""Responses carrying script, event handlers, javascript: links and raw HTML show as text and
run or load nothing (markdown-it with HTML off, nh3, and a Content-Security-Policy)."""

from __future__ import annotations

import pytest

from .conftest import login, support

pytestmark = pytest.mark.browser

ATTACKS = [
    "<script>window.__pwned = 'script'; alert(1)</script>",
    "<img src=x onerror=\"window.__pwned='img'\">",
    "[click me](javascript:window.__pwned='link')",
    "<a href=\"javascript:window.__pwned='rawlink'\">raw link</a>",
    "<iframe src=\"https://evil.example/\"></iframe><style>body{display:none}</style>",
    "![tracker](http://evil.example/pixel.png) <svg onload=\"window.__pwned='svg'\"></svg>",
    "```html\n<script>window.__pwned='code'</script>\n```",
    "<details open ontoggle=\"window.__pwned='toggle'\">x</details>",
]


def test_hostile_responses_render_as_inert_text(page, seeded, live_server) -> None:  # type: ignore[no-untyped-def]
    from preflab.collect import ProjectCreate

    pid = support.seed_project(seeded.db, ProjectCreate(name="Hostile", kind="ranking"),
                               ["alice"])
    support.add_prompt_items(seeded.db, pid,
                             [("<script>window.__pwned='prompt'</script> Say hi", ATTACKS)])
    dialogs: list[str] = []
    requests: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    login(page, "alice")
    page.goto(f"/projects/{pid}/work")
    page.wait_for_selector("#task-form")
    page.wait_for_timeout(500)
    for link in page.locator(".response-text a").all():
        link.click(no_wait_after=True, timeout=2000)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert all(u.startswith(live_server.url) for u in requests), requests
    texts = page.locator(".response-text")
    assert texts.count() == len(ATTACKS)
    for tag in ("script", "img", "iframe", "style", "svg", "details"):
        assert page.locator(f".response-text {tag}, .context {tag}").count() == 0, tag
    handlers = page.evaluate("""() => [...document.querySelectorAll('.response-text *, .context *')]
        .flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on'))""")
    assert handlers == []
    hrefs = page.eval_on_selector_all(".response-text a", "els => els.map(e => e.href)")
    assert all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
    shown = page.inner_text("#responses")
    assert "<script>window.__pwned = 'script'; alert(1)</script>" in shown
    assert "<iframe" in shown
    assert "<script>" in page.inner_text(".context")
    assert page.is_visible("body")


HOSTILE = "<script>window.__pwned='account'</script><img src=x onerror=\"window.__pwned='img'\">"


def test_hostile_user_agent_and_token_name_are_inert_on_account_and_audit_pages(  # type: ignore[no-untyped-def]
    browser, live_server
) -> None:
    # the session list shows the client's User-Agent and the token list the name a user typed;
    # the admin's audit log repeats both: all are outside input
    context = browser.new_context(base_url=live_server.url, user_agent=HOSTILE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        login(page, "admin")
        page.goto("/account")
        page.fill("form[action='/account/tokens'] input[name=name]", HOSTILE)
        page.press("form[action='/account/tokens'] input[name=name]", "Enter")
        page.wait_for_selector("#new-token")
        assert HOSTILE in page.inner_text("#tokens")
        assert HOSTILE in page.inner_text("body")  # the session row's user agent, as text
        page.goto("/admin/audit-log")
        assert "token.create" in page.inner_text("#audit")
        for url in ("/account", "/admin/audit-log"):
            page.goto(url)
            page.wait_for_timeout(300)
            assert page.evaluate("window.__pwned") is None, url
            assert page.locator("main script, main img, table script, table img").count() == 0, url
        assert dialogs == []
    finally:
        context.close()
