"""Live pages: start a chat or an arena battle, and the conversation page itself.

The conversation page is rendered from the store (history, the current turn's candidates as
far as they are complete, the project's usual judgment controls once the turn is ready); the
page's script (``static/live.js``) then follows the conversation's server-sent events and puts
the server's sanitized HTML of each candidate into its card. Every form posts to a route here
that runs one call of :mod:`preflab.collect.live` in one transaction, asks the live hub to run
whatever generation the call planned, and redirects back (post/redirect/get).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection

from preflab import collect
from preflab.collect import User, scale_labels
from preflab.collect import live as live_lib
from preflab.collect.live_config import get_live_config
from preflab.errors import ConflictError, InputError
from preflab.server.db import Database
from preflab.server.deps import CsrfForm, CurrentUser, DbDep, visible_project
from preflab.server.pages.work import _submission

__all__ = ["router"]

router = APIRouter()

T = TypeVar("T")

#: What a candidate's status line says, by candidate status (``{n}`` is the slot's number).
STATUS_TEXT = {
    "pending": "Waiting for the model…",
    "streaming": "Generating…",
    "complete": "Done",
    "failed": "Failed — press r to retry slot {n}",
    "broken": "Stopped mid-answer — press r to retry slot {n}",
    "cancelled": "Stopped (the page was closed) — press r to retry slot {n}",
    "duplicate": "Same text as another answer — resampling…",
    "regenerated": "Replaced by a regeneration",
}
RETRYABLE = frozenset({"failed", "broken", "cancelled"})
MAX_MESSAGE = 20000


def _render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, ctx, status_code=status)


async def _write(db: Database, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(conn, *args, **kwargs)`` in one write transaction of the app's database."""

    def unit() -> T:
        with db.transaction() as conn:
            return fn(conn, *args, **kwargs)

    return await db.run(unit)


async def _read(db: Database, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(conn, *args, **kwargs)`` on a read connection of the app's database."""

    def unit() -> T:
        with db.connect() as conn:
            return fn(conn, *args, **kwargs)

    return await db.run(unit)


async def _run_generation(request: Request, conversation_id: str) -> None:
    """Ask the live hub to generate whatever the conversation has pending."""
    await request.app.state.live.ensure_running(conversation_id)


def _back(conversation_id: str) -> Response:
    return RedirectResponse(f"/live/{conversation_id}", status_code=303)


def _text(form: Any, name: str) -> str | None:
    """A form field as text with its ends trimmed; None when absent or blank."""
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


# ---- start


def _start_context(conn: Connection, project: collect.Project, user: User) -> dict[str, Any]:
    mine = live_lib.list_conversations(conn, project.project_id, user)
    return {"conversations": [c for c in mine if c.user_id == user.user_id][:20]}


@router.get("/projects/{project_id}/live")
async def live_start_page(request: Request, project_id: str, user: CurrentUser,
                          db: DbDep, mode: str | None = None) -> Response:
    """The start page: write a prompt (or draw one from the pool), chat or arena."""
    project = visible_project(db, user, project_id)
    extra = await _read(db, _start_context, project, user)
    return _render(request, "live_start.html", {
        "user": user, "project": project, "live": get_live_config(project), "error": None,
        "message": "", "mode": mode, **extra,
    })


@router.post("/projects/{project_id}/live", dependencies=[CsrfForm])
async def live_start(request: Request, project_id: str, user: CurrentUser,
                     db: DbDep) -> Response:
    """Start a conversation from the start page's form; redirect to its page."""
    project = visible_project(db, user, project_id)
    form = await request.form()
    live = get_live_config(project)
    mode = str(form.get("mode") or (live.modes[0] if live.modes else "chat"))
    message = _text(form, "message")
    from_pool = form.get("from_pool") in ("on", "1", "true")
    try:
        if mode not in ("chat", "arena"):
            raise InputError(f"mode must be chat or arena, got {mode!r}", field="mode",
                             value=mode)
        if not from_pool and message is None:
            raise InputError("write the first message (or draw a prompt from the pool)",
                             field="message")
        view = await _write(db, live_lib.start_conversation, project.project_id, user,
                            mode=mode, message=None if from_pool else message,
                            from_pool=from_pool)
    except InputError as exc:
        extra = await _read(db, _start_context, project, user)
        return _render(request, "live_start.html", {
            "user": user, "project": project, "live": live, "error": str(exc),
            "message": str(form.get("message") or ""), "mode": mode, **extra,
        }, 422)
    cid = view.conversation.conversation_id
    await _run_generation(request, cid)
    return _back(cid)


# ---- the conversation page


def _slot_name(view: Any, slot: int) -> str:
    """What a slot is called on the page: Left/Right (pairwise), Model A/B (arena), Response X."""
    if view.conversation.mode == "arena":
        return f"Model {'AB'[slot] if slot < 2 else slot + 1}"
    if view.project.kind == "pairwise" and len(view.turns[-1].candidates) == 2:
        return "Left" if slot == 0 else "Right"
    return f"Response {'ABCDEFGHIJ'[slot]}"


def _status_text(c: Any) -> str:
    text = STATUS_TEXT.get(c.status, c.status).format(n=c.slot + 1)
    if c.status in RETRYABLE and c.error:
        text = f"{text} ({c.error})"
    return text


def _page_context(request: Request, user: User, view: Any, guideline: Any,
                  error: str | None = None) -> dict[str, Any]:
    """Everything live.html and its includes show, computed once from the view."""
    project, conv = view.project, view.conversation
    cfg = project.config or {}
    is_arena = conv.mode == "arena"
    turns = list(view.turns)
    current = turns[-1] if turns else None
    is_open = conv.status == "open"
    # chat: the last turn is "current" until it is judged; arena: every turn stays on screen
    if is_arena:
        history, cur = [], current
    elif current is not None and current.turn.status != "judged" and is_open:
        history, cur = turns[:-1], current
    else:
        history, cur = turns, None
    cands = list(cur.candidates) if cur is not None else []
    if is_arena:  # a battle's turn is ready when both sides' answers are complete
        ready = is_open and len(cands) == 2 and all(c.status == "complete" for c in cands)
    else:
        ready = bool(cur is not None and is_open and cur.turn.status == "ready"
                     and cur.turn.assignment_id)
    span_labels = (cfg.get("span_labels") or []) if cfg.get("span_flags") else []
    arena_votable = is_arena and is_open and any(
        len(t.candidates) >= 2 and all(c.status == "complete" for c in t.candidates)
        for t in turns)
    return {
        "user": user, "view": view, "project": project, "conv": conv, "error": error,
        "config": cfg, "live": view.config, "is_arena": is_arena, "is_open": is_open,
        "history": history, "cur": cur, "ready": ready, "cands": cands,
        "labels": scale_labels(project.scale) if project.kind == "pairwise" else [],
        "span_labels": span_labels if ready and not is_arena else [],
        # the original texts of the ready turn: span offsets count characters of these, and
        # the edit box starts from them (set as the textarea's value, never as HTML)
        "texts": {c.response_id: c.text for c in cands if c.response_id and c.text},
        "slot_name": lambda slot: _slot_name(view, slot),
        "status_text": _status_text, "retryable": RETRYABLE,
        "can_continue": bool(view.can_continue), "arena_votable": arena_votable,
        "guideline": guideline,
        "events_url": f"/api/v1/conversations/{conv.conversation_id}/events",
        "current_url": f"/live/{conv.conversation_id}/current",
    }


def _load(conn: Connection, conversation_id: str, user: User) -> tuple[Any, Any]:
    view = live_lib.get_conversation(conn, conversation_id, user)
    return view, collect.current_guideline(conn, view.project.project_id)


async def _conversation_page(request: Request, user: User, db: Database, conversation_id: str,
                             error: str | None = None, status: int = 200,
                             template: str = "live.html") -> Response:
    view, guideline = await _read(db, _load, conversation_id, user)
    if error is None and view.conversation.status == "open" and template == "live.html":
        await _run_generation(request, conversation_id)
        view, guideline = await _read(db, _load, conversation_id, user)
    ctx = _page_context(request, user, view, guideline, error)
    return _render(request, template, ctx, status)


@router.get("/live/{conversation_id}")
async def live_page(request: Request, conversation_id: str, user: CurrentUser,
                    db: DbDep) -> Response:
    """The conversation page (restored from the store; in-flight candidates keep streaming)."""
    return await _conversation_page(request, user, db, conversation_id)


@router.get("/live/{conversation_id}/current")
async def live_current(request: Request, conversation_id: str, user: CurrentUser,
                       db: DbDep) -> Response:
    """The current turn's part of the page (the script swaps it in when a turn gets ready)."""
    return await _conversation_page(request, user, db, conversation_id,
                                    template="_live_current.html")


def _turn_submit(form: Any) -> live_lib.TurnSubmit:
    judgment = _submission(form)
    try:
        return live_lib.TurnSubmit(
            judgment=judgment,
            continue_with=_text(form, "continue_with"),
            edit=form.get("edit") if isinstance(form.get("edit"), str) else None,
            next_message=_text(form, "next_message"),
            done=form.get("action") == "done",
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "next_message"
        raise InputError(f"the form is incomplete or malformed: {field}: {err.get('msg')}",
                         field=field) from None


def _submit_unit(conn: Connection, conversation_id: str, turn: int, user: User,
                 sub: live_lib.TurnSubmit) -> Any:
    if not sub.done and sub.next_message is None:
        view = live_lib.get_conversation(conn, conversation_id, user)
        if view.can_continue:
            raise InputError("write your next message, or press d to finish the conversation",
                             field="next_message")
    return live_lib.submit_turn(conn, conversation_id, turn, user, sub)


@router.post("/live/{conversation_id}/turns/{turn}/submit", dependencies=[CsrfForm])
async def live_submit(request: Request, conversation_id: str, turn: int, user: CurrentUser,
                      db: DbDep) -> Response:
    """Judge the turn, continue with the chosen (or edited) answer, send the next message."""
    form = await request.form()
    try:
        sub = _turn_submit(form)
        await _write(db, _submit_unit, conversation_id, turn, user, sub)
    except InputError as exc:
        return await _conversation_page(request, user, db, conversation_id, error=str(exc),
                                        status=422)
    except ConflictError:
        # a twin of this submission (double press, second tab) committed first: show the result
        pass
    await _run_generation(request, conversation_id)
    return _back(conversation_id)


async def _act(request: Request, db: Database, conversation_id: str, user: User,
               fn: Callable[..., Any], *args: Any, conflict_is_done: bool = False) -> Response:
    """Run one conversation action; show its error on the page, else run generation, redirect.

    ``conflict_is_done``: a ConflictError means the action already happened (a second press
    of a retry button): show the conversation as it is.
    """
    try:
        await _write(db, fn, *args)
    except ConflictError as exc:
        if not conflict_is_done:
            return await _conversation_page(request, user, db, conversation_id,
                                            error=str(exc), status=exc.http_status)
    except InputError as exc:
        return await _conversation_page(request, user, db, conversation_id, error=str(exc),
                                        status=exc.http_status)
    await _run_generation(request, conversation_id)
    return _back(conversation_id)


@router.post("/live/{conversation_id}/turns/{turn}/regenerate", dependencies=[CsrfForm])
async def live_regenerate(request: Request, conversation_id: str, turn: int,
                          user: CurrentUser, db: DbDep) -> Response:
    """New candidates for the turn; the old ones stay, marked regenerated."""
    return await _act(request, db, conversation_id, user, live_lib.regenerate,
                      conversation_id, turn, user)


@router.post("/live/{conversation_id}/candidates/{slot}/retry", dependencies=[CsrfForm])
async def live_retry(request: Request, conversation_id: str, slot: int, user: CurrentUser,
                     db: DbDep) -> Response:
    """Ask again for a failed, broken or cancelled candidate."""
    return await _act(request, db, conversation_id, user, live_lib.retry_candidate,
                      conversation_id, slot, user, conflict_is_done=True)


@router.post("/live/{conversation_id}/messages", dependencies=[CsrfForm])
async def live_message(request: Request, conversation_id: str, user: CurrentUser,
                       db: DbDep) -> Response:
    """Arena: the next user message, answered by both models before the vote."""
    form = await request.form()
    message = _text(form, "message")
    if message is None:
        return await _conversation_page(request, user, db, conversation_id,
                                        error="write a message first", status=422)
    return await _act(request, db, conversation_id, user, live_lib.add_user_turn,
                      conversation_id, user, message)


@router.post("/live/{conversation_id}/vote", dependencies=[CsrfForm])
async def live_vote(request: Request, conversation_id: str, user: CurrentUser,
                    db: DbDep) -> Response:
    """Arena: vote A, B, tie or both bad; the names are shown afterwards."""
    form = await request.form()
    submission_id = _text(form, "submission_id") or uuid.uuid4().hex
    try:
        vote = live_lib.ArenaVote(submission_id=submission_id,
                                  outcome=str(form.get("outcome") or ""))  # type: ignore[arg-type]
    except ValidationError:
        return await _conversation_page(
            request, user, db, conversation_id, status=422,
            error=f"the vote must be a, b, tie or both_bad, got {form.get('outcome')!r}")
    return await _act(request, db, conversation_id, user, live_lib.arena_vote,
                      conversation_id, user, vote)


@router.post("/live/{conversation_id}/finish", dependencies=[CsrfForm])
async def live_finish(request: Request, conversation_id: str, user: CurrentUser,
                      db: DbDep) -> Response:
    """Chat: finish the conversation without judging further."""
    return await _act(request, db, conversation_id, user, live_lib.finish, conversation_id,
                      user)


