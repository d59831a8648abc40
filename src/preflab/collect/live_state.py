"""The live tables' statements: read a conversation's rows, plan and add candidates, open items.

Shared by :mod:`preflab.collect.live` (conversations, judgments, votes) and
:mod:`preflab.collect.live_generation` (what the server's hub calls while it streams). Every
statement is prebuilt Core over :mod:`preflab.collect.core_tables`; functions take a
``Connection`` and never commit.

The latest row of a slot is the one shown: a new row for a slot (a retry, a resample) is
created strictly after the slot's previous row (``created_at`` one microsecond later at least),
so "latest" is well defined on every database even when the clock does not move between the
two writes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from preflab.collect.core_tables import (
    ASSIGNMENTS as _A,
    ITEMS as _I,
    LIVE_CANDIDATES as _C,
    LIVE_CONVERSATIONS as _LC,
    LIVE_TURNS as _T,
    PROMPTS as _P,
    RESPONSES as _R,
)
from preflab.collect.endpoints import get_endpoint, list_endpoints
from preflab.collect.live_config import LiveConfig
from preflab.collect.rows import (
    LiveCandidate,
    LiveConversation,
    LiveTurn,
    Project,
    ProjectEndpoint,
    columns,
)
from preflab.collect.tasks import digest
from preflab.errors import InputError, NotFoundError
from preflab.records.models import make_prompt_id
from preflab.store.items import make_item_id, make_response_ids_key

__all__ = [
    "CANDIDATE_COLUMNS",
    "CONVERSATION_COLUMNS",
    "MAX_MESSAGE_CHARS",
    "RETRYABLE",
    "TURN_COLUMNS",
    "CandidatePlan",
    "add_candidate",
    "add_turn",
    "arena_endpoints",
    "candidates_of",
    "check_message",
    "conversation_row",
    "current_round",
    "insert_ignore",
    "latest_per_slot",
    "open_live_item",
    "plan_arena_side",
    "plan_chat",
    "prompt_messages",
    "skip_live_assignment",
    "store_live_response",
    "store_prompt",
    "turns_of",
]

MAX_MESSAGE_CHARS = 20_000
"""Characters of one user message at most."""
RETRYABLE = ("failed", "broken", "cancelled")
"""Candidate statuses a retry replaces with a new pending row."""

CONVERSATION_COLUMNS = columns(LiveConversation, _LC)
TURN_COLUMNS = columns(LiveTurn, _T)
CANDIDATE_COLUMNS = columns(LiveCandidate, _C)

_CONVERSATION = select(*CONVERSATION_COLUMNS).where(_LC.c.conversation_id == bindparam("cid"))
_CONVERSATION_LOCKED = _CONVERSATION.with_for_update()
_TURNS = (
    select(*TURN_COLUMNS).where(_T.c.conversation_id == bindparam("cid"))
    .order_by(_T.c.turn, _T.c.side)
)
_TURNS_LOCKED = _TURNS.with_for_update()
_CANDIDATES = (
    select(*CANDIDATE_COLUMNS).where(_C.c.conversation_id == bindparam("cid"))
    .order_by(_C.c.turn, _C.c.round, _C.c.slot, _C.c.created_at)
)
_PROMPT_MESSAGES = select(_P.c.prompt_id, _P.c.messages).where(
    _P.c.prompt_id.in_(bindparam("ids", expanding=True)))
_ITEM_EXISTS = select(_I.c.item_id).where(_I.c.item_id == bindparam("b_item_id"))


def insert_ignore(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` unless a row with its key is stored (content-hash ids: same record)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), [row])
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), [row])


def conversation_row(conn: Connection, conversation_id: str, *, lock: bool = False
                     ) -> LiveConversation:
    """Return one conversation (``lock``: ``FOR UPDATE`` on PostgreSQL).

    Raises:
        NotFoundError: no such conversation.
    """
    stmt = _CONVERSATION_LOCKED if lock else _CONVERSATION
    row = conn.execute(stmt, {"cid": conversation_id}).first()
    if row is None:
        raise NotFoundError(f"no conversation {conversation_id!r}", field="conversation_id")
    return LiveConversation(*row)


def turns_of(conn: Connection, conversation_id: str, *, lock: bool = False) -> list[LiveTurn]:
    """Return a conversation's turn rows by turn, then side (``lock``: ``FOR UPDATE``).

    Locking the turn rows serializes the writers of one conversation on PostgreSQL (two
    candidates completing at once, a submit racing a regenerate); SQLite's writers are serial.
    """
    rows = conn.execute(_TURNS_LOCKED if lock else _TURNS, {"cid": conversation_id})
    return [LiveTurn(*r) for r in rows]


def candidates_of(conn: Connection, conversation_id: str) -> list[LiveCandidate]:
    """Return every candidate row of a conversation by turn, round, slot, then age."""
    return [LiveCandidate(*r) for r in conn.execute(_CANDIDATES, {"cid": conversation_id})]


def latest_per_slot(rows: Iterable[LiveCandidate]) -> dict[int, LiveCandidate]:
    """Return the latest row of each slot among ``rows`` (one turn's round), by slot."""
    out: dict[int, LiveCandidate] = {}
    for c in rows:
        prev = out.get(c.slot)
        if prev is None or _age_key(c) > _age_key(prev):
            out[c.slot] = c
    return dict(sorted(out.items()))


def _age_key(c: LiveCandidate) -> tuple[datetime, str]:
    return (c.created_at or datetime.min, c.candidate_id)


def current_round(candidates: Iterable[LiveCandidate], turn: LiveTurn, mode: str
                  ) -> dict[int, LiveCandidate]:
    """Return the latest row per slot of ``turn``'s current round (arena: the side's slot)."""
    rows = [c for c in candidates if c.turn == turn.turn and c.round == turn.round
            and (mode != "arena" or c.slot == turn.side)]
    return latest_per_slot(rows)


def prompt_messages(conn: Connection, prompt_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """Return prompt id → messages for the given prompts."""
    if not prompt_ids:
        return {}
    rows = conn.execute(_PROMPT_MESSAGES, {"ids": sorted(set(prompt_ids))})
    return {pid: [{"role": m["role"], "content": m["content"]} for m in msgs]
            for pid, msgs in rows}


def store_prompt(conn: Connection, messages: list[dict[str, str]]) -> str:
    """Store the prompt of a turn (insert-or-ignore by its content id); return its id."""
    prompt_id = make_prompt_id(messages)
    insert_ignore(conn, _P, {"prompt_id": prompt_id, "messages": messages, "source": "live",
                             "tags": [], "constraints": None, "reference": None})
    return prompt_id


def check_message(message: str | None, field: str) -> str:
    """Return a user message stripped of outer whitespace.

    Raises:
        InputError: empty, or longer than :data:`MAX_MESSAGE_CHARS`.
    """
    text = (message or "").strip()
    if not text:
        raise InputError("write a message (it is empty)", field=field)
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(f"a message has {MAX_MESSAGE_CHARS} characters at most, got {len(text)}; "
                         "shorten it", field=field, value=len(text))
    return text


@dataclass(frozen=True, slots=True)
class CandidatePlan:
    """What one candidate will be sampled from: endpoint, model, revision and parameters."""

    endpoint: str
    model: str
    revision: str | None
    params: dict[str, Any]

    @classmethod
    def of(cls, ep: ProjectEndpoint, **overrides: Any) -> CandidatePlan:  # Any: JSON values
        """Return the plan sampling ``ep`` with its parameters (and ``overrides``)."""
        return cls(ep.name, ep.model, ep.revision, {**(ep.params or {}), **overrides})

    @classmethod
    def like(cls, c: LiveCandidate) -> CandidatePlan:
        """Return the plan of an earlier candidate (a retry or a resample samples it again)."""
        return cls(c.endpoint, c.model, c.revision, dict(c.params or {}))


def plan_chat(conn: Connection, project: Project, cfg: LiveConfig, rng: random.Random
              ) -> list[CandidatePlan]:
    """Return the k candidates of a chat turn, in slot (screen) order, shuffled by ``rng``.

    ``sampling="models"``: k enabled endpoints of distinct (model, revision); several endpoints
    of one model (replicas) count once and one of them is drawn. ``"temperatures"``: one enabled
    endpoint, drawn, at k distinct temperatures of the config.

    Raises:
        InputError: fewer enabled endpoints than the sampling needs (field ``endpoints``), or a
            pairwise project with k other than 2 (field ``k``).
    """
    project_id = project.project_id
    if project.kind == "pairwise" and cfg.k != 2:
        raise InputError(f"project {project_id!r} judges pairs, so its live chats sample k=2 "
                         f"candidates, not {cfg.k}; an admin sets k to 2 in the live settings",
                         field="k", value=cfg.k)
    endpoints = list_endpoints(conn, project_id, enabled_only=True)
    if cfg.sampling == "temperatures":
        if not endpoints:
            raise InputError(f"project {project_id!r} has no enabled endpoint to sample; an admin "
                             "adds one on the project page or with `preflab projects endpoints "
                             "add`", field="endpoints")
        ep = rng.choice(endpoints)
        temps = rng.sample(list(cfg.temperatures), cfg.k)
        plans = [CandidatePlan.of(ep, temperature=t) for t in temps]
    else:
        groups: dict[tuple[str, str], list[ProjectEndpoint]] = {}
        for ep in endpoints:
            groups.setdefault((ep.model, ep.revision or ""), []).append(ep)
        if len(groups) < cfg.k:
            raise InputError(
                f"project {project_id!r} samples k={cfg.k} candidates from distinct models, but "
                f"its enabled endpoints serve {len(groups)} distinct model(s); an admin adds "
                "endpoints, lowers k, or switches sampling to 'temperatures'",
                field="endpoints", value=len(groups))
        keys = rng.sample(sorted(groups), cfg.k)
        plans = [CandidatePlan.of(rng.choice(groups[key])) for key in keys]
    rng.shuffle(plans)  # the screen order, recorded as the slots
    return plans


def arena_endpoints(conn: Connection, project_id: str, cfg: LiveConfig, rng: random.Random
                    ) -> tuple[str, str]:
    """Return the two endpoint names (A, B) of a new battle: distinct models, drawn by the
    project's pairing policy over its battles so far.

    Raises:
        InputError: fewer than two enabled endpoints with distinct models.
    """
    from preflab.arena.pairing import choose_pair

    by_model: dict[str, list[ProjectEndpoint]] = {}
    for ep in list_endpoints(conn, project_id, enabled_only=True):
        by_model.setdefault(ep.model, []).append(ep)
    if len(by_model) < 2:
        raise InputError(
            f"an arena battle needs two enabled endpoints with distinct models; project "
            f"{project_id!r} has {len(by_model)}; an admin adds endpoints on the project page",
            field="endpoints", value=len(by_model))
    # one endpoint per model, so that a pair never sets a model against itself
    names = sorted(rng.choice(eps).name for _, eps in sorted(by_model.items()))
    battles = None
    if cfg.arena_policy != "uniform":
        from preflab.collect.battles import project_battles

        battles = project_battles(conn, project_id)
    a, b = choose_pair(names, battles, cfg.arena_policy, rng)
    return a, b


def plan_arena_side(conn: Connection, conversation: LiveConversation, side: int
                    ) -> CandidatePlan:
    """Return the plan of one side of a battle (its endpoint as configured now)."""
    names = conversation.endpoints or []
    return CandidatePlan.of(get_endpoint(conn, conversation.project_id, names[side]))


def add_candidate(conn: Connection, conversation_id: str, turn: int, round_: int, slot: int,
                  plan: CandidatePlan, now: datetime, after: LiveCandidate | None = None) -> str:
    """Add a pending candidate row; return its id.

    ``after``: the slot's previous row; the new one is created strictly later than it.
    """
    created = now
    if after is not None and after.created_at is not None and created <= after.created_at:
        created = after.created_at + timedelta(microseconds=1)
    candidate_id = "lc_" + uuid.uuid4().hex
    conn.execute(insert(_C), [{
        "candidate_id": candidate_id, "conversation_id": conversation_id, "turn": turn,
        "round": round_, "slot": slot, "endpoint": plan.endpoint, "model": plan.model,
        "revision": plan.revision, "params": plan.params, "status": "pending", "owner": None,
        "text": None, "finish_reason": None, "response_id": None, "error": None, "attempts": 0,
        "ttft_ms": None, "latency_ms": None, "prompt_tokens": None, "completion_tokens": None,
        "created_at": created, "started_at": None, "finished_at": None,
    }])
    return candidate_id


def add_turn(conn: Connection, conversation_id: str, turn: int, side: int, prompt_id: str,
             now: datetime) -> None:
    """Add a generating turn row (round 0)."""
    conn.execute(insert(_T), [{
        "conversation_id": conversation_id, "turn": turn, "side": side, "prompt_id": prompt_id,
        "round": 0, "status": "generating", "item_id": None, "assignment_id": None,
        "judgment_id": None, "continued_response_id": None, "created_at": now,
    }])


def store_live_response(conn: Connection, response_id: str, prompt_id: str, text: str,
                        c: LiveCandidate) -> None:
    """Store a candidate's text as a response (origin ``live``; insert-or-ignore)."""
    insert_ignore(conn, _R, {
        "response_id": response_id, "prompt_id": prompt_id, "content": text, "model": c.model,
        "model_revision": c.revision, "params": dict(c.params or {}), "origin": "live"})


def open_live_item(conn: Connection, conversation: LiveConversation, turn: LiveTurn,
                   response_ids: list[str], now: datetime) -> tuple[str, str]:
    """Create the item and the assignment a chat turn is judged through; return their ids.

    The item holds the turn's prompt and answers in slot order (target 1, reserved 1, closed);
    the assignment is the annotator's, reserved with no expiry and the slots as its shown
    order, so the ordinary queue never serves it and :func:`~preflab.collect.expire_reservations`
    never frees it. Each round of a live turn has its own item, also when a deterministic model
    gives the same answers to the same prompt again (a regeneration, the same pool prompt in a
    second conversation): its key joins the answers' key with the round's own digest, so the
    item (and the annotator's one assignment per item) never collides with another round's or
    an imported item's. Calling it again for the same round attaches nothing twice.
    """
    key = (make_response_ids_key(response_ids) + "@"
           + digest("live", conversation.conversation_id, turn.turn, turn.round)[:24])
    item_id = make_item_id(conversation.project_id, turn.prompt_id, response_ids, key=key)
    assignment_id = "a_" + digest("live", conversation.conversation_id, turn.turn, turn.round)
    if conn.execute(_ITEM_EXISTS, {"b_item_id": item_id}).first() is not None:
        return item_id, assignment_id  # this round's item and assignment are already there
    conn.execute(insert(_I), [{
        "item_id": item_id, "project_id": conversation.project_id,
        "prompt_id": turn.prompt_id, "response_ids": list(response_ids),
        "response_ids_key": key, "is_gold": False, "gold_answer": None, "priority": 0,
        "target": 1, "done": 0, "reserved": 1, "is_open": False, "batch_id": None,
        "source": f"live:{conversation.conversation_id}:{turn.turn}:{turn.round}",
        "created_at": now,
    }])
    conn.execute(insert(_A), [{
        "assignment_id": assignment_id, "item_id": item_id, "user_id": conversation.user_id,
        "project_id": conversation.project_id, "status": "reserved", "reserved_at": now,
        "expires_at": None, "shown_order": list(response_ids),
        "reason": f"live chat {conversation.conversation_id}, turn {turn.turn + 1}",
        "judgment_id": None,
    }])
    return item_id, assignment_id


_SKIP_ASSIGNMENT = (
    update(_A)
    .where(_A.c.assignment_id == bindparam("b_assignment_id"), _A.c.status == "reserved")
    .values(status="skipped", reason=bindparam("b_reason"))
    .returning(_A.c.item_id)
)
# a live item stays closed when its round is given back: the ordinary queue must never serve
# one annotator's live turn to another
_RELEASE = (
    update(_I)
    .where(_I.c.item_id == bindparam("b_item_id"))
    .values(reserved=_I.c.reserved - 1, is_open=False)
)


def skip_live_assignment(conn: Connection, assignment_id: str | None, reason: str) -> None:
    """Mark a live turn's reserved assignment skipped (with ``reason``) and free its slot."""
    if assignment_id is None:
        return
    row = conn.execute(_SKIP_ASSIGNMENT, {"b_assignment_id": assignment_id,
                                          "b_reason": reason}).first()
    if row is not None:
        conn.execute(_RELEASE, {"b_item_id": row.item_id})
