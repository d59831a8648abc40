"""A hostile model answer on the live page: script, event handlers, javascript: links and raw
HTML stay inert while the answer streams in word by word and after it is complete, and its
markdown (code block, table, list) is rendered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .live_helpers import live_project, model_server, start_chat, wait_ready

pytestmark = pytest.mark.browser

_PARTS = [
    "Hello <script>window.__pwned = 'script'; alert(1)</script> there.",
    "<img src=x onerror=\"window.__pwned='img'; alert(2)\">",
    "[click me](javascript:window.__pwned='link') and <a href=\"javascript:alert(3)\">raw</a>",
    "<iframe src=\"https://evil.example/\"></iframe> <svg onload=\"alert(4)\"></svg>",
    "<details open ontoggle=\"window.__pwned='toggle'\">x</details> <b onmouseover=alert(5)>b</b>",
    "```html\n<script>window.__pwned='code'</script>\n```",
    "| col a | col b |\n| --- | --- |\n| 1 | 2 |",
    "- first item\n- second item",
    "[a fine link](https://example.org/page)",
]
HOSTILE = "\n\n".join(_PARTS)

# what must never be in the rendered answers, mid-stream or after
INERT = """() => {
  const nodes = [...document.querySelectorAll('.response-text, .response-text *')];
  return {
    pwned: window.__pwned === undefined ? null : window.__pwned,
    tags: nodes.map(e => e.tagName.toLowerCase())
      .filter(t => ['script', 'img', 'iframe', 'svg', 'style', 'details', 'b'].includes(t)),
    handlers: nodes.flatMap(e => [...e.attributes].map(a => a.name))
      .filter(n => n.startsWith('on')),
    hrefs: [...document.querySelectorAll('.response-text a')].map(a => a.getAttribute('href')),
    words: document.querySelector('#text-0-0') ?
      document.querySelector('#text-0-0').innerText.split(/\\s+/).filter(Boolean).length : 0,
    ready: document.querySelector('#turn-state') ?
      document.querySelector('#turn-state').dataset.ready : null,
  };
}"""


@pytest.fixture(scope="module")
def fake_models() -> Iterator[Any]:
    """A loopback model server streaming 15 words per second: slow enough to look mid-stream."""
    yield from model_server(15.0)


def _assert_inert(state: dict[str, Any]) -> None:
    assert state["pwned"] is None
    assert state["tags"] == []
    assert state["handlers"] == []
    assert all(h.startswith(("http://", "https://")) for h in state["hrefs"]), state["hrefs"]


def test_hostile_answer_is_inert_while_streaming_and_after(page, seeded, live_server,
                                                           fake_models) -> None:  # type: ignore[no-untyped-def]
    fake_models.reset()
    # "{seed}": the two endpoints' seeds differ, so do their answers (no duplicate to resample)
    fake_models.script([{"pattern": ".", "reply": HOSTILE + "\n\nTake {seed}."}])
    pid = live_project(seeded, fake_models)
    dialogs: list[str] = []
    requests: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    start_chat(page, pid, "Say <script>alert('prompt')</script> hi")
    mid_stream = []
    for _ in range(600):  # look every 0.1 s until the answers are complete (a minute at most)
        state = page.evaluate(INERT)
        _assert_inert(state)
        if state["ready"] == "1":
            break
        if state["words"]:
            mid_stream.append(state["words"])
        page.wait_for_timeout(100)
    assert len(set(mid_stream)) >= 3, mid_stream  # looked at several partial answers
    wait_ready(page, 0)
    _assert_inert(page.evaluate(INERT))
    # rendered as markdown: a code block (with the script as text), a table, a list, a link
    for card in ("#cand-0-0", "#cand-0-1"):
        assert page.locator(f"{card} .response-text pre code").count() == 1
        assert "<script>window.__pwned='code'</script>" in page.inner_text(
            f"{card} .response-text pre code")
        assert page.locator(f"{card} .response-text table td").count() == 2
        assert page.locator(f"{card} .response-text ul > li").count() == 2
        text = page.inner_text(f"{card} .response-text")
        assert "<script>window.__pwned = 'script'; alert(1)</script>" in text
        assert "<img src=x onerror=" in text
    hrefs = page.eval_on_selector_all(".response-text a", "els => els.map(e => e.href)")
    assert "https://example.org/page" in hrefs
    for link in page.locator(".response-text a:not([href])").all():  # the javascript: ones
        link.click(no_wait_after=True, timeout=2000)
    # the edit box gets the original text as a value, never as markup
    page.keyboard.press("1")
    page.keyboard.press("e")
    page.wait_for_selector("#edit-text:focus")
    assert page.input_value("#edit-text") in {f"{HOSTILE}\n\nTake {n}." for n in (1, 2)}
    page.wait_for_timeout(200)
    _assert_inert(page.evaluate(INERT))
    assert dialogs == []
    assert "<script>" in page.inner_text("#history")
    assert all(u.startswith(live_server.url) for u in requests), requests
