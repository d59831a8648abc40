"""Live candidates while they are generated: claim, request, complete, fail.

What the server's hub (:mod:`preflab.server.live`) calls around each stream, through
``db.run``. A candidate goes ``pending`` → ``streaming`` (claimed by one server process, its
``owner``) → ``complete``, or ``failed`` / ``broken`` / ``cancelled``; a chat answer with the
same text as another slot of its round becomes ``duplicate`` and its slot is sampled again (at
most :data:`MAX_RESAMPLES` times in a row, then the slot fails with a message saying so).

A claim is one conditional ``UPDATE … WHERE status IN (…)`` per candidate, so two processes
(or two reloads of one page) never both generate one candidate; a ``streaming`` row whose
process died is claimed again once it is ``stale_after`` seconds old. Completing takes the
conversation's turn rows ``FOR UPDATE`` on PostgreSQL, so two slots finishing at the same
moment see each other (the duplicate check and "every slot is complete" stay exact); SQLite's
writers are serial. Functions take a ``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import LIVE_CANDIDATES as _C, LIVE_TURNS as _T
from preflab.collect.endpoints import endpoint_config, get_endpoint
from preflab.collect.live_state import (
    CANDIDATE_COLUMNS,
    CandidatePlan,
    add_candidate,
    candidates_of,
    conversation_row,
    current_round,
    open_live_item,
    prompt_messages,
    store_live_response,
    turns_of,
)
from preflab.collect.rows import LiveCandidate, LiveConversation, LiveTurn
from preflab.errors import ConflictError, InputError, NotFoundError
from preflab.records.models import make_response_id, normalize_text
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

if TYPE_CHECKING:
    from preflab.generate.endpoints import EndpointConfig

__all__ = [
    "MAX_RESAMPLES",
    "CompleteResult",
    "candidate_messages",
    "candidate_request",
    "claim_candidates",
    "complete_candidate",
    "fail_candidate",
]

MAX_RESAMPLES = 2
"""Times in a row a chat slot is sampled again for repeating another slot's text."""

_CLAIM = (
    update(_C)
    .where(_C.c.candidate_id == bindparam("b_id"),
           or_(_C.c.status.in_(("pending", "cancelled")),
               and_(_C.c.status == "streaming", _C.c.started_at < bindparam("b_stale"))))
    .values(status="streaming", owner=bindparam("b_owner"), started_at=bindparam("b_now"),
            attempts=_C.c.attempts + 1, error=None, finished_at=None)
    .returning(*CANDIDATE_COLUMNS)
)
_CANDIDATE = select(*CANDIDATE_COLUMNS).where(_C.c.candidate_id == bindparam("b_id"))
_OWNED = and_(_C.c.candidate_id == bindparam("b_id"), _C.c.status == "streaming",
              _C.c.owner == bindparam("b_owner"))
_FINISH = (
    update(_C).where(_OWNED)
    .values(status=bindparam("b_status"), text=bindparam("b_text"),
            finish_reason=bindparam("b_finish"), response_id=bindparam("b_response_id"),
            error=bindparam("b_error"), ttft_ms=bindparam("b_ttft"),
            latency_ms=bindparam("b_latency"), prompt_tokens=bindparam("b_prompt_tokens"),
            completion_tokens=bindparam("b_completion_tokens"), finished_at=bindparam("b_now"))
    .returning(*CANDIDATE_COLUMNS)
)
_TURN_READY = (
    update(_T)
    .where(_T.c.conversation_id == bindparam("b_cid"), _T.c.turn == bindparam("b_turn"),
           _T.c.side == bindparam("b_side"), _T.c.status == "generating")
    .values(status="ready", item_id=bindparam("b_item_id"),
            assignment_id=bindparam("b_assignment_id"))
)


@dataclass(frozen=True, slots=True)
class CompleteResult:
    """What completing a candidate did.

    ``candidate``: the row as stored (``complete``; ``duplicate`` when its slot was sampled
    again; ``failed`` for an empty answer or a slot that kept repeating another). ``turn_ready``:
    every slot of the round is complete now (arena: both sides' turns). ``assignment_id``: the
    chat turn's assignment, once ready. ``resampled``: a new pending row was added for the slot
    (claim the conversation's candidates again to generate it).
    """

    candidate: LiveCandidate
    turn_ready: bool
    assignment_id: str | None
    resampled: bool


def claim_candidates(
    session: Session | Connection,
    conversation_id: str,
    owner: str,
    *,
    now: datetime | None = None,
    stale_after: float = 300.0,
) -> list[LiveCandidate]:
    """Claim the candidates of an open conversation that need generating; return them.

    The latest row of each slot of every generating turn's current round is taken when it is
    ``pending`` or ``cancelled``, or ``streaming`` with ``started_at`` older than
    ``stale_after`` seconds (its process died): it becomes ``streaming`` with ``owner``,
    ``started_at=now`` and one more attempt. A row another process claimed meanwhile is left
    alone (conditional update), so only one claimer gets it.

    Raises:
        NotFoundError: no such conversation.
    """
    conn = connection_of(session)
    now = now or utcnow()
    conversation = conversation_row(conn, conversation_id)
    if conversation.status != "open":
        return []
    candidates = candidates_of(conn, conversation_id)
    stale = now - timedelta(seconds=stale_after)
    claimed = []
    for turn in turns_of(conn, conversation_id):
        if turn.status != "generating":
            continue
        for c in current_round(candidates, turn, conversation.mode).values():
            wanted = c.status in ("pending", "cancelled") or (
                c.status == "streaming" and c.started_at is not None and c.started_at < stale)
            if not wanted:
                continue
            row = conn.execute(_CLAIM, {"b_id": c.candidate_id, "b_owner": owner,
                                        "b_now": now, "b_stale": stale}).first()
            if row is not None:
                claimed.append(LiveCandidate(*row))
    return claimed


def _turn_of(conn: Connection, c: LiveCandidate, *, lock: bool = False
             ) -> tuple[LiveConversation, LiveTurn, list[LiveTurn]]:
    conversation = conversation_row(conn, c.conversation_id)
    side = c.slot if conversation.mode == "arena" else 0
    turns = turns_of(conn, c.conversation_id, lock=lock)
    for t in turns:
        if t.turn == c.turn and t.side == side:
            return conversation, t, turns
    raise NotFoundError(f"conversation {c.conversation_id!r} has no turn {c.turn}", field="turn")


def _candidate(conn: Connection, candidate_id: str) -> LiveCandidate:
    row = conn.execute(_CANDIDATE, {"b_id": candidate_id}).first()
    if row is None:
        raise NotFoundError(f"no candidate {candidate_id!r}", field="candidate_id")
    return LiveCandidate(*row)


def candidate_messages(session: Session | Connection, candidate: LiveCandidate
                       ) -> list[dict[str, str]]:
    """Return the messages to send for a candidate: its turn's prompt (the conversation so far,
    on its own side in an arena battle)."""
    conn = connection_of(session)
    _, turn, _ = _turn_of(conn, candidate)
    return prompt_messages(conn, [turn.prompt_id])[turn.prompt_id]


def candidate_request(session: Session | Connection, candidate: LiveCandidate
                      ) -> tuple[EndpointConfig, dict[str, Any]]:
    """Return the endpoint config (streaming) and the sampling parameters of a candidate.

    The parameters are the ones planned for it (the endpoint's, with a chat turn's temperature);
    they are stored with its response.

    Raises:
        NotFoundError: the candidate's endpoint was removed from the project meanwhile.
    """
    conn = connection_of(session)
    conversation = conversation_row(conn, candidate.conversation_id)
    ep = get_endpoint(conn, conversation.project_id, candidate.endpoint)
    return endpoint_config(ep), dict(candidate.params or {})


def _owned(conn: Connection, candidate_id: str, owner: str) -> LiveCandidate:
    c = _candidate(conn, candidate_id)
    if c.status != "streaming" or c.owner != owner:
        raise ConflictError(
            f"candidate {candidate_id} is {c.status}"
            + (f" (claimed by {c.owner})" if c.status == "streaming" else "")
            + f", not streaming for {owner}; its result is not stored",
            field="candidate_id")
    return c


def _finish(conn: Connection, c: LiveCandidate, owner: str, now: datetime, *, status: str,
            text: str | None = None, response_id: str | None = None, error: str | None = None,
            metrics: dict[str, Any] | None = None) -> LiveCandidate:
    m = metrics or {}
    row = conn.execute(_FINISH, {
        "b_id": c.candidate_id, "b_owner": owner, "b_status": status, "b_text": text,
        "b_finish": m.get("finish_reason"), "b_response_id": response_id, "b_error": error,
        "b_ttft": m.get("ttft_ms"), "b_latency": m.get("latency_ms"),
        "b_prompt_tokens": m.get("prompt_tokens"),
        "b_completion_tokens": m.get("completion_tokens"), "b_now": now}).first()
    if row is None:
        raise ConflictError(f"candidate {c.candidate_id} changed meanwhile; its result is not "
                            "stored", field="candidate_id")
    return LiveCandidate(*row)


def _repeats(candidates: list[LiveCandidate], c: LiveCandidate) -> int:
    """Return how many rows right before ``c`` in its slot's history were duplicates."""
    rows = [x for x in candidates if (x.turn, x.round, x.slot) == (c.turn, c.round, c.slot)
            and x.candidate_id != c.candidate_id]
    n = 0
    for x in reversed(rows):  # oldest first, so walk back from the newest
        if x.status != "duplicate":
            break
        n += 1
    return n


def complete_candidate(
    session: Session | Connection,
    candidate_id: str,
    owner: str,
    *,
    text: str,
    finish_reason: str | None,
    ttft_ms: float | None,
    latency_ms: float | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    now: datetime | None = None,
) -> CompleteResult:
    """Store a finished stream: the response (origin ``live``) and the candidate's text and
    metrics; open the turn's item and assignment when the round is complete.

    The response id is ``make_response_id(prompt_id, text, model, revision)`` and its params
    the sampling parameters sent. In a chat turn, an answer whose normalized text equals
    another complete slot's of the round is not stored: the row becomes ``duplicate`` and a new
    pending row samples the slot again (``resampled``), at most :data:`MAX_RESAMPLES` times in
    a row; then the row is ``failed`` with a message saying so (retry or regenerate). An empty
    answer is ``failed`` too. When every slot of a chat round is complete, the item (prompt,
    answers in slot order) and the annotator's assignment are created and the turn is
    ``ready``; an arena side's turn is ``ready`` as soon as its answer is (the vote comes later).

    Raises:
        NotFoundError: no such candidate.
        ConflictError: the candidate is not streaming for ``owner`` (another process claimed
            it, or it was regenerated or cancelled meanwhile): nothing is stored.
    """
    conn = connection_of(session)
    now = now or utcnow()
    c = _owned(conn, candidate_id, owner)
    conversation, turn, turns = _turn_of(conn, c, lock=True)
    c = _owned(conn, candidate_id, owner)  # read again under the lock
    if turn.status != "generating" or turn.round != c.round:
        raise ConflictError(f"turn {c.turn} of conversation {c.conversation_id} moved on "
                            f"(status {turn.status}, round {turn.round}); the answer is not stored",
                            field="candidate_id")
    metrics = {"finish_reason": finish_reason, "ttft_ms": ttft_ms, "latency_ms": latency_ms,
               "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    if not text.strip():
        failed = _finish(conn, c, owner, now, status="failed", metrics=metrics,
                         error="the endpoint returned an empty answer; retry this answer")
        return CompleteResult(failed, False, None, False)
    candidates = candidates_of(conn, c.conversation_id)
    if conversation.mode != "arena":
        key = normalize_text(text)
        twin = next((s for s in current_round(candidates, turn, conversation.mode).values()
                     if s.slot != c.slot and s.status == "complete"
                     and normalize_text(s.text or "") == key), None)
        if twin is not None:
            return _duplicate(conn, c, owner, now, twin, _repeats(candidates, c), metrics)
    response_id = make_response_id(turn.prompt_id, text, c.model, c.revision)
    store_live_response(conn, response_id, turn.prompt_id, text, c)
    done = _finish(conn, c, owner, now, status="complete", text=text, response_id=response_id,
                   metrics=metrics)
    if conversation.mode == "arena":
        conn.execute(_TURN_READY, {"b_cid": c.conversation_id, "b_turn": c.turn,
                                   "b_side": turn.side, "b_item_id": None,
                                   "b_assignment_id": None})
        others = [t for t in turns if t.turn == c.turn and t.side != turn.side]
        return CompleteResult(done, all(t.status == "ready" for t in others), None, False)
    current = current_round([*candidates, done], turn, conversation.mode)
    current[done.slot] = done
    if any(x.status != "complete" for x in current.values()):
        return CompleteResult(done, False, None, False)
    rids = [x.response_id or "" for x in current.values()]
    item_id, assignment_id = open_live_item(conn, conversation, turn, rids, now)
    conn.execute(_TURN_READY, {"b_cid": c.conversation_id, "b_turn": c.turn, "b_side": 0,
                               "b_item_id": item_id, "b_assignment_id": assignment_id})
    return CompleteResult(done, True, assignment_id, False)


def _duplicate(conn: Connection, c: LiveCandidate, owner: str, now: datetime,
               twin: LiveCandidate, repeats: int, metrics: dict[str, Any]) -> CompleteResult:
    if repeats >= MAX_RESAMPLES:
        failed = _finish(
            conn, c, owner, now, status="failed", metrics=metrics,
            error=f"this endpoint gave the same answer as slot {twin.slot + 1} "
                  f"{repeats + 1} times in a row; retry it, regenerate the turn, or ask an "
                  "admin for more varied endpoints or temperatures")
        return CompleteResult(failed, False, None, False)
    dup = _finish(conn, c, owner, now, status="duplicate", metrics=metrics,
                  error=f"same text as slot {twin.slot + 1}; sampled again")
    add_candidate(conn, c.conversation_id, c.turn, c.round, c.slot, CandidatePlan.like(c), now,
                  after=dup)
    return CompleteResult(dup, False, None, True)


def fail_candidate(
    session: Session | Connection,
    candidate_id: str,
    owner: str,
    *,
    status: Literal["failed", "broken", "cancelled"],
    error: str,
    now: datetime | None = None,
) -> LiveCandidate:
    """Mark a streaming candidate failed, broken (stopped mid-stream) or cancelled; no text is
    stored (a stream that broke off is never complete). Return the row.

    Raises:
        InputError: another status.
        NotFoundError: no such candidate.
        ConflictError: the candidate is not streaming for ``owner``.
    """
    if status not in ("failed", "broken", "cancelled"):
        raise InputError(f"a candidate fails as failed, broken or cancelled, got {status!r}",
                         field="status", value=status)
    conn = connection_of(session)
    c = _owned(conn, candidate_id, owner)
    return _finish(conn, c, owner, now or utcnow(), status=status, error=error[:2000])
