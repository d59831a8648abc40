"""The admin page's "Models (live collection)" section in Chromium: add an endpoint by keyboard,
disable it, remove it, and save the live config, with no script (the page's CSP allows none
inline)."""

from __future__ import annotations

from preflab import collect

from .conftest import Seeded, login


def test_admin_adds_disables_and_removes_an_endpoint_by_keyboard(page, seeded: Seeded) -> None:
    refused: list[str] = []  # the CSP's refusals (inline script or style), reported on the console
    page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
    login(page, "admin")
    page.goto(f"/admin/projects/{seeded.project_id}")
    assert page.locator("#no-endpoints").is_visible()
    page.focus("form#endpoint-add input[name=name]")
    page.keyboard.type("qwen-0.5b")
    page.keyboard.press("Tab")
    page.keyboard.type("http://127.0.0.1:8000/v1")
    page.keyboard.press("Tab")
    page.keyboard.type("Qwen/Qwen2.5-0.5B-Instruct")
    page.keyboard.press("Tab")
    page.keyboard.type("main")
    page.keyboard.press("Tab")
    page.keyboard.type('{"temperature": 0.6}')
    page.focus("form#endpoint-add input[name=api_key_env]")
    page.keyboard.type("QWEN_KEY")
    page.keyboard.press("Enter")
    page.wait_for_selector("#endpoints tr[data-endpoint='qwen-0.5b']")
    row = page.locator("#endpoints tr[data-endpoint='qwen-0.5b']")
    assert "QWEN_KEY" == row.locator("td.key code").inner_text()
    assert "not set in the server's environment" == row.locator(".key-missing").inner_text()
    row.get_by_role("button", name="Disable").click()
    page.wait_for_selector("#endpoints tr[data-endpoint='qwen-0.5b'] >> text=disabled")
    with seeded.db.connect() as conn:
        [ep] = collect.list_endpoints(conn, seeded.project_id)
    assert ("Qwen/Qwen2.5-0.5B-Instruct", "main", {"temperature": 0.6}, False) == (
        ep.model, ep.revision, ep.params, ep.enabled)
    row = page.locator("#endpoints tr[data-endpoint='qwen-0.5b']")
    row.locator("summary", has_text="Remove").click()
    row.get_by_role("button", name="Remove qwen-0.5b").click()
    page.wait_for_selector("#no-endpoints")
    with seeded.db.connect() as conn:
        assert [] == collect.list_endpoints(conn, seeded.project_id)
    assert [] == refused


def test_admin_saves_the_live_config(page, seeded: Seeded) -> None:
    login(page, "admin")
    page.goto(f"/admin/projects/{seeded.project_id}#live-config")
    page.check("#live-form input[name=mode_arena]")
    page.fill("#live-form input[name=turn_limit]", "3")
    page.select_option("#live-form select[name=arena_policy]", "fewest_battles")
    page.locator("#live-form button[type=submit]").press("Enter")
    page.wait_for_url("**#live-config")
    assert page.locator("#live-form input[name=mode_arena]").is_checked()
    with seeded.db.connect() as conn:
        cfg = collect.get_live_config(collect.get_project(conn, seeded.project_id))
    assert (["chat", "arena"], 3, "fewest_battles") == (cfg.modes, cfg.turn_limit,
                                                        cfg.arena_policy)
