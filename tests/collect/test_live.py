"""Live conversations: start, claim, complete, duplicates, retries, regenerate, turn judgments,
arena votes and who may see what, on SQLite and PostgreSQL.

The server's hub is played here by calling the same functions it calls (claim, complete, fail)
with the texts a stream would have produced; one test streams for real from the loopback
OpenAI-compatible test server.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from preflab import collect
from preflab.collect import (
    ArenaVote,
    EndpointCreate,
    JudgmentCreate,
    LiveConfig,
    ProjectCreate,
    TurnSubmit,
    User,
)
from preflab.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from preflab.store.tables import (
    Assignment,
    Item,
    JudgmentRow,
    LiveCandidateRow,
    ResponseRow,
    utcnow,
)

from .conftest import Seeded, add_prompt_items, seed_project

OWNER = "proc-1"


@dataclass
class Live:
    seeded: Seeded
    project_id: str

    @property
    def db(self) -> Any:
        return self.seeded.db

    def user(self, name: str) -> User:
        with self.db.read() as s:
            u = collect.get_user_by_username(s, name)
            assert u is not None
            return u


def _endpoint(name: str, model: str, revision: str | None = None, **params: Any) -> EndpointCreate:
    return EndpointCreate(name=name, base_url="http://127.0.0.1:9/v1", model=model,
                          revision=revision, params={"max_tokens": 64, **params})


def make_live(seeded: Seeded, name: str = "Live", *, kind: str = "pairwise",
              config: LiveConfig | None = None, endpoints: list[EndpointCreate] | None = None,
              pool: bool = False) -> Live:
    spec = ProjectCreate(name=name, kind=kind, scale=5) if kind == "pairwise" else \
        ProjectCreate(name=name, kind=kind)
    pid = seed_project(seeded.db, spec, ["alice", "bob"])
    with seeded.db.write() as s:
        for ep in endpoints or [_endpoint("e1", "model-one", "r1"), _endpoint("e2", "model-two"),
                                _endpoint("e3", "model-three")]:
            collect.add_endpoint(s, pid, ep)
        collect.set_live_config(s, pid, config or LiveConfig(modes=["chat", "arena"]))
    if pool:
        add_prompt_items(seeded.db, pid, [("Pool question?", ["x", "y"])])
    return Live(seeded, pid)


@pytest.fixture
def live(seeded: Seeded) -> Live:
    return make_live(seeded)


def start(live: Live, user: str = "alice", message: str | None = "Hello there?", **kw: Any):
    with live.db.write() as s:
        return collect.start_conversation(s, live.project_id, live.user(user), message=message,
                                          **kw)


def generate(live: Live, cid: str, texts: dict[int, str] | None = None, *,
             owner: str = OWNER) -> list[collect.CompleteResult]:
    """Claim the conversation's candidates and complete each (text per slot)."""
    with live.db.write() as s:
        claimed = collect.claim_candidates(s, cid, owner)
    out = []
    for c in claimed:
        text = (texts or {}).get(c.slot, f"Answer of slot {c.slot}, turn {c.turn}, round {c.round}")
        with live.db.write() as s:
            out.append(collect.complete_candidate(
                s, c.candidate_id, owner, text=text, finish_reason="stop", ttft_ms=12.5,
                latency_ms=80.0, prompt_tokens=7, completion_tokens=9))
    return out


def view(live: Live, cid: str, user: str = "alice"):
    with live.db.read() as s:
        return collect.get_conversation(s, cid, live.user(user))


def submit_turn(live: Live, cid: str, turn: int, user: str = "alice", **kw: Any):
    judgment = kw.pop("judgment", None) or JudgmentCreate(submission_id=f"sub-{cid}-{turn}",
                                                          choice="1")
    with live.db.write() as s:
        return collect.submit_turn(s, cid, turn, live.user(user),
                                   TurnSubmit(judgment=judgment, **kw))


def count(live: Live, table: Any, *where: Any) -> int:
    with live.db.read() as s:
        return s.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


# ------------------------------------------------------------------------------------- start


def test_start_plans_k_pending_slots_of_distinct_models(live: Live) -> None:
    v = start(live, rng=random.Random(3))
    (t0,) = v.turns
    assert t0.messages == [{"role": "user", "content": "Hello there?"}]
    assert [c.slot for c in t0.candidates] == [0, 1]
    assert {c.status for c in t0.candidates} == {"pending"}
    assert len({c.model for c in t0.candidates}) == 2
    assert v.conversation.status == "open" and v.can_continue


def test_slot_order_is_random_across_conversations(live: Live) -> None:
    orders = set()
    for seed in range(12):
        v = start(live, rng=random.Random(seed))
        orders.add(tuple(c.endpoint for c in v.turns[0].candidates))
    # 3 endpoints, 2 slots: the draws give several ordered pairs, both orders of one pair among
    assert len(orders) > 2
    assert any((b, a) in orders for a, b in orders)


def test_assignment_shown_order_is_the_slot_order(live: Live) -> None:
    v = start(live, rng=random.Random(5))
    results = generate(live, v.conversation.conversation_id)
    ready = [r for r in results if r.turn_ready]
    assert len(ready) == 1 and ready[0].assignment_id
    after = view(live, v.conversation.conversation_id)
    slots = [c.response_id for c in after.turns[0].candidates]
    with live.db.read() as s:
        a = s.get(Assignment, ready[0].assignment_id)
        assert a.shown_order == slots
        assert a.expires_at is None and a.status == "reserved"
        item = s.get(Item, a.item_id)
        assert item.response_ids == slots
        assert (item.target, item.reserved, item.done, item.is_open) == (1, 1, 0, False)
        assert item.source == f"live:{v.conversation.conversation_id}:0:0"
        assert item.prompt_id == after.turns[0].turn.prompt_id


def test_start_from_pool_uses_a_project_prompt(seeded: Seeded) -> None:
    live = make_live(seeded, pool=True)
    v = start(live, message=None, from_pool=True, rng=random.Random(1))
    assert v.turns[0].messages == [{"role": "user", "content": "Pool question?"}]
    assert v.conversation.source_prompt_id == v.turns[0].turn.prompt_id


@pytest.mark.parametrize(("kw", "field"), [
    ({"message": "   "}, "message"),
    ({"message": "x" * 20001}, "message"),
    ({"from_pool": True, "message": None}, "from_pool"),
    ({"mode": "arena"}, "mode"),
])
def test_start_refuses_bad_input(seeded: Seeded, kw: dict[str, Any], field: str) -> None:
    live = make_live(seeded, config=LiveConfig(modes=["chat"]))
    with pytest.raises(InputError) as err:
        start(live, **kw)
    assert err.value.field == field
    assert count(live, LiveCandidateRow) == 0


def test_start_needs_k_distinct_models(seeded: Seeded) -> None:
    live = make_live(seeded, endpoints=[_endpoint("e1", "same"), _endpoint("e2", "same")])
    with pytest.raises(InputError) as err:
        start(live)
    assert err.value.field == "endpoints"
    with pytest.raises(InputError) as err:
        start(live, mode="arena")
    assert err.value.field == "endpoints"


def test_start_refuses_an_outsider(live: Live) -> None:
    with pytest.raises(NotFoundError):
        start(live, user="mallory")


def test_temperature_sampling_uses_one_endpoint_at_k_temperatures(seeded: Seeded) -> None:
    live = make_live(seeded, config=LiveConfig(sampling="temperatures", temperatures=[0.2, 0.9]),
                     endpoints=[_endpoint("only", "solo", "v7")])
    v = start(live, rng=random.Random(0))
    cands = v.turns[0].candidates
    assert {c.endpoint for c in cands} == {"only"}
    assert sorted(c.params["temperature"] for c in cands) == [0.2, 0.9]
    assert all(c.params["max_tokens"] == 64 for c in cands)


# ------------------------------------------------------------------------------------ claims


def test_claim_is_exclusive(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    with live.db.write() as s:
        first = collect.claim_candidates(s, cid, "proc-1")
    with live.db.write() as s:
        second = collect.claim_candidates(s, cid, "proc-2")
    assert len(first) == 2 and second == []
    assert {(c.status, c.owner, c.attempts) for c in first} == {("streaming", "proc-1", 1)}


def test_stale_streaming_is_claimed_again_and_the_old_owner_cannot_complete(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    with live.db.write() as s:
        (a, _b) = collect.claim_candidates(s, cid, "dead")
    later = utcnow() + timedelta(seconds=301)
    with live.db.write() as s:
        again = collect.claim_candidates(s, cid, "alive", now=later)
    assert {c.candidate_id for c in again} >= {a.candidate_id}
    assert {(c.owner, c.attempts) for c in again} == {("alive", 2)}
    with live.db.write() as s, pytest.raises(ConflictError):
        collect.complete_candidate(s, a.candidate_id, "dead", text="late", finish_reason="stop",
                                   ttft_ms=1.0, latency_ms=2.0, prompt_tokens=None,
                                   completion_tokens=None)
    assert count(live, ResponseRow, ResponseRow.origin == "live") == 0


def test_complete_stores_a_live_response_with_model_revision_params(live: Live) -> None:
    v = start(live, rng=random.Random(2))
    generate(live, v.conversation.conversation_id, {0: "First answer.", 1: "Second answer."})
    after = view(live, v.conversation.conversation_id)
    for c in after.turns[0].candidates:
        assert c.status == "complete" and c.finish_reason == "stop"
        assert (c.ttft_ms, c.latency_ms, c.prompt_tokens, c.completion_tokens) == (12.5, 80.0, 7, 9)
        with live.db.read() as s:
            r = s.get(ResponseRow, c.response_id)
            assert (r.origin, r.model, r.model_revision, r.params) == (
                "live", c.model, c.revision, {"max_tokens": 64})
            assert r.prompt_id == after.turns[0].turn.prompt_id
    assert after.turns[0].turn.status == "ready"


def test_candidate_messages_and_request(live: Live) -> None:
    v = start(live, rng=random.Random(2))
    with live.db.write() as s:
        c = collect.claim_candidates(s, v.conversation.conversation_id, OWNER)[0]
        messages = collect.candidate_messages(s, c)
        config, params = collect.candidate_request(s, c)
    assert messages == [{"role": "user", "content": "Hello there?"}]
    assert (config.name, config.model, config.stream) == (c.endpoint, c.model, True)
    assert params == {"max_tokens": 64}


def test_live_assignment_is_never_served_nor_expired(seeded: Seeded) -> None:
    live = make_live(seeded)
    v = start(live)
    (ready,) = [r for r in generate(live, v.conversation.conversation_id) if r.turn_ready]
    with live.db.write() as s:
        project = collect.get_project(s, live.project_id)
        assert collect.next_task(s, project, live.user("alice").user_id) is None
        assert collect.next_task(s, project, live.user("bob").user_id) is None
        assert collect.serve_task(s, live.project_id, live.user("alice")) is None
        assert collect.expire_reservations(s, utcnow() + timedelta(days=30)) == 0
    with live.db.read() as s:
        assert s.get(Assignment, ready.assignment_id).status == "reserved"


# ------------------------------------------------------------------- duplicates and failures


def _temps(seeded: Seeded) -> Live:
    return make_live(seeded, config=LiveConfig(sampling="temperatures", temperatures=[0.1, 1.0]),
                     endpoints=[_endpoint("only", "solo")])


def test_duplicate_text_is_resampled_then_fails_with_a_message(seeded: Seeded) -> None:
    live = _temps(seeded)
    cid = start(live).conversation.conversation_id
    first = generate(live, cid, {0: "Same.", 1: " Same. "})  # normalized: the same text
    assert [r.candidate.status for r in first] == ["complete", "duplicate"]
    assert first[1].resampled and not first[1].candidate.text
    for _ in range(2):
        (again,) = generate(live, cid, {1: "Same."})
    assert again.candidate.status == "failed" and not again.resampled
    assert "same answer as slot 1" in again.candidate.error
    v = view(live, cid)
    assert [c.status for c in v.turns[0].candidates] == ["complete", "failed"]
    assert [c.status for c in v.turns[0].history] == ["duplicate", "duplicate"]
    assert count(live, ResponseRow, ResponseRow.origin == "live") == 1
    with live.db.write() as s:
        collect.retry_candidate(s, cid, 1, live.user("alice"))
    (fresh,) = generate(live, cid, {1: "Different."})
    assert fresh.candidate.status == "complete" and fresh.turn_ready


def test_broken_stream_never_stores_text_and_is_retried(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    with live.db.write() as s:
        a, b = collect.claim_candidates(s, cid, OWNER)
    with live.db.write() as s:
        broken = collect.fail_candidate(s, a.candidate_id, OWNER, status="broken",
                                        error="stream stopped after 12 tokens")
    assert broken.status == "broken" and broken.text is None
    with live.db.write() as s, pytest.raises(ConflictError):
        collect.fail_candidate(s, a.candidate_id, "someone-else", status="failed", error="x")
    with live.db.write() as s, pytest.raises(ConflictError):
        collect.retry_candidate(s, cid, b.slot, live.user("alice"))  # still streaming
    with live.db.write() as s:
        retried = collect.retry_candidate(s, cid, a.slot, live.user("alice"))
    assert retried.turns[0].candidates[a.slot].status == "pending"
    assert [c.candidate_id for c in retried.turns[0].history] == [a.candidate_id]
    assert count(live, ResponseRow, ResponseRow.origin == "live") == 0
    with live.db.write() as s:
        collect.complete_candidate(s, b.candidate_id, OWNER, text="B", finish_reason="stop",
                                   ttft_ms=1, latency_ms=2, prompt_tokens=1, completion_tokens=1)
    (r,) = generate(live, cid, {a.slot: "A again"})
    assert r.turn_ready and r.candidate.attempts == 1


def test_a_cancelled_candidate_is_claimed_again(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    with live.db.write() as s:
        a, _ = collect.claim_candidates(s, cid, OWNER)
        collect.fail_candidate(s, a.candidate_id, OWNER, status="cancelled", error="page closed")
    with live.db.write() as s:
        again = collect.claim_candidates(s, cid, "proc-2")
    assert [(c.candidate_id, c.attempts) for c in again] == [(a.candidate_id, 2)]


def test_regenerate_keeps_old_rows_and_skips_the_old_assignment(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    (ready,) = [r for r in generate(live, cid) if r.turn_ready]
    old = view(live, cid).turns[0].candidates
    with live.db.write() as s:
        v = collect.regenerate(s, cid, 0, live.user("alice"), rng=random.Random(9))
    t0 = v.turns[0]
    assert t0.turn.round == 1 and t0.turn.status == "generating"
    assert [c.status for c in t0.candidates] == ["pending", "pending"]
    assert {(c.candidate_id, c.status, c.response_id) for c in t0.history} == {
        (c.candidate_id, "regenerated", c.response_id) for c in old}
    with live.db.read() as s:
        a = s.get(Assignment, ready.assignment_id)
        assert (a.status, a.reason) == ("skipped", "regenerated")
        assert s.get(Item, a.item_id).reserved == 0
    (ready2,) = [r for r in generate(live, cid) if r.turn_ready]
    assert ready2.assignment_id != ready.assignment_id
    v, created = submit_turn(live, cid, 0, done=True)
    assert created and v.turns[0].turn.status == "judged"


def test_same_answers_again_get_their_own_item_and_assignment(live: Live) -> None:
    """A deterministic model: a regeneration, and a second conversation on the same prompt,
    give the very same answers; each round is still its own item the annotator can judge."""
    same = {0: "The same answer, left.", 1: "The same answer, right."}
    cid = start(live, rng=random.Random(1)).conversation.conversation_id
    (first,) = [r for r in generate(live, cid, same) if r.turn_ready]
    with live.db.write() as s:
        collect.regenerate(s, cid, 0, live.user("alice"), rng=random.Random(1))
    (again,) = [r for r in generate(live, cid, same) if r.turn_ready]
    assert again.assignment_id != first.assignment_id
    v, created = submit_turn(live, cid, 0, done=True)
    assert created and v.turns[0].turn.status == "judged"
    other = start(live, rng=random.Random(1)).conversation.conversation_id
    (third,) = [r for r in generate(live, other, same) if r.turn_ready]
    with live.db.read() as s:
        items = {s.get(Assignment, r.assignment_id).item_id for r in (first, again, third)}
        assert len(items) == 3
        assert all(not s.get(Item, i).is_open for i in items)
    v, created = submit_turn(live, other, 0, done=True)
    assert created and v.turns[0].turn.status == "judged"


# ---------------------------------------------------------------------------- turn judgments


def test_submit_turn_continues_with_the_winner_and_is_idempotent(live: Live) -> None:
    cid = start(live, message="What is 2+2?").conversation.conversation_id
    generate(live, cid, {0: "It is 4.", 1: "Five."})
    sub = JudgmentCreate(submission_id="sub-abc-123", choice="1")  # left (slot 0) much better
    v, created = submit_turn(live, cid, 0, judgment=sub, next_message="And 3+3?")
    assert created
    t0, t1 = v.turns
    assert t0.turn.status == "judged" and t0.continued_text == "It is 4."
    assert t0.turn.continued_response_id == t0.candidates[0].response_id
    assert t1.messages == [{"role": "user", "content": "What is 2+2?"},
                           {"role": "assistant", "content": "It is 4."},
                           {"role": "user", "content": "And 3+3?"}]
    assert [c.status for c in t1.candidates] == ["pending", "pending"]
    with live.db.read() as s:
        j = s.get(JudgmentRow, t0.turn.judgment_id)
        assert (j.kind, j.prompt_id, j.source, j.judge_id) == (
            "pairwise", t0.turn.prompt_id, "app", live.user("alice").user_id)
        assert j.value["preferred"] == t0.candidates[0].response_id
        assert j.response_ids == [c.response_id for c in t0.candidates]
    before = (count(live, JudgmentRow), count(live, LiveCandidateRow))
    again, created = submit_turn(live, cid, 0, judgment=sub, next_message="And 3+3?")
    assert not created and len(again.turns) == 2
    assert (count(live, JudgmentRow), count(live, LiveCandidateRow)) == before


def test_submit_before_ready_is_refused(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    with pytest.raises(ConflictError):
        submit_turn(live, cid, 0, done=True)
    assert count(live, JudgmentRow) == 0


def test_a_tie_needs_continue_with_to_go_on(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    generate(live, cid, {0: "One.", 1: "Two."})
    tie = JudgmentCreate(submission_id="sub-tie-0001", choice="tie")
    with pytest.raises(InputError) as err:
        submit_turn(live, cid, 0, judgment=tie, next_message="More?")
    assert err.value.field == "continue_with"
    assert count(live, JudgmentRow) == 0
    right = view(live, cid).turns[0].candidates[1].response_id
    with pytest.raises(InputError) as err:
        submit_turn(live, cid, 0, judgment=tie, next_message="More?", continue_with="r_nope")
    assert err.value.field == "continue_with"
    v, _ = submit_turn(live, cid, 0, judgment=tie, next_message="More?", continue_with=right)
    assert v.turns[0].continued_text == "Two."
    assert v.turns[1].messages[1] == {"role": "assistant", "content": "Two."}


def test_an_edit_is_an_edit_judgment_and_the_conversation_goes_on_with_it(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    generate(live, cid, {0: "Paris is in Frence.", 1: "Lyon."})
    sub = JudgmentCreate(submission_id="sub-edit-001", choice="2")
    v, _ = submit_turn(live, cid, 0, judgment=sub, edit="Paris is in France.",
                       next_message="Thanks!")
    t0 = v.turns[0]
    original = t0.candidates[0].response_id
    assert t0.continued_text == "Paris is in France."
    assert v.turns[1].messages[1]["content"] == "Paris is in France."
    with live.db.read() as s:
        edit = s.execute(select(JudgmentRow).where(
            JudgmentRow.idempotency_key == "sub-edit-001:edit")).scalar_one()
        assert edit.kind == "edit" and edit.value["original_id"] == original
        assert edit.value["edited_id"] == t0.turn.continued_response_id
        assert (edit.prompt_id, edit.item_id, edit.judge_id) == (
            t0.turn.prompt_id, t0.turn.item_id, live.user("alice").user_id)
        r = s.get(ResponseRow, edit.value["edited_id"])
        assert (r.origin, r.model, r.content) == ("edit", None, "Paris is in France.")


def test_an_unchanged_edit_stores_no_edit_judgment(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    generate(live, cid, {0: "Good.", 1: "Bad."})
    v, _ = submit_turn(live, cid, 0, edit="  Good.\r\n", done=True)
    assert v.conversation.status == "done"
    assert count(live, JudgmentRow, JudgmentRow.kind == "edit") == 0


@pytest.mark.parametrize("kind", ["ranking", "rating", "binary"])
def test_winner_per_kind(seeded: Seeded, kind: str) -> None:
    live = make_live(seeded, kind=kind)
    cid = start(live).conversation.conversation_id
    generate(live, cid, {0: "Zero.", 1: "One."})
    ids = [c.response_id for c in view(live, cid).turns[0].candidates]
    key = f"sub-{kind}-0001"
    if kind == "ranking":
        sub = JudgmentCreate(submission_id=key, ranks={ids[0]: 2, ids[1]: 1})
    elif kind == "rating":
        attrs = collect.HELPSTEER_ATTRIBUTES
        sub = JudgmentCreate(submission_id=key, scores={
            ids[0]: dict.fromkeys(attrs, 1.0), ids[1]: {**dict.fromkeys(attrs, 1.0),
                                                      "helpfulness": 3.0}})
    else:
        sub = JudgmentCreate(submission_id=key, label=True)
        with pytest.raises(InputError) as err:
            submit_turn(live, cid, 0, judgment=sub, next_message="Next?")
        assert err.value.field == "continue_with"
        sub = sub.model_copy()
        v, _ = submit_turn(live, cid, 0, judgment=sub, next_message="Next?",
                           continue_with=ids[1])
        assert v.turns[0].continued_text == "One."
        return
    v, _ = submit_turn(live, cid, 0, judgment=sub, next_message="Next?")
    assert v.turns[0].continued_text == "One."


def test_turn_limit_ends_the_conversation(seeded: Seeded) -> None:
    live = make_live(seeded, config=LiveConfig(turn_limit=2))
    cid = start(live).conversation.conversation_id
    generate(live, cid)
    v, _ = submit_turn(live, cid, 0, next_message="Second?")
    assert v.can_continue is False  # two turns now: the limit
    generate(live, cid)
    with pytest.raises(InputError) as err:
        submit_turn(live, cid, 1, next_message="Third?")
    assert err.value.field == "next_message"
    v, _ = submit_turn(live, cid, 1, done=True)
    assert v.conversation.status == "done" and not v.can_continue
    with pytest.raises(ConflictError), live.db.write() as s:
        collect.regenerate(s, cid, 1, live.user("alice"))


def test_finish_gives_back_a_waiting_assignment(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    (ready,) = [r for r in generate(live, cid) if r.turn_ready]
    with live.db.write() as s:
        v = collect.finish(s, cid, live.user("alice"))
    assert v.conversation.status == "done"
    with live.db.read() as s:
        assert s.get(Assignment, ready.assignment_id).status == "skipped"
    with live.db.write() as s:
        assert collect.claim_candidates(s, cid, OWNER) == []


# ------------------------------------------------------------------------------------- arena


def _arena(live: Live, seed: int = 4) -> str:
    return start(live, mode="arena", message="Tell me a joke.",
                 rng=random.Random(seed)).conversation.conversation_id


def test_arena_fixes_the_pair_and_hides_names(live: Live) -> None:
    cid = _arena(live)
    v = view(live, cid)
    names = v.conversation.endpoints
    assert len(names) == 2 and len(set(names)) == 2
    assert [(c.slot, c.endpoint) for c in v.turns[0].candidates] == list(enumerate(names))
    generate(live, cid, {0: "Joke A.", 1: "Joke B."})
    public = view(live, cid).to_dict()
    assert public["reveal"] is None
    for c in public["turns"][0]["candidates"]:
        assert "model" not in c and "endpoint" not in c and c["response_id"] is None
        assert c["text"] in ("Joke A.", "Joke B.")
    assert public["turns"][0]["status"] == "ready"
    admin = view(live, cid, "admin").to_dict()
    assert admin["reveal"]["0"]["endpoint"] == names[0]
    assert admin["turns"][0]["candidates"][1]["endpoint"] == names[1]


def test_arena_sides_keep_their_own_history(live: Live) -> None:
    cid = _arena(live)
    generate(live, cid, {0: "Joke A.", 1: "Joke B."})
    with live.db.write() as s:
        collect.add_user_turn(s, cid, live.user("alice"), "Another one?")
    with live.db.write() as s:
        c0, c1 = collect.claim_candidates(s, cid, OWNER)
        m0, m1 = collect.candidate_messages(s, c0), collect.candidate_messages(s, c1)
    assert (c0.slot, c1.slot) == (0, 1)
    assert m0[1] == {"role": "assistant", "content": "Joke A."}
    assert m1[1] == {"role": "assistant", "content": "Joke B."}
    assert m0[2] == m1[2] == {"role": "user", "content": "Another one?"}


def _judgment(live: Live, judgment_id: str) -> JudgmentRow:
    with live.db.read() as s:
        row = s.get(JudgmentRow, judgment_id)
        s.expunge(row)
        return row


def _vote(live: Live, cid: str, outcome: str, key: str = "vote-0001"):
    with live.db.write() as s:
        return collect.arena_vote(s, cid, live.user("alice"),
                                  ArenaVote(submission_id=key, outcome=outcome))


def test_single_turn_vote_is_an_anonymous_pairwise_judgment(live: Live) -> None:
    cid = _arena(live)
    generate(live, cid, {0: "Joke A.", 1: "Joke B."})
    before = view(live, cid)
    v, created = _vote(live, cid, "a")
    assert created and v.conversation.status == "voted"
    assert v.conversation.revealed_at is not None and v.conversation.excluded_reason is None
    assert v.reveal is not None and v.reveal[0]["endpoint"] == v.conversation.endpoints[0]
    j = _judgment(live, v.conversation.judgment_id)
    ids = [c.response_id for c in before.turns[0].candidates]
    assert (j.kind, j.source, j.prompt_id, j.response_ids) == (
        "pairwise", "live:arena", before.turns[0].turn.prompt_id, ids)
    assert j.value == {"scale": 2, "preferred": ids[0], "strength": 1, "tie": False,
                       "both_bad": False}
    assert j.flags == ["anonymous"]
    again, created = _vote(live, cid, "a")
    assert not created and again.conversation.judgment_id == j.judgment_id
    with pytest.raises(ConflictError):
        _vote(live, cid, "b", key="vote-0002")
    assert count(live, JudgmentRow) == 1


def test_multi_turn_vote_takes_the_preferred_sides_context(live: Live) -> None:
    cid = _arena(live)
    generate(live, cid, {0: "Joke A.", 1: "Joke B."})
    with live.db.write() as s:
        collect.add_user_turn(s, cid, live.user("alice"), "Another one?")
    generate(live, cid, {0: "Second A.", 1: "Second B."})
    v, _ = _vote(live, cid, "b")
    j = _judgment(live, v.conversation.judgment_id)
    assert j.flags == ["anonymous", "multi_turn", "context_from_preferred"]
    assert j.value["preferred"] == j.response_ids[1]
    with live.db.read() as s:
        from preflab.store.tables import PromptRow

        prompt = s.get(PromptRow, j.prompt_id)
        assert [m["content"] for m in prompt.messages] == [
            "Tell me a joke.", "Joke B.", "Another one?"]
        a, b = (s.get(ResponseRow, rid) for rid in j.response_ids)
        assert (a.content, b.content) == ("Second A.", "Second B.")
        assert a.prompt_id == b.prompt_id == j.prompt_id
        assert (a.model, b.model) == tuple(c.model for c in v.turns[1].candidates)
        assert a.origin == b.origin == "live"


def test_a_vote_after_reveal_is_kept_but_excluded(live: Live) -> None:
    cid = _arena(live)
    generate(live, cid, {0: "Joke A.", 1: "Joke B."})
    with live.db.write() as s:
        shown = collect.reveal(s, cid, live.user("alice"))
    assert shown.reveal is not None and shown.conversation.status == "open"
    v, _ = _vote(live, cid, "tie")
    assert v.conversation.excluded_reason == "names_seen_before_vote"
    j = _judgment(live, v.conversation.judgment_id)
    assert j.flags == ["non_anonymous"] and j.value["tie"] is True


def test_an_answer_naming_its_model_is_self_identified(seeded: Seeded) -> None:
    live = make_live(seeded, endpoints=[_endpoint("c", "claude-3-haiku"),
                                        _endpoint("g", "gpt-4o-mini")])
    cid = _arena(live)
    generate(live, cid, {0: "As an AI made by Anthropic, here is a joke.", 1: "A joke."})
    v, _ = _vote(live, cid, "both_bad")
    assert v.conversation.excluded_reason == "answer_names_model"
    j = _judgment(live, v.conversation.judgment_id)
    assert j.flags == ["anonymous", "self_identified"] and j.value["both_bad"] is True
    with live.db.read() as s:
        battles = collect.project_battles(s, live.project_id)
    assert battles.get_column("excluded_reason").to_list() == ["answer_names_model"]


def test_vote_needs_both_answers(live: Live) -> None:
    cid = _arena(live)
    with live.db.write() as s:
        a = next(c for c in collect.claim_candidates(s, cid, OWNER) if c.slot == 0)
    with live.db.write() as s:
        r = collect.complete_candidate(s, a.candidate_id, OWNER, text="Only A.",
                                       finish_reason="stop", ttft_ms=1, latency_ms=2,
                                       prompt_tokens=1, completion_tokens=1)
    assert not r.turn_ready
    with pytest.raises(ConflictError):
        _vote(live, cid, "a")
    assert count(live, JudgmentRow) == 0


# ------------------------------------------------------------------------------------ access


def test_other_users_cannot_see_or_act(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    generate(live, cid)
    for name in ("bob", "mallory"):
        with pytest.raises(NotFoundError):
            view(live, cid, name)
        with pytest.raises(NotFoundError):
            submit_turn(live, cid, 0, user=name, done=True)
        with live.db.write() as s, pytest.raises(NotFoundError):
            collect.regenerate(s, cid, 0, live.user(name))
    assert view(live, cid, "admin").reveal is not None  # admins read, with the models
    with pytest.raises(PermissionDeniedError):
        submit_turn(live, cid, 0, user="admin", done=True)
    assert count(live, JudgmentRow) == 0
    with live.db.read() as s:
        own = collect.list_conversations(s, live.project_id, live.user("bob"))
        every = collect.list_conversations(s, live.project_id, live.user("admin"))
    assert own == [] and [c.conversation_id for c in every] == [cid]


def test_annotators_never_see_chat_models(live: Live) -> None:
    cid = start(live).conversation.conversation_id
    generate(live, cid)
    public = view(live, cid).to_dict()
    assert public["reveal"] is None
    assert all("model" not in c and c["response_id"] for c in public["turns"][0]["candidates"])


# ------------------------------------------------------------------ real stream → real export


def _stream_all(live: Live, cid: str) -> None:
    """Generate the conversation's candidates for real: stream each from its endpoint."""
    import asyncio
    import contextlib

    from preflab.generate.streaming import StreamDone, stream_chat

    with live.db.write() as s:
        claimed = collect.claim_candidates(s, cid, OWNER)
        requests = [(c, collect.candidate_messages(s, c), *collect.candidate_request(s, c))
                    for c in claimed]

    async def one(messages: Any, config: Any, params: Any) -> Any:
        async with contextlib.aclosing(stream_chat(config, messages, params)) as events:
            return [e async for e in events if isinstance(e, StreamDone)][-1]

    async def run_all() -> list[Any]:
        return await asyncio.gather(*(one(m, cfg, p) for _, m, cfg, p in requests))

    for (c, *_), done in zip(requests, asyncio.run(run_all()), strict=True):
        with live.db.write() as s:
            collect.complete_candidate(
                s, c.candidate_id, OWNER, text=done.text, finish_reason=done.finish_reason,
                ttft_ms=done.ttft_ms, latency_ms=done.latency_ms,
                prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens)


@pytest.fixture(scope="module")
def streaming_server() -> Any:
    from tests.generate import fakeserver

    server = fakeserver.start_fake_server(stream_tokens=12)
    yield server
    fakeserver.stop_fake_server(server)


def test_two_turn_live_chat_exports_one_pair_per_turn_with_its_prefix(
        seeded: Seeded, streaming_server: Any) -> None:
    from preflab.cli.derive_cmd import build_options, load_source, run_derive

    base = streaming_server.base_url
    live = make_live(seeded, name="Live export", endpoints=[
        EndpointCreate(name="a", base_url=base, model="model-a", revision="step-1"),
        EndpointCreate(name="b", base_url=base, model="model-b")])
    cid = start(live, message="Plan a day in Lisbon.").conversation.conversation_id
    _stream_all(live, cid)
    t0 = view(live, cid).turns[0]
    assert [c.status for c in t0.candidates] == ["complete", "complete"]
    assert all(c.completion_tokens for c in t0.candidates)  # usage of the real stream
    # turn 1: the right answer (slot 1) is better, and the annotator edits it before going on
    sub0 = JudgmentCreate(submission_id="export-turn-0", choice="5")
    edited = t0.candidates[1].text + " Start at Belém."
    submit_turn(live, cid, 0, judgment=sub0, edit=edited, next_message="And in the evening?")
    _stream_all(live, cid)
    t1 = view(live, cid).turns[1]
    submit_turn(live, cid, 1, judgment=JudgmentCreate(submission_id="export-turn-1", choice="1"),
                done=True)

    source = load_source(None, seeded.url, None, live.project_id)
    options = build_options("drop", "all", "best_vs_random_lower", 0.0, [], False, "none",
                            "as_recorded", "skip", 0, [], None)
    pairs = run_derive(source, options).pairs.to_pylist()
    by_prompt: dict[int, list[dict[str, Any]]] = {}
    for p in pairs:
        by_prompt.setdefault(len(p["prompt"]), []).append(p)
    first = [{"role": "user", "content": "Plan a day in Lisbon."}]
    assert sorted(by_prompt) == [1, 3]
    # turn 0: the pairwise pair and the edit pair, both with the first message as prompt
    turn0 = {(p["chosen"], p["rejected"]) for p in by_prompt[1]}
    assert turn0 == {(t0.candidates[1].text, t0.candidates[0].text),
                     (edited, t0.candidates[1].text)}
    assert all([dict(m) for m in p["prompt"]] == first for p in by_prompt[1])
    # turn 1: one pair whose prompt is the prefix continued with the edited answer
    (p1,) = by_prompt[3]
    assert [dict(m) for m in p1["prompt"]] == [
        *first, {"role": "assistant", "content": edited},
        {"role": "user", "content": "And in the evening?"}]
    assert (p1["chosen"], p1["rejected"]) == (t1.candidates[0].text, t1.candidates[1].text)
