"""Annotation items: add them, set overlap and gold, page through them, count progress.

Functions take a ``Connection`` (or a ``Session``) and never commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from preflab.collect.core_tables import ASSIGNMENTS as _A
from preflab.collect.core_tables import ITEMS as _I
from preflab.collect.core_tables import JUDGMENTS as _J
from preflab.collect.gold import GoldLine, gold_correct, gold_standing, set_gold
from preflab.collect.projects import get_project
from preflab.collect.rows import Assignment, Item, Progress, aware, columns
from preflab.errors import InputError, NotFoundError
from preflab.store.items import make_item_id, make_response_ids_key
from preflab.store.queries.scope import connection_of
from preflab.store.tables import utcnow

__all__ = [
    "add_items",
    "apply_overlap",
    "get_item",
    "imported_answers",
    "list_assignments",
    "list_items",
    "mark_gold",
    "project_progress",
]

ITEM_COLUMNS = columns(Item, _I)
_ITEM = select(*ITEM_COLUMNS).where(_I.c.item_id == bindparam("item_id"))
_ITEM_IDS = select(_I.c.item_id).where(_I.c.item_id.in_(bindparam("ids", expanding=True)))
_PAGE = (
    select(*ITEM_COLUMNS).where(_I.c.project_id == bindparam("project_id"))
    .order_by(_I.c.priority.desc(), _I.c.item_id.desc())
    .offset(bindparam("offset")).limit(bindparam("limit"))
)
_COUNT = select(func.count()).select_from(_I).where(_I.c.project_id == bindparam("project_id"))
_OVERLAP_INPUT = select(_I.c.item_id, _I.c.done, _I.c.reserved).where(
    _I.c.project_id == bindparam("project_id"))
_SET_TARGET = (
    update(_I).where(_I.c.item_id == bindparam("b_item_id"))
    .values(target=bindparam("b_target"), is_open=bindparam("b_open"))
)
_ASSIGNMENTS = (
    select(*columns(Assignment, _A)).where(_A.c.item_id == bindparam("item_id"))
    .order_by(_A.c.reserved_at)
)


def add_items(
    session: Session | Connection,
    project_id: str,
    items: Sequence[dict[str, Any]],
    *,
    batch_id: str | None = None,
    source: str | None = None,
) -> int:
    """Add annotation items (``prompt_id``, ``response_ids``, optional ``priority``, ``is_gold``,
    ``gold_answer``, ``target``); items already in the project are left alone. Return how many
    were added.
    """
    conn = connection_of(session)
    rows: dict[str, dict[str, Any]] = {}
    now = utcnow()
    for spec in items:
        rids = list(spec["response_ids"])
        item_id = make_item_id(project_id, spec["prompt_id"], rids)
        rows.setdefault(item_id, {
            "item_id": item_id, "project_id": project_id, "prompt_id": spec["prompt_id"],
            "response_ids": rids, "response_ids_key": make_response_ids_key(rids),
            "is_gold": bool(spec.get("is_gold", False)), "gold_answer": spec.get("gold_answer"),
            "priority": int(spec.get("priority", 0)), "target": int(spec.get("target", 1)),
            "done": 0, "reserved": 0, "is_open": True, "batch_id": batch_id, "source": source,
            "created_at": now,
        })
    ids = list(rows)
    for start in range(0, len(ids), 500):
        for (known,) in conn.execute(_ITEM_IDS, {"ids": ids[start:start + 500]}):
            rows.pop(known, None)
    if rows:
        conn.execute(insert(_I), list(rows.values()))
    return len(rows)


def apply_overlap(session: Session | Connection, project_id: str, overlap: int,
                  share: float) -> int:
    """Set each item's judgment target: ``overlap`` on a ``share`` of items, 1 on the rest.

    The share is chosen deterministically by item id (a hash), so re-running gives the same
    items. Return how many items got the overlap target.

    Raises:
        InputError: overlap below 1 or a share outside 0..1.
    """
    if overlap < 1:
        raise InputError(f"overlap must be at least 1, got {overlap}", field="overlap")
    if not 0.0 <= share <= 1.0:
        raise InputError(f"overlap share must be within 0..1, got {share}", field="overlap_share")
    conn = connection_of(session)
    updates = []
    for item_id, done, reserved in conn.execute(_OVERLAP_INPUT, {"project_id": project_id}):
        bucket = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        target = overlap if bucket < share else 1
        updates.append({"b_item_id": item_id, "b_target": target,
                        "b_open": done + reserved < target})
    if updates:
        conn.execute(_SET_TARGET, updates)
    return sum(u["b_target"] == overlap for u in updates)


def mark_gold(session: Session | Connection, item_id: str, answer: dict[str, Any]) -> None:
    """Make an item gold with its expected answer (e.g. ``{"preferred": "r_…"}``), checked
    against the item's responses and its project's question (:mod:`preflab.collect.gold`).

    Raises:
        NotFoundError: no such item.
        InputError: the answer does not fit the item (names the field).
    """
    item = get_item(session, item_id)
    if item is None:
        raise NotFoundError(f"no item {item_id!r}", field="item_id")
    set_gold(session, item.project_id, [GoldLine(0, item_id, answer)])


def get_item(session: Session | Connection, item_id: str) -> Item | None:
    """Return one item, or None."""
    row = connection_of(session).execute(_ITEM, {"item_id": item_id}).first()
    return None if row is None else Item(*row)


def list_items(
    session: Session | Connection, project_id: str, *, offset: int = 0, limit: int = 50
) -> tuple[list[Item], int]:
    """Return one page of a project's items (queue order) and the total count."""
    conn = connection_of(session)
    total = conn.execute(_COUNT, {"project_id": project_id}).scalar() or 0
    rows = conn.execute(_PAGE, {"project_id": project_id, "offset": offset, "limit": limit})
    return [Item(*r) for r in rows], int(total)


def list_assignments(session: Session | Connection, item_id: str) -> list[Assignment]:
    """Return the assignments of one item, oldest first (the admin's "why was this served")."""
    rows = connection_of(session).execute(_ASSIGNMENTS, {"item_id": item_id})
    return [Assignment(*r) for r in rows]


def project_progress(session: Session | Connection, project_id: str) -> Progress:
    """Return progress of a project: items, judgments, per annotator, per batch, gold accuracy.

    Only judgments made in the app count (imported ones have their file as ``source``). Gold
    items stay out of the item, completion and target counts (they are outside the overlap);
    each annotator's gold accuracy is flagged when the project's gold threshold says so.
    """
    conn = connection_of(session)
    i, j, a = _I.c, _J.c, _A.c
    own = (i.project_id == project_id, i.is_gold == False)
    n_items, target, reserved = conn.execute(
        select(func.count(), func.coalesce(func.sum(i.target), 0),
               func.coalesce(func.sum(i.reserved), 0)).where(*own)
    ).one()
    complete = conn.execute(select(func.count()).where(*own, i.done >= i.target)).scalar()
    app_made = (j.project_id == project_id, j.source == "app")
    n_judg = conn.execute(select(func.count()).select_from(_J).where(*app_made)).scalar()
    per_user = conn.execute(
        select(j.judge_id, func.count(), func.min(j.submitted_at), func.max(j.submitted_at))
        .where(*app_made).group_by(j.judge_id).order_by(j.judge_id)
    ).all()
    skips: dict[str, int] = dict(conn.execute(  # type: ignore[arg-type]
        select(a.user_id, func.count())
        .where(a.project_id == project_id, a.status == "skipped").group_by(a.user_id)
    ).all())
    per_batch = conn.execute(
        select(i.batch_id, func.count(), func.coalesce(func.sum(i.done), 0),
               func.coalesce(func.sum(i.target), 0))
        .where(*own).group_by(i.batch_id).order_by(i.batch_id)
    ).all()
    gold_rows = conn.execute(
        select(j.judge_id, j.kind, j.value, i.gold_answer)
        .join_from(_J, _I, i.item_id == j.item_id)
        .where(*app_made, i.is_gold == True)
    ).all()
    gold: dict[str, list[int]] = {}
    for judge_id, kind, value, answer in gold_rows:
        tally = gold.setdefault(judge_id, [0, 0])
        tally[1] += 1
        tally[0] += bool(answer) and gold_correct(kind, value or {}, answer)
    project = get_project(conn, project_id) if gold else None
    return Progress(
        items=int(n_items),
        complete_items=int(complete or 0),
        target_judgments=int(target),
        judgments=int(n_judg or 0),
        reserved=int(reserved),
        per_annotator=[
            {"judge_id": jid, "judgments": int(n), "skipped": int(skips.get(jid, 0)),
             "first": aware(first), "last": aware(last)}
            for jid, n, first, last in per_user
        ],
        per_batch=[
            {"batch_id": b, "items": int(n), "done": int(d), "target": int(t)}
            for b, n, d, t in per_batch
        ],
        gold=[
            {"judge_id": jid, "correct": c, "total": t, "accuracy": c / t if t else None,
             "flagged": project is not None and gold_standing(project, c, t) is not None}
            for jid, (c, t) in sorted(gold.items())
        ],
    )


def imported_answers(
    session: Session | Connection, project_id: str, limit: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """Return ``(item_id, judgment_id, value)`` of imported pairwise judgments on the project's items.

    Used to seed gold items from a dataset that already carries an answer (e.g. HH-RLHF's
    chosen response), first items in id order. The judgment id lets the gold answer name the
    judgment it came from (``derived_from``), which the audit then does not score against it.
    """
    i, j = _I.c, _J.c
    q = (
        select(i.item_id, j.judgment_id, j.value)
        .join_from(_I, _J, and_(j.prompt_id == i.prompt_id, j.project_id == i.project_id))
        .where(i.project_id == project_id, j.kind == "pairwise",
               or_(j.source.is_(None), j.source != "app"))
        .order_by(i.item_id)
        .limit(limit)
    )
    return [(item_id, jid, dict(v)) for item_id, jid, v in connection_of(session).execute(q).all()]
