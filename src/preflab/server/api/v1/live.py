"""Live conversations: start, follow (server-sent events), judge, regenerate, retry, vote.

Each handler runs one unit of work of :mod:`preflab.server.live` (one call of
:mod:`preflab.collect.live` in one transaction) and, when the call may have planned new
candidates, asks the process's :class:`~preflab.server.live.LiveHub` to generate them. The
events route streams what the hub generates (see ``docs/collect.md``, "Live collection").
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from sse_starlette import EventSourceResponse

from preflab.collect import live as collect_live
from preflab.collect.live import ArenaVote, TurnSubmit
from preflab.server import live
from preflab.server.api.v1.schemas import (
    ConversationCreate,
    ConversationPublic,
    ConversationSummary,
    LiveMessageCreate,
)
from preflab.server.deps import CurrentUser, DbDep

router = APIRouter(tags=["live"])

# Keep-alive comments on an idle stream (proxies close silent connections). No per-send
# timeout: it costs a cancel scope per event, and the hub's per-subscriber queue already keeps
# a slow or dead browser from holding anything up (a dead one is dropped on disconnect).
_PING_SECONDS = 15


def _json(view: Any, status: int = 200) -> Response:
    body = json.dumps(live.public_view(view), ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json")


def _hub(request: Request) -> live.LiveHub:
    return request.app.state.live  # type: ignore[no-any-return]


@router.post("/projects/{project_id}/conversations", status_code=201,
             response_model=ConversationPublic)
async def start_conversation(project_id: str, body: ConversationCreate, user: CurrentUser,
                             request: Request) -> Response:
    """Start a live chat or arena battle with your message (or one drawn from the project's
    prompt pool, ``from_pool``); its candidates start generating at once."""
    view = await _hub(request).act(collect_live.start_conversation, project_id, user,
                                   mode=body.mode, message=body.message,
                                   from_pool=body.from_pool)
    return _json(view, 201)


@router.get("/projects/{project_id}/conversations")
async def list_conversations(project_id: str, user: CurrentUser, db: DbDep
                             ) -> list[ConversationSummary]:
    """List the project's live conversations: yours (admins: everyone's), newest first."""
    rows = await db.run(live.list_conversations, db, project_id, user)
    return [ConversationSummary.of(r) for r in rows]


@router.get("/conversations/{conversation_id}", response_model=ConversationPublic)
async def read_conversation(conversation_id: str, user: CurrentUser, db: DbDep) -> Response:
    """Return one of your conversations: its turns, candidates and what comes next."""
    return _json(await db.run(live.show_conversation, db, conversation_id, user))


_EVENTS_SCHEMA = {
    "type": "string",
    "description": "server-sent events, each `event: <name>` and `data: <one JSON object>`: "
    "snapshot {conversation}, candidate {turn, round, slot, status, message}, delta {turn, "
    "round, slot, html, tokens}, complete {turn, round, slot, html, tokens, latency_ms, "
    "ttft_ms}, error {turn, round, slot, message, retryable}, ready {turn, round, "
    "assignment_id}",
}


@router.get("/conversations/{conversation_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {"schema": _EVENTS_SCHEMA}},
                             "description": "snapshot, then candidate / delta / complete / "
                             "error / ready events"}})
async def conversation_events(conversation_id: str, user: CurrentUser,
                              request: Request) -> EventSourceResponse:
    """Follow a conversation as server-sent events (the stream the live page reads).

    The first event is a ``snapshot`` of the conversation; then ``candidate`` (status
    changes), ``delta`` (the sanitized HTML so far, replacing the previous one), ``complete``,
    ``error`` (retry with the retry route) and ``ready`` (every slot complete). Connecting
    also starts generating whatever the conversation has pending; closing every stream of a
    conversation for longer than ``live_cancel_grace`` seconds cancels its generation.
    """
    hub = _hub(request)
    await hub.check_access(conversation_id, user)
    return EventSourceResponse(hub.events(conversation_id, user), ping=_PING_SECONDS)


@router.post("/conversations/{conversation_id}/turns/{turn}/submit", status_code=201,
             response_model=ConversationPublic)
async def submit_turn(conversation_id: str, turn: int, body: TurnSubmit, user: CurrentUser,
                      request: Request) -> Response:
    """Judge a chat turn with the project's usual judgment, then go on with the chosen answer
    (or your ``edit`` of it) and ``next_message``, or finish (``done``). Repeating a
    ``judgment.submission_id`` returns the conversation with status 200 and changes nothing."""
    view, created = await _hub(request).act(collect_live.submit_turn, conversation_id, turn,
                                            user, body, idempotent=True)
    return _json(view, 201 if created else 200)


@router.post("/conversations/{conversation_id}/turns/{turn}/regenerate",
             response_model=ConversationPublic)
async def regenerate(conversation_id: str, turn: int, user: CurrentUser,
                     request: Request) -> Response:
    """Ask for new candidates for a turn not judged yet; the old ones are kept as
    ``regenerated``."""
    return _json(await _hub(request).act(collect_live.regenerate, conversation_id, turn, user))


@router.post("/conversations/{conversation_id}/candidates/{slot}/retry",
             response_model=ConversationPublic)
async def retry_candidate(conversation_id: str, slot: int, user: CurrentUser,
                          request: Request) -> Response:
    """Generate a failed, broken or cancelled candidate slot again (the old row is kept)."""
    return _json(await _hub(request).act(collect_live.retry_candidate, conversation_id, slot,
                                         user))


@router.post("/conversations/{conversation_id}/messages", response_model=ConversationPublic)
async def add_message(conversation_id: str, body: LiveMessageCreate, user: CurrentUser,
                      request: Request) -> Response:
    """Arena: send the next user message to both models (before voting)."""
    return _json(await _hub(request).act(collect_live.add_user_turn, conversation_id, user,
                                         body.message))


@router.post("/conversations/{conversation_id}/vote", status_code=201,
             response_model=ConversationPublic)
async def vote(conversation_id: str, body: ArenaVote, user: CurrentUser, db: DbDep) -> Response:
    """Arena: vote ``a``, ``b``, ``tie`` or ``both_bad``; the answer reveals the models.
    Repeating a ``submission_id`` returns the conversation with status 200."""
    view, created = await db.run(live.vote, db, conversation_id, user, body)
    return _json(view, 201 if created else 200)


@router.post("/conversations/{conversation_id}/reveal", response_model=ConversationPublic)
async def reveal(conversation_id: str, user: CurrentUser, db: DbDep) -> Response:
    """Arena: show the model names without voting (a later vote counts as non-anonymous)."""
    return _json(await db.run(live.reveal, db, conversation_id, user))


@router.post("/conversations/{conversation_id}/finish", response_model=ConversationPublic)
async def finish(conversation_id: str, user: CurrentUser, db: DbDep, request: Request
                 ) -> Response:
    """Chat: end the conversation without judging further (answers still streaming stop)."""
    view = await db.run(live.finish, db, conversation_id, user)
    _hub(request).cancel(conversation_id)
    return _json(view)
