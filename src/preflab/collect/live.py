"""Live collection (issue 12): annotators chat with models, judge each turn, vote in battles.

A live session is a conversation in the store, so derive, audit, export and the arena read it
with no special case:

- **chat** (``mode="chat"``): each turn samples k candidates (k endpoints of distinct models,
  or one endpoint at k temperatures, as the project's :class:`~preflab.collect.LiveConfig`
  says) in a random slot order that is recorded. Each candidate is an ordinary response
  (origin ``live``, model, revision, params); once every slot is complete the turn gets an
  ordinary item and assignment (never served by the queue, never expired) and the annotator's
  judgment goes through :func:`preflab.collect.submit`, with the conversation so far as its
  prompt. The conversation goes on with the chosen answer, or the annotator's edit of it
  (stored as an ``edit`` judgment), and the next user message, up to the turn limit.
- **arena** (``mode="arena"``): two endpoints of distinct models, drawn by the project's
  pairing policy, answer as A (slot 0) and B (slot 1) for the whole conversation, each side
  with its own history. One vote at the end is one pairwise judgment (2-point, source
  ``live:arena``) on the final answers, with the multi-turn ``preferred_context`` rule of
  :mod:`preflab.formats.arena`; a vote after the names were shown, or whose answers name a
  model, is kept but excluded (``excluded_reason``).

Statuses (see :mod:`preflab.store.tables`): conversation ``open`` → ``done`` | ``voted``; turn
``generating`` → ``ready`` → ``judged``; candidate ``pending`` → ``streaming`` → ``complete``,
or ``failed`` / ``broken`` / ``cancelled`` (retryable), ``duplicate``, ``regenerated``.

Only the annotator who started a conversation acts on it; admins may read any (with the
models shown); anyone else gets "not found". This module is the public face of four more:
:mod:`~preflab.collect.live_generation` (claim, complete, fail: what the server's hub calls),
:mod:`~preflab.collect.live_arena` (battles), :mod:`~preflab.collect.live_views` (views and
access) and :mod:`~preflab.collect.live_state` (the live tables' statements). Functions take a
``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import (
    ITEMS as _I,
    JUDGMENTS as _J,
    LIVE_CANDIDATES as _C,
    LIVE_CONVERSATIONS as _LC,
    LIVE_TURNS as _T,
    RESPONSES as _R,
)
from preflab.collect.live_arena import ArenaVote, add_user_turn, arena_vote, reveal
from preflab.collect.live_config import get_live_config
from preflab.collect.live_generation import (
    MAX_RESAMPLES,
    CompleteResult,
    candidate_messages,
    candidate_request,
    claim_candidates,
    complete_candidate,
    fail_candidate,
)
from preflab.collect.live_state import (
    MAX_MESSAGE_CHARS,
    RETRYABLE,
    CandidatePlan,
    add_candidate,
    add_turn,
    arena_endpoints,
    candidates_of,
    check_message,
    conversation_row,
    current_round,
    insert_ignore,
    plan_arena_side,
    plan_chat,
    prompt_messages,
    skip_live_assignment,
    store_prompt,
    turns_of,
)
from preflab.collect.live_views import (
    TOUCH,
    ConversationView,
    TurnView,
    acting,
    build_view,
    get_conversation,
    last_turns,
    list_conversations,
    need_mode,
    need_open,
)
from preflab.collect.projects import get_project, project_for_user
from preflab.collect.rows import Judgment, LiveTurn, Project, User
from preflab.collect.submissions import JudgmentCreate, build_value, find_judgment_by_key, submit
from preflab.collect.tasks import digest
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.records.models import make_response_id, normalize_text
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = [
    "MAX_EDIT_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_RESAMPLES",
    "ArenaVote",
    "CompleteResult",
    "ConversationView",
    "TurnSubmit",
    "TurnView",
    "add_user_turn",
    "arena_vote",
    "candidate_messages",
    "candidate_request",
    "claim_candidates",
    "complete_candidate",
    "fail_candidate",
    "finish",
    "get_conversation",
    "list_conversations",
    "regenerate",
    "retry_candidate",
    "reveal",
    "start_conversation",
    "submit_turn",
]

MAX_EDIT_CHARS = 200_000
"""Characters of an annotator's edit of an answer at most."""

_POOL_PROMPTS = (
    select(_I.c.prompt_id).distinct()
    .where(_I.c.project_id == bindparam("project_id"),
           or_(_I.c.source.is_(None), ~_I.c.source.like("live:%")))
)
_POOL_COUNT = select(func.count()).select_from(_POOL_PROMPTS.subquery())
_POOL_PICK = _POOL_PROMPTS.order_by(_I.c.prompt_id).offset(bindparam("offset")).limit(1)
_SET_STATUS = (
    update(_LC)
    .where(_LC.c.conversation_id == bindparam("b_cid"), _LC.c.status == "open")
    .values(status=bindparam("b_status"), updated_at=bindparam("b_now"))
)
_JUDGED = (
    update(_T)
    .where(_T.c.conversation_id == bindparam("b_cid"), _T.c.turn == bindparam("b_turn"),
           _T.c.side == 0, _T.c.status == "ready")
    .values(status="judged", judgment_id=bindparam("b_judgment_id"),
            continued_response_id=bindparam("b_continued"))
)
_NEXT_ROUND = (
    update(_T)
    .where(_T.c.conversation_id == bindparam("b_cid"), _T.c.turn == bindparam("b_turn"),
           _T.c.side == 0, _T.c.round == bindparam("b_round"))
    .values(round=_T.c.round + 1, status="generating", item_id=None, assignment_id=None)
)
_SET_CANDIDATE = (
    update(_C)
    .where(_C.c.candidate_id == bindparam("b_id"), _C.c.status == bindparam("b_was"))
    .values(status=bindparam("b_status"), error=bindparam("b_error"))
)


# ------------------------------------------------------------------------------ conversations


def _draw_pool(conn: Connection, project_id: str, rng: random.Random
               ) -> tuple[str, list[dict[str, str]]]:
    n = conn.execute(_POOL_COUNT, {"project_id": project_id}).scalar() or 0
    if not n:
        raise InputError(f"project {project_id!r} has no prompts to draw from; write your own "
                         "message", field="from_pool")
    prompt_id = conn.execute(_POOL_PICK, {"project_id": project_id,
                                          "offset": rng.randrange(n)}).scalar_one()
    return prompt_id, prompt_messages(conn, [prompt_id])[prompt_id]


def start_conversation(
    session: Session | Connection,
    project_id: str,
    user: User,
    *,
    mode: Literal["chat", "arena"] = "chat",
    message: str | None = None,
    from_pool: bool = False,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> ConversationView:
    """Start a live chat or arena battle with the user's message or a prompt of the pool.

    Stores the turn-0 prompt (insert-or-ignore by its content id), the turn row(s) and pending
    candidates: a chat's k slots in a random order (the screen order, recorded); an arena's
    pair (:func:`preflab.arena.pairing.choose_pair` over the project's battles, by its
    policy) as A = slot 0 and B = slot 1, one turn row and one candidate per side.

    Raises:
        NotFoundError: no such project, or the user may not see it.
        InputError: an empty or too long message (field ``message``), a mode the project does
            not allow (``mode``), an empty or disallowed pool (``from_pool``), or fewer enabled
            endpoints than needed (``endpoints``).
    """
    conn = connection_of(session)
    rng = rng if rng is not None else random.Random()
    now = now or utcnow()
    project = project_for_user(conn, project_id, user)
    if project is None:
        raise NotFoundError(f"no project {project_id!r}", field="project_id")
    cfg = get_live_config(project)
    if mode not in ("chat", "arena"):
        raise InputError(f"mode is chat or arena, got {mode!r}", field="mode", value=mode)
    if mode not in cfg.modes:
        allowed = " and ".join(cfg.modes) if cfg.modes else "no live mode"
        raise InputError(f"project {project_id!r} allows {allowed}; {mode} is not on",
                         field="mode", value=mode)
    source_prompt_id = None
    if from_pool:
        if message and message.strip():
            raise InputError("write a message or draw one from the pool, not both",
                             field="message")
        if not cfg.prompt_pool:
            raise InputError(f"project {project_id!r} does not let annotators draw prompts; "
                             "write your own message", field="from_pool")
        source_prompt_id, messages = _draw_pool(conn, project_id, rng)
    else:
        messages = [{"role": "user", "content": check_message(message, "message")}]
    endpoints: list[str] | None = None
    if mode == "arena":
        endpoints = list(arena_endpoints(conn, project_id, cfg, rng))
        plans = []
    else:
        plans = plan_chat(conn, project, cfg, rng)
    conversation_id = "c_" + uuid.uuid4().hex
    conn.execute(insert(_LC), [{
        "conversation_id": conversation_id, "project_id": project_id, "user_id": user.user_id,
        "mode": mode, "status": "open", "endpoints": endpoints,
        "source_prompt_id": source_prompt_id, "judgment_id": None, "excluded_reason": None,
        "revealed_at": None, "created_at": now, "updated_at": now,
    }])
    prompt_id = store_prompt(conn, messages)
    if mode == "arena":
        conv = conversation_row(conn, conversation_id)
        for side in (0, 1):
            add_turn(conn, conversation_id, 0, side, prompt_id, now)
            add_candidate(conn, conversation_id, 0, 0, side, plan_arena_side(conn, conv, side),
                          now)
    else:
        add_turn(conn, conversation_id, 0, 0, prompt_id, now)
        for slot, plan in enumerate(plans):
            add_candidate(conn, conversation_id, 0, 0, slot, plan, now)
    return build_view(conn, conversation_id, user)


def retry_candidate(
    session: Session | Connection, conversation_id: str, slot: int, user: User,
    *, now: datetime | None = None,
) -> ConversationView:
    """Sample a failed, broken or cancelled answer of the current turn again (a new pending row
    for the slot; the old row stays in its history).

    Raises:
        NotFoundError: not the user's conversation, or no such slot.
        ConflictError: the conversation is closed, or the slot's answer is not retryable.
    """
    conn = connection_of(session)
    now = now or utcnow()
    conv = acting(conn, conversation_id, user)
    need_open(conv)
    turns = turns_of(conn, conversation_id, lock=True)
    last = last_turns(turns)
    arena = conv.mode == "arena"
    turn = next((t for t in last if t.side == (slot if arena else 0)), None)
    current = {} if turn is None else current_round(candidates_of(conn, conversation_id),
                                                    turn, conv.mode)
    if turn is None or slot not in current:
        raise NotFoundError(f"the current turn has no slot {slot}", field="slot", value=slot)
    row = current[slot]
    if row.status not in RETRYABLE:
        raise ConflictError(f"answer {slot + 1} is {row.status}; only a failed, broken or "
                            "cancelled answer is retried", field="slot", value=slot)
    add_candidate(conn, conversation_id, row.turn, row.round, slot, CandidatePlan.like(row), now,
                  after=row)
    conn.execute(TOUCH, {"b_cid": conversation_id, "b_now": now})
    return build_view(conn, conversation_id, user)


def regenerate(
    session: Session | Connection, conversation_id: str, turn: int, user: User,
    *, rng: random.Random | None = None, now: datetime | None = None,
) -> ConversationView:
    """Ask for new candidates for a chat turn not judged yet; keep the old ones.

    The round's rows become ``regenerated`` (complete ones keep their response), its
    assignment is skipped (reason ``regenerated``), and the next round's candidates are planned
    afresh (endpoints and slot order drawn again).

    Raises:
        NotFoundError: not the user's conversation, or no such turn.
        InputError: an arena battle (field ``mode``).
        ConflictError: the conversation is closed, or the turn is judged or not the last one.
    """
    conn = connection_of(session)
    now = now or utcnow()
    rng = rng if rng is not None else random.Random()
    conv = acting(conn, conversation_id, user)
    need_mode(conv, "chat", "regenerate")
    need_open(conv)
    turns = turns_of(conn, conversation_id, lock=True)
    row = next((t for t in turns if t.turn == turn), None)
    if row is None:
        raise NotFoundError(f"conversation {conversation_id} has no turn {turn}", field="turn",
                            value=turn)
    if row.status == "judged" or turn != max(t.turn for t in turns):
        raise ConflictError(f"turn {turn + 1} is judged already; only the current turn is "
                            "regenerated", field="turn", value=turn)
    project = get_project(conn, conv.project_id)
    plans = plan_chat(conn, project, get_live_config(project), rng)
    for c in current_round(candidates_of(conn, conversation_id), row, conv.mode).values():
        if c.status != "regenerated":
            conn.execute(_SET_CANDIDATE, {"b_id": c.candidate_id, "b_was": c.status,
                                          "b_status": "regenerated", "b_error": c.error})
    skip_live_assignment(conn, row.assignment_id, "regenerated")
    res = conn.execute(_NEXT_ROUND, {"b_cid": conversation_id, "b_turn": turn,
                                     "b_round": row.round})
    if res.rowcount != 1:
        raise ConflictError(f"turn {turn + 1} changed meanwhile; reload", field="turn")
    for slot, plan in enumerate(plans):
        add_candidate(conn, conversation_id, turn, row.round + 1, slot, plan, now)
    conn.execute(TOUCH, {"b_cid": conversation_id, "b_now": now})
    return build_view(conn, conversation_id, user)


def finish(session: Session | Connection, conversation_id: str, user: User,
           *, now: datetime | None = None) -> ConversationView:
    """End a conversation without judging further (``done``); a turn waiting for its judgment
    gives its assignment back (skipped, reason ``finished``) and answers still to generate are
    cancelled. Finishing a closed conversation changes nothing.

    Raises:
        NotFoundError: not the user's conversation.
    """
    conn = connection_of(session)
    now = now or utcnow()
    conv = acting(conn, conversation_id, user)
    if conv.status != "open":
        return build_view(conn, conversation_id, user)
    turns = turns_of(conn, conversation_id, lock=True)
    candidates = candidates_of(conn, conversation_id)
    for t in last_turns(turns):
        if t.status == "ready":
            skip_live_assignment(conn, t.assignment_id, "finished")
        for c in current_round(candidates, t, conv.mode).values():
            if c.status in ("pending", "streaming"):
                conn.execute(_SET_CANDIDATE, {"b_id": c.candidate_id, "b_was": c.status,
                                              "b_status": "cancelled",
                                              "b_error": "the conversation was finished"})
    conn.execute(_SET_STATUS, {"b_cid": conversation_id, "b_status": "done", "b_now": now})
    return build_view(conn, conversation_id, user)


# ----------------------------------------------------------------------------- chat judgments


class TurnSubmit(BaseModel):
    """The judgment of a chat turn and how the conversation goes on.

    ``continue_with`` names the answer (response id) the conversation goes on with; by default
    the judgment's winner. ``edit`` is the annotator's edit of that answer (stored as an
    ``edit`` judgment; the conversation goes on with it). ``next_message`` is the next user
    turn; without it, or with ``done``, the conversation ends.
    """

    judgment: JudgmentCreate
    continue_with: str | None = None
    edit: str | None = None
    next_message: str | None = None
    done: bool = False


def _winner(project: Project, shown: Sequence[str], value: dict[str, Any]) -> str | None:
    """Return the answer a judgment prefers, or None (tie, both bad, binary, tied best)."""
    if project.kind == "pairwise":
        preferred = value.get("preferred")
        return str(preferred) if preferred else None
    if project.kind == "ranking":
        groups = value.get("groups") or []
        return str(groups[0][0]) if groups and len(groups[0]) == 1 else None
    if project.kind == "rating":
        scores = value.get("scores") or {}
        means = {rid: sum(s.values()) / len(s) for rid, s in scores.items() if s}
        if not means:
            return None
        best = max(means.values())
        top = [rid for rid in shown if means.get(rid) == best]
        return top[0] if len(top) == 1 else None
    return None  # binary: one answer labelled, the annotator names the one to go on with


def _edit_judgments(conn: Connection, project: Project, turn: LiveTurn, judgment: Judgment,
                    originals: Sequence[str], edited_text: str) -> str:
    """Store the edit as a response (origin ``edit``) and an ``edit`` judgment per original;
    return the edit's response id."""
    edited_id = make_response_id(turn.prompt_id, edited_text)
    insert_ignore(conn, _R, {"response_id": edited_id, "prompt_id": turn.prompt_id,
                             "content": edited_text, "model": None, "model_revision": None,
                             "params": {}, "origin": "edit"})
    key = judgment.idempotency_key or judgment.judgment_id
    for i, original in enumerate(originals):
        ikey = f"{key}:edit" if i == 0 else f"{key}:edit:{i}"
        conn.execute(insert(_J), [{
            "judgment_id": "j_" + digest(ikey, judgment.judge_id), "prompt_id": turn.prompt_id,
            "response_ids": [original, edited_id], "kind": "edit", "judge_id": judgment.judge_id,
            "value": {"original_id": original, "edited_id": edited_id},
            "item_id": judgment.item_id, "project_id": project.project_id,
            "guideline_version": judgment.guideline_version, "batch_id": judgment.batch_id,
            "started_at": judgment.started_at, "submitted_at": judgment.submitted_at,
            "comment": None, "flags": [], "idempotency_key": ikey, "source": judgment.source,
            "source_line": None,
        }])
    return edited_id


def submit_turn(
    session: Session | Connection,
    conversation_id: str,
    turn: int,
    user: User,
    sub: TurnSubmit,
    *,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> tuple[ConversationView, bool]:
    """Judge a ready chat turn and go on (or end); return the view and whether it is new.

    One unit of work: :func:`preflab.collect.submit` on the turn's assignment (the project's
    kind and checks; idempotent by ``judgment.submission_id``: a repeat returns the view and
    ``False`` and changes nothing). The conversation goes on with ``continue_with`` or the
    judgment's winner (pairwise preferred, ranking's single best, rating's best mean score);
    a tie, both bad, a tied best or a binary judgment needs ``continue_with`` when a next
    message follows. An ``edit`` that differs from that answer (after normalization) is stored
    as a response (origin ``edit``) under the turn's prompt and an ``edit`` judgment
    (idempotency key ``<submission_id>:edit``; with no answer to start from, one per shown
    answer) and the conversation goes on with it. ``next_message`` (not ``done``) makes the
    next turn: this turn's messages + the assistant's continued text + the user's message,
    with pending candidates; otherwise the conversation is ``done``.

    Raises:
        NotFoundError: not the user's conversation, or no such turn.
        InputError: an arena battle (``mode``), a judgment that does not fit the project, a
            ``continue_with`` not shown or missing where needed, an empty or too long edit or
            message, a next message past the turn limit (``next_message``).
        ConflictError: the turn is not ready (still generating, or judged), the conversation
            is closed, or the submission id was used by another judge.
    """
    conn = connection_of(session)
    now = now or utcnow()
    rng = rng if rng is not None else random.Random()
    conv = acting(conn, conversation_id, user)
    need_mode(conv, "chat", "submit_turn")
    prior = find_judgment_by_key(conn, sub.judgment.submission_id)
    if prior is not None and prior.judge_id == user.user_id:
        return build_view(conn, conversation_id, user), False
    if prior is not None:
        raise ConflictError("this submission id was already used by another judge; send a "
                            "fresh one", field="judgment.submission_id")
    need_open(conv)
    turns = turns_of(conn, conversation_id, lock=True)
    row = next((t for t in turns if t.turn == turn and t.side == 0), None)
    if row is None:
        raise NotFoundError(f"conversation {conversation_id} has no turn {turn}", field="turn",
                            value=turn)
    if row.status != "ready" or row.assignment_id is None:
        what = "is judged already" if row.status == "judged" else "is still generating"
        raise ConflictError(f"turn {turn + 1} {what}", field="turn", value=turn)
    project = get_project(conn, conv.project_id)
    cfg = get_live_config(project)
    current = current_round(candidates_of(conn, conversation_id), row, conv.mode)
    texts = {c.response_id: c.text or "" for c in current.values() if c.response_id}
    shown = [c.response_id for c in current.values() if c.response_id]
    value = build_value(project, shown, sub.judgment.model_copy(deep=True), texts)
    going_on = bool(sub.next_message and sub.next_message.strip()) and not sub.done
    next_message = None
    if going_on:
        next_message = check_message(sub.next_message, "next_message")
        if turn + 1 >= cfg.turn_limit:
            raise InputError(f"this conversation has {cfg.turn_limit} turns at most; submit "
                             "with done instead of a next message", field="next_message")
    if sub.continue_with is not None and sub.continue_with not in texts:
        raise InputError(f"continue_with must name a shown answer ({', '.join(shown)}), got "
                         f"{sub.continue_with!r}", field="continue_with", value=sub.continue_with)
    base = sub.continue_with or _winner(project, shown, value)
    edit = None if sub.edit is None else sub.edit.strip()
    if sub.edit is not None and not edit:
        raise InputError("an edit must not be empty; leave it out to keep the answer",
                         field="edit")
    if edit is not None and len(edit) > MAX_EDIT_CHARS:
        raise InputError(f"an edit has {MAX_EDIT_CHARS} characters at most, got {len(edit)}",
                         field="edit", value=len(edit))
    if base is not None and edit is not None and normalize_text(edit) == normalize_text(
            texts[base]):
        edit = None  # no change: the conversation goes on with the answer itself
    if going_on and base is None and edit is None:
        raise InputError("this judgment prefers no single answer; say which one the "
                         "conversation goes on with (continue_with) or edit one",
                         field="continue_with")
    judgment, created = submit(conn, user.user_id, row.assignment_id, sub.judgment, now=now)
    if not created:
        return build_view(conn, conversation_id, user), False
    continued = base
    continued_text = texts[base] if base is not None else None
    if edit is not None:
        continued = _edit_judgments(conn, project, row, judgment,
                                    [base] if base is not None else shown, edit)
        continued_text = edit
    res = conn.execute(_JUDGED, {"b_cid": conversation_id, "b_turn": turn,
                                 "b_judgment_id": judgment.judgment_id, "b_continued": continued})
    if res.rowcount != 1:
        raise ConflictError(f"turn {turn + 1} changed meanwhile; reload", field="turn")
    if going_on and next_message is not None and continued_text is not None:
        prompt = prompt_messages(conn, [row.prompt_id])[row.prompt_id]
        messages = [*prompt, {"role": "assistant", "content": continued_text},
                    {"role": "user", "content": next_message}]
        prompt_id = store_prompt(conn, messages)
        plans = plan_chat(conn, project, cfg, rng)
        add_turn(conn, conversation_id, turn + 1, 0, prompt_id, now)
        for slot, plan in enumerate(plans):
            add_candidate(conn, conversation_id, turn + 1, 0, slot, plan, now)
        conn.execute(TOUCH, {"b_cid": conversation_id, "b_now": now})
    else:
        conn.execute(_SET_STATUS, {"b_cid": conversation_id, "b_status": "done", "b_now": now})
    return build_view(conn, conversation_id, user), True
