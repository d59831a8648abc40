"""Headless Chromium: flag spans of a rendered response by keys and buttons, write a critique,
reload mid-task, submit; offsets point into the original markdown, not the rendered HTML."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from preflab.collect import ProjectCreate
from preflab.store.tables import JudgmentRow

from .conftest import login, support

pytestmark = pytest.mark.browser

LEFT = "The **capital** of France is Berlin.\n\nIt has 3 million people 👋 and many cafés."
RIGHT = "Paris is the capital of France."

SELECT_JS = """([rid, quote]) => {
  const el = document.querySelector(`.response[data-rid="${rid}"] .response-text`);
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const nodes = []; let text = ""; let n;
  while ((n = walker.nextNode())) { nodes.push([n, text.length]); text += n.nodeValue; }
  const a = text.indexOf(quote);
  if (a < 0) throw new Error("not rendered: " + quote);
  const at = (pos) => {
    for (let i = nodes.length - 1; i >= 0; i--) if (nodes[i][1] <= pos) return [nodes[i][0], pos - nodes[i][1]];
  };
  const r = document.createRange();
  r.setStart(...at(a)); r.setEnd(...at(a + quote.length));
  const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
  const box = r.getBoundingClientRect();
  return [box.x, box.y, box.width, box.height];
}"""


def _cards(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    pairs = page.eval_on_selector_all(
        "#responses .response",
        "els => els.map(e => [e.dataset.rid, e.querySelector('.response-text').textContent])")
    return {("left" if "Berlin" in text else "right"): rid for rid, text in pairs}


def _listed(page, rid: str) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(
        f'.span-list[data-rid="{rid}"] li',
        "els => els.map(e => e.querySelector('.span-tag').textContent + '|' + "
        "e.querySelector('q').textContent)")


def test_flag_spans_by_keys_and_buttons_keep_them_across_reload(page, seeded) -> None:  # type: ignore[no-untyped-def]
    pid = support.seed_project(
        seeded.db, ProjectCreate(name="Spans", span_flags=True, critique="required"), ["alice"])
    support.add_prompt_items(seeded.db, pid, [("Capital of France?", [LEFT, RIGHT])])
    login(page, "alice")
    page.goto(f"/projects/{pid}/work")
    page.wait_for_selector("#task-form")
    task_url = page.url
    ids = _cards(page)
    left, right = ids["left"], ids["right"]

    # keyboard: a selection across the bold markup, then "1" = the first label
    page.evaluate(SELECT_JS, [left, "capital of France"])
    page.keyboard.press("1")
    assert _listed(page, left) == ["factual error|capital** of France"]
    assert page.evaluate("getSelection().isCollapsed")  # flagging clears the selection

    # mouse: double-click a word, widen it with shift+arrows, press a label button
    x, y, w, h = page.evaluate(SELECT_JS, [left, "Berlin"])
    page.evaluate("getSelection().removeAllRanges()")
    page.mouse.dblclick(x + w / 2, y + h / 2)
    assert page.evaluate("getSelection().toString()").strip() == "Berlin"
    page.keyboard.press("Shift+ArrowRight")
    page.click(f'.response[data-rid="{left}"] .span-label[data-label="unsafe"]')
    listed = _listed(page, left)
    assert len(listed) == 2 and listed[1].startswith("unsafe|Berlin")

    # characters after an emoji: offsets are code points of the original text
    page.evaluate(SELECT_JS, [left, "cafés"])
    page.keyboard.press("3")
    page.evaluate(SELECT_JS, [right, "Paris"])
    page.keyboard.press("1")
    assert _listed(page, right) == ["factual error|Paris"]
    page.click(f'.span-list[data-rid="{right}"] .span-remove')  # each flag is removable
    assert _listed(page, right) == []
    assert page.evaluate(
        "[0, 1, 2].reduce((n, i) => n + (CSS.highlights.get('preflab-span-' + i) || {size: 0})"
        ".size, 0)") == 3

    page.fill("#critique", "Berlin is the capital of Germany, not France.")
    page.keyboard.press("Escape")
    page.reload()                                   # the browser "dies" mid-task
    page.wait_for_selector("#task-form")
    assert page.url == task_url
    assert len(_listed(page, left)) == 3
    assert page.input_value("#critique") == "Berlin is the capital of Germany, not France."
    page.keyboard.press("2")                        # no selection: digits answer the question
    assert page.is_checked("input[name=choice][value='2']")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != task_url)

    with seeded.db.read() as s:
        j = s.scalars(select(JudgmentRow).where(JudgmentRow.project_id == pid)).one()
    assert j.value["critique"] == "Berlin is the capital of Germany, not France."
    spans = j.value["spans"]
    assert [(sp["label"], sp["text"]) for sp in spans] == [
        ("factual error", "capital** of France"),
        ("unsafe", spans[1]["text"]),
        ("irrelevant", "cafés"),
    ]
    assert spans[1]["text"].startswith("Berlin")
    for sp in spans:
        assert sp["response_id"] == left
        assert LEFT[sp["start"]:sp["end"]] == sp["text"]
    assert spans[2]["start"] == LEFT.index("cafés")


def test_required_critique_blocks_submit_and_ranking_text_can_be_selected(page, seeded) -> None:  # type: ignore[no-untyped-def]
    pid = support.seed_project(
        seeded.db, ProjectCreate(name="RankSpans", kind="ranking", span_flags=True,
                                 span_labels=["wrong"], critique="required"), ["alice"])
    support.add_prompt_items(seeded.db, pid, [("Rank?", ["alpha beta", "gamma delta"])])
    login(page, "alice")
    page.goto(f"/projects/{pid}/work")
    page.wait_for_selector("#task-form")
    url = page.url
    rids = page.eval_on_selector_all("#responses .response", "els => els.map(e => e.dataset.rid)")
    # the card still drags by its heading
    cards = page.locator("#responses .response")
    cards.nth(1).locator("h2").drag_to(cards.nth(0), target_position={"x": 5, "y": 5})
    order = page.eval_on_selector_all("#responses .response", "els => els.map(e => e.dataset.rid)")
    assert order == [rids[1], rids[0]]
    page.select_option(f'select[name="rank_{rids[0]}"]', "1")
    page.select_option(f'select[name="rank_{rids[1]}"]', "2")
    # drag-select inside a draggable ranking card selects text instead of moving the card
    x, y, w, h = page.evaluate(SELECT_JS, [rids[0], page.text_content(
        f'.response[data-rid="{rids[0]}"] .response-text').strip()])
    page.evaluate("getSelection().removeAllRanges()")
    page.mouse.move(x + 1, y + h / 2)
    page.mouse.down()
    page.mouse.move(x + w - 1, y + h / 2, steps=8)
    page.mouse.up()
    assert page.evaluate("getSelection().toString()").strip() != ""
    page.keyboard.press("1")
    assert len(_listed(page, rids[0])) == 1
    page.keyboard.press("Enter")                    # the critique is still empty
    assert page.url == url
    assert page.evaluate("document.getElementById('critique').validity.valueMissing")
    page.fill("#critique", "Both are word lists.")
    page.click("#submit")
    page.wait_for_url(lambda u: u != url)
    with seeded.db.read() as s:
        j = s.scalars(select(JudgmentRow).where(JudgmentRow.project_id == pid)).one()
    assert j.value["groups"] == [[rids[0]], [rids[1]]]
    assert j.value["critique"] == "Both are word lists."
    (sp,) = j.value["spans"]
    text = "alpha beta" if "alpha" in sp["text"] else "gamma delta"
    assert sp["label"] == "wrong" and text[sp["start"]:sp["end"]] == sp["text"]
