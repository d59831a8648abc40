"""Live arena battles: the next user turn on both sides, the reveal and the vote.

Two endpoints of distinct models answer as A (slot 0) and B (slot 1) for the whole battle, each
side with its own history (Chatbot Arena style). The vote is one pairwise judgment (2-point,
source ``live:arena``) on the final answers, following :mod:`preflab.formats.arena`'s
``preferred_context`` rule for several turns; :func:`preflab.collect.battles.project_battles`
reads it back as a battle. Functions take a ``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import (
    GUIDELINES as _G,
    JUDGMENTS as _J,
    LIVE_CONVERSATIONS as _LC,
    LIVE_TURNS as _T,
)
from preflab.collect.live_config import get_live_config
from preflab.collect.live_state import (
    add_candidate,
    add_turn,
    candidates_of,
    check_message,
    current_round,
    plan_arena_side,
    prompt_messages,
    store_live_response,
    store_prompt,
    turns_of,
)
from preflab.collect.live_views import (
    TOUCH,
    ConversationView,
    acting,
    build_view,
    last_turns,
    need_mode,
    need_open,
)
from preflab.collect.projects import get_project
from preflab.collect.rows import LiveCandidate, User
from preflab.collect.submissions import find_judgment_by_key
from preflab.collect.tasks import digest
from preflab.errors import ConflictError, InputError
from preflab.records.models import make_response_id
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = ["ArenaVote", "add_user_turn", "arena_vote", "reveal"]

_GUIDELINE_VERSION = select(func.max(_G.c.version)).where(
    _G.c.project_id == bindparam("project_id"))
_REVEAL = (
    update(_LC)
    .where(_LC.c.conversation_id == bindparam("b_cid"), _LC.c.revealed_at.is_(None))
    .values(revealed_at=bindparam("b_now"), updated_at=bindparam("b_now"))
)
_VOTED = (
    update(_LC)
    .where(_LC.c.conversation_id == bindparam("b_cid"), _LC.c.status == "open")
    .values(status="voted", judgment_id=bindparam("b_judgment_id"),
            excluded_reason=bindparam("b_reason"), revealed_at=bindparam("b_revealed"),
            updated_at=bindparam("b_now"))
)
_CONTINUED = (
    update(_T)
    .where(_T.c.conversation_id == bindparam("b_cid"), _T.c.turn == bindparam("b_turn"),
           _T.c.side == bindparam("b_side"))
    .values(continued_response_id=bindparam("b_continued"))
)



def add_user_turn(session: Session | Connection, conversation_id: str, user: User, message: str,
                  *, now: datetime | None = None) -> ConversationView:
    """Add the next user message of an arena battle: a new turn on each side, each with its
    own history (the side's prompt + its own answer + the message), and a pending candidate.

    Raises:
        NotFoundError: not the user's conversation.
        InputError: a chat (``mode``; chats go on through :func:`submit_turn`), an empty or too
            long message, or the turn limit reached (``message``).
        ConflictError: the battle is closed, or an answer of the last turn is not complete.
    """
    conn = connection_of(session)
    now = now or utcnow()
    conv = acting(conn, conversation_id, user)
    need_mode(conv, "arena", "add_user_turn")
    need_open(conv)
    text = check_message(message, "message")
    turns = turns_of(conn, conversation_id, lock=True)
    last = last_turns(turns)
    if len(last) != 2 or any(t.status != "ready" for t in last):
        raise ConflictError("wait until both answers of the last turn are complete",
                            field="conversation_id")
    n = last[0].turn
    cfg = get_live_config(get_project(conn, conv.project_id))
    if n + 1 >= cfg.turn_limit:
        raise InputError(f"this battle has {cfg.turn_limit} turns at most; vote now",
                         field="message")
    candidates = candidates_of(conn, conversation_id)
    prompts = prompt_messages(conn, [t.prompt_id for t in last])
    for t in last:
        answer = current_round(candidates, t, conv.mode)[t.side]
        messages = [*prompts[t.prompt_id], {"role": "assistant", "content": answer.text or ""},
                    {"role": "user", "content": text}]
        prompt_id = store_prompt(conn, messages)
        conn.execute(_CONTINUED, {"b_cid": conversation_id, "b_turn": n, "b_side": t.side,
                                  "b_continued": answer.response_id})
        add_turn(conn, conversation_id, n + 1, t.side, prompt_id, now)
        add_candidate(conn, conversation_id, n + 1, 0, t.side,
                      plan_arena_side(conn, conv, t.side), now)
    conn.execute(TOUCH, {"b_cid": conversation_id, "b_now": now})
    return build_view(conn, conversation_id, user)


class ArenaVote(BaseModel):
    """An arena vote: A, B, tie or both bad, with the client's submission id."""

    submission_id: str = Field(min_length=8, max_length=200)
    outcome: Literal["a", "b", "tie", "both_bad"]


def _naming_pattern(models: Sequence[str]) -> re.Pattern[str]:
    """A case-insensitive whole-word pattern of the words that would reveal ``models``
    (:func:`preflab.arena.hygiene.identity_terms`; separators written variously)."""
    from preflab.arena.hygiene import identity_terms

    parts = []
    for model in models:
        for term in identity_terms(model):
            pieces = [re.escape(p) for p in re.split(r"[-_\s.]+", term) if p]
            if pieces:
                parts.append(r"[-_\s.]?".join(pieces))
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE)


def arena_vote(
    session: Session | Connection, conversation_id: str, user: User, vote: ArenaVote,
    *, now: datetime | None = None,
) -> tuple[ConversationView, bool]:
    """Store the vote of an arena battle; return the view (names shown) and whether it is new.

    One pairwise judgment (2-point, judge = the user, source ``live:arena``) on the final
    answers [A, B] of the last turn whose both sides are complete. Single turn: that turn's
    prompt. Several turns: the preferred side's context (A for tie or both bad) plus the last
    user message, flagged ``multi_turn`` (and ``context_from_preferred`` when the sides'
    earlier answers differ), with both final answers stored under that prompt too, as
    :mod:`preflab.formats.arena`'s ``preferred_context`` rule does. Flags ``anonymous`` (cast
    before any reveal) or ``non_anonymous``; ``self_identified`` when an answer of either side
    names either model. The conversation is ``voted``, names revealed, and
    ``excluded_reason`` is ``names_seen_before_vote``, ``answer_names_model`` or None.

    Raises:
        NotFoundError: not the user's conversation.
        InputError: a chat (``mode``).
        ConflictError: the battle was voted already (under another submission id) or is
            done, no turn has both answers, or the submission id is another judge's.
    """
    conn = connection_of(session)
    now = now or utcnow()
    conv = acting(conn, conversation_id, user, lock=True)
    need_mode(conv, "arena", "arena_vote")
    prior = find_judgment_by_key(conn, vote.submission_id)
    if prior is not None and prior.judge_id == user.user_id:
        return build_view(conn, conversation_id, user), False
    if prior is not None:
        raise ConflictError("this submission id was already used by another judge; send a "
                            "fresh one", field="submission_id")
    if conv.status == "voted":
        raise ConflictError(f"battle {conversation_id} has its vote already", field="outcome")
    need_open(conv)
    turns = turns_of(conn, conversation_id, lock=True)
    candidates = candidates_of(conn, conversation_id)
    answered: dict[int, dict[int, LiveCandidate]] = {}
    for t in turns:
        c = current_round(candidates, t, conv.mode).get(t.side)
        if t.status == "ready" and c is not None and c.status == "complete":
            answered.setdefault(t.turn, {})[t.side] = c
    complete = sorted(n for n, sides in answered.items() if len(sides) == 2)
    if not complete:
        raise ConflictError("vote once both answers are complete", field="outcome")
    last = complete[-1]
    final = answered[last]
    by_side = {t.side: t for t in turns if t.turn == last}
    preferred_side = 1 if vote.outcome == "b" else 0
    prompts = prompt_messages(conn, [t.prompt_id for t in by_side.values()])
    flags: list[str] = ["anonymous" if conv.revealed_at is None else "non_anonymous"]
    prompt_id = by_side[preferred_side].prompt_id
    if last > 0:
        flags.append("multi_turn")
        if prompts[by_side[0].prompt_id][:-1] != prompts[by_side[1].prompt_id][:-1]:
            flags.append("context_from_preferred")
    ids = []
    for side in (0, 1):
        c = final[side]
        rid = make_response_id(prompt_id, c.text or "", c.model, c.revision)
        store_live_response(conn, rid, prompt_id, c.text or "", c)
        ids.append(rid)
    shown_texts = [c.text or "" for n in answered for c in answered[n].values() if n <= last]
    pattern = _naming_pattern(sorted({final[0].model, final[1].model}))
    if any(pattern.search(t) for t in shown_texts):
        flags.append("self_identified")
    from preflab.formats.chunk_builder import two_point

    value = (two_point(ids[0]) if vote.outcome == "a" else two_point(ids[1])
             if vote.outcome == "b" else two_point(tie=True) if vote.outcome == "tie"
             else two_point(both_bad=True))
    judgment_id = "j_" + digest(vote.submission_id, user.user_id)
    version = conn.execute(_GUIDELINE_VERSION, {"project_id": conv.project_id}).scalar()
    conn.execute(insert(_J), [{
        "judgment_id": judgment_id, "prompt_id": prompt_id, "response_ids": ids,
        "kind": "pairwise", "judge_id": user.user_id, "value": value, "item_id": None,
        "project_id": conv.project_id, "guideline_version": version, "batch_id": None,
        "started_at": conv.created_at, "submitted_at": now, "comment": None, "flags": flags,
        "idempotency_key": vote.submission_id, "source": "live:arena", "source_line": None,
    }])
    reason = ("names_seen_before_vote" if conv.revealed_at is not None
              else "answer_names_model" if "self_identified" in flags else None)
    res = conn.execute(_VOTED, {"b_cid": conversation_id, "b_judgment_id": judgment_id,
                                "b_reason": reason, "b_revealed": conv.revealed_at or now,
                                "b_now": now})
    if res.rowcount != 1:
        raise ConflictError(f"battle {conversation_id} changed meanwhile; reload",
                            field="conversation_id")
    return build_view(conn, conversation_id, user), True


def reveal(session: Session | Connection, conversation_id: str, user: User,
           *, now: datetime | None = None) -> ConversationView:
    """Show an arena battle's model names without voting; a later vote is ``non_anonymous``
    (kept, excluded with reason ``names_seen_before_vote``).

    Raises:
        NotFoundError: not the user's conversation.
        InputError: a chat (``mode``).
    """
    conn = connection_of(session)
    now = now or utcnow()
    conv = acting(conn, conversation_id, user)
    need_mode(conv, "arena", "reveal")
    conn.execute(_REVEAL, {"b_cid": conversation_id, "b_now": now})
    return build_view(conn, conversation_id, user)
