"""Write generated records to the workspace store, and read back what jobs need.

Writers take a connection and never commit: the caller's ``write_scope(engine)`` block is the unit
of work. Records are content-addressed, so writing one twice is a no-op (insert-or-ignore).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from preflab.errors import UsageError
from preflab.generate.cache import insert_ignore
from preflab.records import Judge, Judgment, JudgmentKind, Message, Prompt, Response
from preflab.store.judgment_values import split_feedback, value_from_record
from preflab.store.tables import Item, JudgeRow, JudgmentRow, ProjectRow, PromptRow, ResponseRow

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "check_project",
    "judgments_table",
    "load_judge_kinds",
    "load_judgments",
    "load_prompts",
    "load_responses",
    "save_items",
    "save_judges",
    "save_judgments",
    "save_prompts",
    "save_responses",
    "stored_judgment_ids",
]


def judgments_table(judgments: Sequence[Judgment]) -> pa.Table:
    """Return judgments as an Arrow table in ``JUDGMENT_SCHEMA`` (empty table for none)."""
    from preflab.records import JUDGMENT_SCHEMA, records_to_table  # PyArrow: only when asked

    if not judgments:
        return JUDGMENT_SCHEMA.empty_table()
    return records_to_table(judgments, cls=Judgment)


def save_prompts(conn: Connection, prompts: Iterable[Prompt]) -> None:
    """Store prompts (existing ids are kept as they are)."""
    rows = {
        p.prompt_id: {
            "prompt_id": p.prompt_id,
            "messages": [m.model_dump() for m in p.messages],
            "source": p.source,
            "tags": list(p.tags),
            "constraints": list(p.constraints) if p.constraints is not None else None,
            "reference": p.reference,
        }
        for p in prompts
    }
    insert_ignore(conn, cast(Table, PromptRow.__table__), list(rows.values()))


def save_responses(conn: Connection, responses: Iterable[Response]) -> None:
    """Store responses (their prompts must be stored already)."""
    rows = {
        r.response_id: {
            "response_id": r.response_id,
            "prompt_id": r.prompt_id,
            "content": r.content,
            "model": r.model,
            "model_revision": r.model_revision,
            "params": dict(r.params),
            "origin": r.origin.value,
        }
        for r in responses
    }
    insert_ignore(conn, cast(Table, ResponseRow.__table__), list(rows.values()))


def save_judges(conn: Connection, judges: Iterable[Judge]) -> None:
    """Store judge identities."""
    rows = {j.judge_id: j.model_dump(mode="json") for j in judges}
    insert_ignore(conn, cast(Table, JudgeRow.__table__), list(rows.values()))


def save_judgments(conn: Connection, judgments: Iterable[Judgment]) -> None:
    """Store judgments (prompts and responses must be stored already)."""
    rows = {
        j.judgment_id: {
            "judgment_id": j.judgment_id,
            "prompt_id": j.prompt_id,
            "response_ids": list(j.response_ids),
            "kind": j.kind.value,
            "judge_id": j.judge_id,
            "value": value_from_record(j),
            "project_id": j.project_id,
            "guideline_version": j.guideline_version,
            "batch_id": j.batch_id,
            "started_at": j.started_at,
            "submitted_at": j.submitted_at,
            "comment": j.comment,
            "flags": list(j.flags),
            "idempotency_key": j.idempotency_key,
            "source": j.source,
            "source_line": j.source_line,
        }
        for j in judgments
    }
    insert_ignore(conn, cast(Table, JudgmentRow.__table__), list(rows.values()))


def save_items(
    conn: Connection, project_id: str, items: Sequence[tuple[str, Sequence[str]]], source: str
) -> None:
    """Queue ``(prompt_id, response_ids)`` items for human judgment in a project."""
    import hashlib

    rows = []
    for prompt_id, rids in items:
        key = ",".join(sorted(rids))
        item_id = "i_" + hashlib.sha256(f"{project_id}|{prompt_id}|{key}".encode()).hexdigest()[:32]
        rows.append(
            {
                "item_id": item_id,
                "project_id": project_id,
                "prompt_id": prompt_id,
                "response_ids": list(rids),
                "response_ids_key": key,
                "is_gold": False,
                "priority": 0,
                "target": 1,
                "done": 0,
                "source": source,
            }
        )
    insert_ignore(conn, cast(Table, Item.__table__), rows)


def load_prompts(conn: Connection, prompt_ids: Sequence[str] | None = None) -> list[Prompt]:
    """Return stored prompts (all, or those of ``prompt_ids``), ordered by id."""
    t = cast(Table, PromptRow.__table__)
    stmt = select(t).order_by(t.c.prompt_id)
    if prompt_ids is not None:
        stmt = stmt.where(t.c.prompt_id.in_(list(prompt_ids)))
    out = []
    for r in conn.execute(stmt).mappings():
        out.append(
            Prompt(
                prompt_id=r["prompt_id"],
                messages=tuple(Message(**m) for m in r["messages"]),
                source=r["source"],
                tags=tuple(r["tags"] or ()),
                constraints=tuple(r["constraints"]) if r["constraints"] is not None else None,
                reference=r["reference"],
            )
        )
    return out


def load_responses(conn: Connection, prompt_ids: Sequence[str] | None = None) -> list[Response]:
    """Return stored responses (all, or those to ``prompt_ids``), ordered by prompt then id."""
    t = cast(Table, ResponseRow.__table__)
    stmt = select(t).order_by(t.c.prompt_id, t.c.response_id)
    if prompt_ids is not None:
        stmt = stmt.where(t.c.prompt_id.in_(list(prompt_ids)))
    return [
        Response(
            response_id=r["response_id"],
            prompt_id=r["prompt_id"],
            content=r["content"],
            model=r["model"],
            model_revision=r["model_revision"],
            params=r["params"] or {},
            origin=r["origin"],
        )
        for r in conn.execute(stmt).mappings()
    ]


def load_judgments(conn: Connection, judge_ids: Sequence[str] | None = None) -> list[Judgment]:
    """Return stored judgments (all, or those of ``judge_ids``) as records, ordered by id."""
    t = cast(Table, JudgmentRow.__table__)
    stmt = select(t).order_by(t.c.judgment_id)
    if judge_ids is not None:
        stmt = stmt.where(t.c.judge_id.in_(list(judge_ids)))
    out = []
    for r in conn.execute(stmt).mappings():
        kind = JudgmentKind(r["kind"])
        value, feedback = split_feedback(r["value"] or {})
        extra: dict[str, Any] = (
            {"ranking": tuple(tuple(g) for g in value.get("groups", ()))}
            if kind is JudgmentKind.RANKING
            else {kind.value: value}
        )
        out.append(
            Judgment(
                judgment_id=r["judgment_id"],
                prompt_id=r["prompt_id"],
                response_ids=tuple(r["response_ids"]),
                kind=kind,
                judge_id=r["judge_id"],
                project_id=r["project_id"],
                guideline_version=r["guideline_version"],
                batch_id=r["batch_id"],
                started_at=r["started_at"],
                submitted_at=r["submitted_at"],
                comment=r["comment"],
                flags=tuple(r["flags"] or ()),
                spans=tuple(feedback["spans"]),
                critique=feedback["critique"],
                idempotency_key=r["idempotency_key"],
                source=r["source"],
                source_line=r["source_line"],
                **extra,
            )
        )
    return out


def load_judge_kinds(conn: Connection) -> dict[str, str]:
    """Return the kind (human, ai, verifier, imported) of every stored judge by id."""
    t = cast(Table, JudgeRow.__table__)
    return {r.judge_id: r.kind for r in conn.execute(select(t.c.judge_id, t.c.kind))}


def stored_judgment_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Return which of ``ids`` are stored already (a re-run judge finds its judgments)."""
    t = cast(Table, JudgmentRow.__table__)
    wanted = list(dict.fromkeys(ids))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        stmt = select(t.c.judgment_id).where(t.c.judgment_id.in_(chunk))
        found.update(conn.execute(stmt).scalars())
    return found


def check_project(conn: Connection, project_id: str) -> None:
    """Raise unless ``project_id`` names a stored project (checked before any model call).

    Raises:
        UsageError: no such project; the message lists a few that exist.
    """
    t = cast(Table, ProjectRow.__table__)
    if conn.execute(select(t.c.project_id).where(t.c.project_id == project_id)).first():
        return
    known = conn.execute(select(t.c.project_id).order_by(t.c.project_id).limit(6)).scalars().all()
    listed = ", ".join(known[:5]) + (", …" if len(known) > 5 else "") if known else "none yet"
    raise UsageError(
        f"project {project_id!r} does not exist in this workspace (projects: {listed}). "
        "Create it with `preflab projects create` or pass an existing id to --project; "
        "nothing was called.",
        field="project",
        value=project_id,
    )
