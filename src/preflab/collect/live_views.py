"""Live conversations as shown: the views, who may see and act on a conversation, listing.

Shared by :mod:`preflab.collect.live` (chat) and :mod:`preflab.collect.live_arena` (battles).
Functions take a ``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import LIVE_CONVERSATIONS as _LC, RESPONSES as _R
from preflab.collect.live_config import LiveConfig, get_live_config
from preflab.collect.live_state import (
    CONVERSATION_COLUMNS,
    candidates_of,
    conversation_row,
    current_round,
    prompt_messages,
    turns_of,
)
from preflab.collect.projects import get_project, project_for_user
from preflab.collect.rows import (
    LiveCandidate,
    LiveConversation,
    LiveTurn,
    Project,
    User,
    aware,
)
from preflab.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from preflab.store.queries.scope import connection_of

__all__ = [
    "TOUCH",
    "ConversationView",
    "TurnView",
    "acting",
    "build_view",
    "get_conversation",
    "last_turns",
    "list_conversations",
    "need_mode",
    "need_open",
    "response_texts",
    "visible",
]

_LIST_ALL = (
    select(*CONVERSATION_COLUMNS).where(_LC.c.project_id == bindparam("project_id"))
    .order_by(_LC.c.created_at.desc(), _LC.c.conversation_id)
)
_LIST_OWN = _LIST_ALL.where(_LC.c.user_id == bindparam("user_id"))
_RESPONSE_TEXTS = select(_R.c.response_id, _R.c.content).where(
    _R.c.response_id.in_(bindparam("ids", expanding=True)))
TOUCH = (
    update(_LC).where(_LC.c.conversation_id == bindparam("b_cid"))
    .values(updated_at=bindparam("b_now"))
)
"""Set a conversation's ``updated_at`` (``b_cid``, ``b_now``)."""



@dataclass(frozen=True, slots=True)
class TurnView:
    """One turn of a conversation as shown (chat: side 0; arena: side A's row and prompt)."""

    turn: LiveTurn
    messages: list[dict[str, str]]  # the prompt of this turn (conversation so far, ends user)
    candidates: list[LiveCandidate]  # current round, latest row per slot, by slot
    history: list[LiveCandidate]  # earlier rows (regenerated rounds, failed/broken retries)
    continued_text: str | None  # the assistant text the conversation went on with


@dataclass(frozen=True, slots=True)
class ConversationView:
    """A conversation as pages and the API show it to one viewer.

    ``reveal`` (slot → endpoint, model, revision) is set for an arena battle after the vote or
    a reveal, and always for admins (chat: the last turn's slots); annotators never see which
    model wrote a chat answer. ``can_continue``: the conversation is open and below its turn
    limit.
    """

    conversation: LiveConversation
    project: Project
    config: LiveConfig
    turns: list[TurnView]
    reveal: dict[int, dict[str, str | None]] | None
    can_continue: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the conversation as the API's ``ConversationPublic`` describes it (JSON types).

        Candidates carry slot, status, text (complete only), tokens and error; their endpoint,
        model and revision only when the viewer may see them (``reveal`` is set). A chat
        candidate carries its ``response_id`` (the judgment's ranks, scores, spans and
        ``continue_with`` name answers by it); an arena candidate only once revealed.
        """
        c = self.conversation
        shown = self.reveal is not None
        arena = c.mode == "arena"

        def cand(x: LiveCandidate) -> dict[str, Any]:
            out: dict[str, Any] = {
                "candidate_id": x.candidate_id, "turn": x.turn, "round": x.round,
                "slot": x.slot, "status": x.status,
                "text": x.text if x.status == "complete" else None,
                "response_id": (x.response_id if x.status == "complete" and (shown or not arena)
                                else None),
                "tokens": x.completion_tokens, "error": x.error, "attempts": x.attempts,
                "finish_reason": x.finish_reason, "ttft_ms": x.ttft_ms,
                "latency_ms": x.latency_ms,
            }
            if shown:
                out.update(endpoint=x.endpoint, model=x.model, revision=x.revision)
            return out

        def iso(ts: datetime | None) -> str | None:
            ts = aware(ts)
            return None if ts is None else ts.isoformat()

        return {
            "conversation_id": c.conversation_id, "project_id": c.project_id,
            "user_id": c.user_id, "mode": c.mode, "status": c.status,
            "kind": self.project.kind, "k": self.config.k if not arena else 2,
            "turn_limit": self.config.turn_limit, "can_continue": self.can_continue,
            "judgment_id": c.judgment_id, "excluded_reason": c.excluded_reason,
            "revealed_at": iso(c.revealed_at), "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at),
            "reveal": (None if self.reveal is None
                       else {str(k): dict(v) for k, v in self.reveal.items()}),
            "turns": [{
                "turn": t.turn.turn, "round": t.turn.round, "status": _turn_status(self, t),
                "prompt_id": t.turn.prompt_id, "messages": t.messages,
                "user_message": t.messages[-1]["content"] if t.messages else None,
                "item_id": t.turn.item_id, "assignment_id": t.turn.assignment_id,
                "judgment_id": t.turn.judgment_id,
                "continued_response_id": t.turn.continued_response_id,
                "continued_text": t.continued_text,
                "candidates": [cand(x) for x in t.candidates],
                "history": [cand(x) for x in t.history],
            } for t in self.turns],
        }


def _turn_status(view: ConversationView, t: TurnView) -> str:
    """A turn's status as shown; an arena turn is ready only when both sides are."""
    if view.conversation.mode != "arena":
        return t.turn.status
    return "ready" if t.candidates and all(x.status == "complete" for x in t.candidates) and \
        len(t.candidates) == 2 else "generating"


def build_view(conn: Connection, conversation_id: str, viewer: User) -> ConversationView:
    """Return a conversation as ``viewer`` may see it (no access check: see :func:`visible`)."""
    conv = conversation_row(conn, conversation_id)
    project = get_project(conn, conv.project_id)
    cfg = get_live_config(project)
    turns = turns_of(conn, conversation_id)
    candidates = candidates_of(conn, conversation_id)
    prompts = prompt_messages(conn, [t.prompt_id for t in turns])
    continued_ids = [t.continued_response_id for t in turns if t.continued_response_id]
    texts = response_texts(conn, continued_ids)
    arena = conv.mode == "arena"
    views: list[TurnView] = []
    for t in turns:
        if t.side != 0:
            continue
        if arena:
            sides = [s for s in turns if s.turn == t.turn]
            current: dict[int, LiveCandidate] = {}
            for s in sides:
                current.update(current_round(candidates, s, conv.mode))
        else:
            current = current_round(candidates, t, conv.mode)
        shown_ids = {x.candidate_id for x in current.values()}
        history = [x for x in candidates if x.turn == t.turn and x.candidate_id not in shown_ids]
        views.append(TurnView(
            turn=t, messages=prompts.get(t.prompt_id, []),
            candidates=[current[s] for s in sorted(current)], history=history,
            continued_text=None if arena else texts.get(t.continued_response_id or ""),
        ))
    reveal = _reveal_map(conv, views, viewer)
    can_continue = conv.status == "open" and len(views) < cfg.turn_limit
    return ConversationView(conv, project, cfg, views, reveal, can_continue)


def _reveal_map(conv: LiveConversation, turns: list[TurnView], viewer: User
                ) -> dict[int, dict[str, str | None]] | None:
    if conv.mode == "arena":
        if conv.revealed_at is None and viewer.role != "admin":
            return None
        first = {x.slot: x for t in turns for x in reversed(t.candidates)}
        return {slot: {"endpoint": name,
                       "model": first[slot].model if slot in first else None,
                       "revision": first[slot].revision if slot in first else None}
                for slot, name in enumerate(conv.endpoints or [])}
    if viewer.role != "admin":
        return None
    last = turns[-1].candidates if turns else []
    return {x.slot: {"endpoint": x.endpoint, "model": x.model, "revision": x.revision}
            for x in last}


def response_texts(conn: Connection, response_ids: Sequence[str]) -> dict[str, str]:
    """Return response id → text for the given responses."""
    if not response_ids:
        return {}
    rows = conn.execute(_RESPONSE_TEXTS, {"ids": sorted(set(response_ids))})
    return {rid: content for rid, content in rows}


def acting(conn: Connection, conversation_id: str, user: User, *, lock: bool = False
           ) -> LiveConversation:
    """Return the conversation if ``user`` may act on it (its annotator).

    Raises:
        NotFoundError: as :func:`visible`.
        PermissionDeniedError: an admin acting on an annotator's conversation.
    """
    conv = visible(conn, conversation_id, user, lock=lock)
    if conv.user_id != user.user_id:
        raise PermissionDeniedError(
            f"conversation {conversation_id} is {conv.user_id}'s; only its annotator acts on it",
            field="conversation_id")
    return conv


def visible(conn: Connection, conversation_id: str, user: User, *, lock: bool = False
            ) -> LiveConversation:
    """Return the conversation if ``user`` may see it (its annotator, or an admin).

    Raises:
        NotFoundError: no such conversation, or another annotator's (the same answer).
    """
    try:
        conv = conversation_row(conn, conversation_id, lock=lock)
    except NotFoundError:
        conv = None
    if conv is None or (conv.user_id != user.user_id and user.role != "admin"):
        raise NotFoundError(f"no conversation {conversation_id!r}", field="conversation_id")
    return conv


def need_open(conv: LiveConversation) -> None:
    """Raise :class:`ConflictError` unless the conversation is open."""
    if conv.status != "open":
        raise ConflictError(f"conversation {conv.conversation_id} is {conv.status}; start a new "
                            "one", field="conversation_id")


def need_mode(conv: LiveConversation, mode: str, what: str) -> None:
    """Raise :class:`InputError` (field ``mode``) unless the conversation is in ``mode``."""
    if conv.mode != mode:
        raise InputError(f"{what} is for {mode} conversations; {conv.conversation_id} is "
                         f"{conv.mode}", field="mode", value=conv.mode)


def get_conversation(session: Session | Connection, conversation_id: str, user: User
                     ) -> ConversationView:
    """Return a conversation as ``user`` may see it.

    Raises:
        NotFoundError: no such conversation, or not the user's (admins see every one).
    """
    conn = connection_of(session)
    visible(conn, conversation_id, user)
    return build_view(conn, conversation_id, user)


def list_conversations(session: Session | Connection, project_id: str, user: User | None = None
                       ) -> list[LiveConversation]:
    """Return a project's conversations, newest first: the user's own, or all (admins,
    ``user=None``).

    Raises:
        NotFoundError: ``user`` may not see the project (not a member), as for its tasks.
    """
    conn = connection_of(session)
    if user is not None and project_for_user(conn, project_id, user) is None:
        raise NotFoundError(f"no project {project_id!r}", field="project_id")
    if user is None or user.role == "admin":
        rows = conn.execute(_LIST_ALL, {"project_id": project_id})
    else:
        rows = conn.execute(_LIST_OWN, {"project_id": project_id, "user_id": user.user_id})
    return [LiveConversation(*r) for r in rows]


def last_turns(turns: list[LiveTurn]) -> list[LiveTurn]:
    """Return the rows of the last turn (arena: both sides)."""
    if not turns:
        return []
    last = max(t.turn for t in turns)
    return [t for t in turns if t.turn == last]
