"""Headless Chromium on the live pages, keyboard only: a two-turn chat continued from the chosen
answer, an edit of the chosen answer, an arena vote with the names shown only afterwards, a
break mid-stream then retry, and a reload mid-turn (the stream goes on, nothing is paid twice).

The models are the project's real loopback OpenAI-compatible server (tests/generate/fakeserver)
streaming word by word; the app is a real uvicorn process on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from preflab.store.tables import (
    JudgmentRow,
    LiveCandidateRow,
    LiveConversationRow,
    LiveTurnRow,
    ResponseRow,
)

from .live_helpers import (
    MODELS,
    card_texts,
    live_project,
    model_server,
    prompt_of,
    response_of,
    rows_of,
    start_chat,
    wait_ready,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fake_models() -> Iterator[Any]:
    """A loopback model server streaming 40 words per second; replies no script rule matches
    are 12 words that differ from call to call."""
    yield from model_server(40.0, stream_tokens=12)


@pytest.fixture
def fake(fake_models: Any) -> Any:
    fake_models.reset()
    return fake_models


def test_two_turn_chat_continues_from_the_chosen_answer(page, seeded, fake) -> None:  # type: ignore[no-untyped-def]
    fake.script([{"pattern": "^And", "reply": "Second answer, seed {seed}."},
                 {"pattern": ".", "reply": "**First** answer {seed} with a list:\n\n- x\n- y"}])
    pid = live_project(seeded, fake)
    cid = start_chat(page, pid, "Hello models")
    wait_ready(page, 0)
    assert page.locator("#responses .response").count() == 2
    # markdown, rendered: bold and a two-item list in each answer
    assert page.locator("#responses .response-text strong").count() == 2
    assert page.locator("#responses .response-text ul > li").count() == 4
    left_rid = page.get_attribute("#responses .response[data-slot='0']", "data-rid")
    left_text = response_of(seeded, left_rid).content
    assert left_text in {f"**First** answer {n} with a list:\n\n- x\n- y" for n in (1, 2)}
    page.keyboard.press("2")                      # left better
    page.keyboard.press("m")
    page.keyboard.type("And then?")
    page.keyboard.press("Control+Enter")
    wait_ready(page, 1)
    # the history shows the continued answer, the new turn its own candidates
    seed = left_text.split()[2]
    assert f"First answer {seed} with a list" in page.inner_text("#history .msg.continued")
    turn0 = rows_of(seeded, LiveTurnRow, conversation_id=cid, turn=0)[0]
    turn1 = rows_of(seeded, LiveTurnRow, conversation_id=cid, turn=1)[0]
    assert turn0.continued_response_id == left_rid
    assert prompt_of(seeded, turn1.prompt_id) == [
        {"role": "user", "content": "Hello models"},
        {"role": "assistant", "content": left_text},
        {"role": "user", "content": "And then?"},
    ]
    first = rows_of(seeded, JudgmentRow, kind="pairwise")
    assert len(first) == 1
    assert first[0].value["preferred"] == left_rid and first[0].prompt_id == turn0.prompt_id
    right_rid = page.get_attribute("#responses .response[data-slot='1']", "data-rid")
    page.keyboard.press("4")                      # right better
    page.keyboard.press("d")                      # the judgment, then done
    page.wait_for_selector("#finished")
    judgments = rows_of(seeded, JudgmentRow, kind="pairwise")
    assert len(judgments) == 2
    second = next(j for j in judgments if j.judgment_id != first[0].judgment_id)
    assert second.value["preferred"] == right_rid and second.prompt_id == turn1.prompt_id
    assert rows_of(seeded, LiveConversationRow, conversation_id=cid)[0].status == "done"
    # a chat never shows the model names to the annotator
    html = page.content()
    assert all(name not in html for name in (*MODELS, *MODELS.values()))


def test_edit_of_the_chosen_answer_continues_with_the_edit(page, seeded, fake) -> None:  # type: ignore[no-untyped-def]
    fake.script([{"pattern": ".", "reply": "Plain answer number {seed}."}])
    pid = live_project(seeded, fake)
    cid = start_chat(page, pid, "Please answer")
    wait_ready(page, 0)
    left_rid = page.get_attribute("#responses .response[data-slot='0']", "data-rid")
    original = response_of(seeded, left_rid).content
    page.keyboard.press("1")                      # left much better
    page.keyboard.press("e")                      # edit the chosen answer
    page.wait_for_selector("#edit-text:focus")
    assert page.input_value("#edit-text") == original
    page.keyboard.press("Control+a")
    page.keyboard.type("My corrected answer.")
    page.keyboard.press("Escape")
    page.keyboard.press("m")
    page.keyboard.type("Thanks, go on")
    page.keyboard.press("Control+Enter")
    wait_ready(page, 1)
    edits = rows_of(seeded, JudgmentRow, kind="edit")
    assert len(edits) == 1
    assert edits[0].value["original_id"] == left_rid
    edited = response_of(seeded, edits[0].value["edited_id"])
    assert edited.content == "My corrected answer." and edited.origin == "edit"
    turn0 = rows_of(seeded, LiveTurnRow, conversation_id=cid, turn=0)[0]
    assert turn0.continued_response_id == edited.response_id
    turn1 = rows_of(seeded, LiveTurnRow, conversation_id=cid, turn=1)[0]
    assert prompt_of(seeded, turn1.prompt_id)[1] == {"role": "assistant",
                                                   "content": "My corrected answer."}
    assert "(your edit)" in page.inner_text("#history")


def test_arena_vote_reveals_the_names_only_afterwards(page, seeded, fake) -> None:  # type: ignore[no-untyped-def]
    fake.script([{"pattern": "more", "reply": "A second anonymous reply, take {seed}."},
                 {"pattern": ".", "reply": "An anonymous reply, take {seed}."}])
    pid = live_project(seeded, fake, modes=("arena",))
    cid = start_chat(page, pid, "Who is better?", mode="arena")
    page.wait_for_selector("#vote-a:not([disabled])")
    html = page.content()
    for secret in (*MODELS, *MODELS.values()):
        assert secret not in html, secret
    # one more turn before voting: both models answer with their own history
    page.keyboard.press("m")
    page.keyboard.type("Tell me more")
    page.keyboard.press("Control+Enter")
    wait_ready(page, 1)
    assert page.locator(".arena-row").count() == 2
    assert all(m not in page.content() for m in MODELS.values())
    page.keyboard.press("a")                      # A is better
    page.wait_for_selector("#reveal")
    shown = page.inner_text("#reveal")
    conv = rows_of(seeded, LiveConversationRow, conversation_id=cid)[0]
    assert conv.status == "voted"
    a_model, b_model = (MODELS[n] for n in conv.endpoints)
    assert f"Model A: {a_model}" in shown and f"Model B: {b_model}" in shown
    votes = [j for j in rows_of(seeded, JudgmentRow, kind="pairwise") if j.source == "live:arena"]
    assert len(votes) == 1 and "anonymous" in votes[0].flags
    assert votes[0].value["preferred"] == votes[0].response_ids[0]


def test_break_mid_stream_then_retry(page, seeded, fake) -> None:  # type: ignore[no-untyped-def]
    counted = "one two three four five six seven eight nine ten, take {seed}"
    fake.script([{"pattern": ".", "reply": counted}])
    full = [counted.format(seed=n) for n in (1, 2)]
    pid = live_project(seeded, fake)
    cid = start_chat(page, pid, "Count [[fault:break_after:1:3]]")
    page.wait_for_selector("#cand-0-0[data-status='broken']")
    page.wait_for_selector("#cand-0-1[data-status='broken']")
    assert page.is_visible("#retry-0-0")
    assert "press r to retry" in page.inner_text("#status-0-0")
    assert "press r to retry" in page.inner_text("#live-status")
    broken = rows_of(seeded, LiveCandidateRow, conversation_id=cid, status="broken")
    assert len(broken) == 2 and all(c.text is None and c.response_id is None for c in broken)
    url = page.url
    page.keyboard.press("r")                      # retry the first stopped answer
    page.wait_for_load_state()
    assert page.url == url
    page.wait_for_selector("#retry-0-1:not([hidden])")
    page.keyboard.press("r")                      # and the second
    wait_ready(page, 0)
    assert sorted(card_texts(page)) == full
    rows = rows_of(seeded, LiveCandidateRow, conversation_id=cid)
    assert sorted(c.status for c in rows) == ["broken", "broken", "complete", "complete"]
    stored = rows_of(seeded, ResponseRow, origin="live")
    assert sorted(r.content for r in stored) == full


def test_reload_mid_turn_keeps_streaming_and_pays_nothing_twice(page, seeded, fake) -> None:  # type: ignore[no-untyped-def]
    long = " ".join(f"w{i}" for i in range(120))  # three seconds at 40 words per second
    fake.script([{"pattern": ".", "reply": long + " {seed}"}])
    pid = live_project(seeded, fake)
    cid = start_chat(page, pid, "Stream slowly")
    page.wait_for_function(
        "() => document.querySelector('#text-0-0').innerText.trim().length > 0")
    assert page.get_attribute("#cand-0-0", "data-status") == "streaming"
    page.reload()
    page.wait_for_function(
        "() => document.querySelector('#text-0-0').innerText.trim().length > 0"
        " && document.querySelector('#turn-state').dataset.ready === '0'")
    wait_ready(page, 0)
    assert sorted(card_texts(page)) == [f"{long} 1", f"{long} 2"]
    assert fake.total_calls() == 2
    rows = rows_of(seeded, LiveCandidateRow, conversation_id=cid)
    assert sorted(c.status for c in rows) == ["complete", "complete"]
    assert all(c.attempts == 1 for c in rows)


def test_regenerate_keeps_the_old_answers(page, seeded, fake) -> None:  # type: ignore[no-untyped-def]
    # no script: every call streams other words, so the new round's answers are new ones
    pid = live_project(seeded, fake)
    cid = start_chat(page, pid, "Try twice")
    wait_ready(page, 0)
    first = set(page.eval_on_selector_all("#responses .response", "els => els.map(e => e.dataset.rid)"))
    page.keyboard.press("g")
    page.wait_for_selector("#turn-state[data-round='1']")
    wait_ready(page, 0)
    assert page.locator("#regenerated .response").count() == 2
    rows = rows_of(seeded, LiveCandidateRow, conversation_id=cid)
    assert sorted((c.round, c.status) for c in rows) == [
        (0, "regenerated"), (0, "regenerated"), (1, "complete"), (1, "complete")]
    assert {c.response_id for c in rows if c.round == 0} == first  # kept, with their responses
    assert fake.total_calls() == 4
    page.keyboard.press("5")
    page.keyboard.press("d")
    page.wait_for_selector("#finished")
    (judgment,) = rows_of(seeded, JudgmentRow, kind="pairwise")
    assert set(judgment.response_ids).isdisjoint(first)
