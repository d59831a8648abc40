"""Row counts per table, for summaries and the dashboard."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, func, select

from preflab.store.queries.records import _project_prompt_ids
from preflab.store.queries.scope import reading
from preflab.store.tables import (
    ImportRow,
    Item,
    JudgeRow,
    JudgmentRow,
    ProjectRow,
    PromptRow,
    ResponseRow,
)

__all__ = ["count_rows"]


def count_rows(bind: Engine | Connection, project_id: str | None = None) -> dict[str, int]:
    """Return how many prompts, responses, judges, judgments, items, projects and imports exist.

    With ``project_id``, counts what belongs to that project (prompts judged or queued in it,
    responses to those prompts, its judges, judgments and items); ``projects`` and
    ``imports`` are then left out.
    """
    p, r, jg, jm, it = (t.__table__ for t in (PromptRow, ResponseRow, JudgeRow, JudgmentRow, Item))
    count = select(func.count())
    if project_id is None:
        stmts = {
            "prompts": count.select_from(p),
            "responses": count.select_from(r),
            "judges": count.select_from(jg),
            "judgments": count.select_from(jm),
            "items": count.select_from(it),
            "projects": count.select_from(ProjectRow.__table__),
            "imports": count.select_from(ImportRow.__table__),
        }
    else:
        in_project = _project_prompt_ids(project_id)
        stmts = {
            "prompts": count.select_from(p).where(p.c.prompt_id.in_(in_project)),
            "responses": count.select_from(r).where(r.c.prompt_id.in_(in_project)),
            "judges": select(func.count(func.distinct(jm.c.judge_id))).where(
                jm.c.project_id == project_id
            ),
            "judgments": count.select_from(jm).where(jm.c.project_id == project_id),
            "items": count.select_from(it).where(it.c.project_id == project_id),
        }
    with reading(bind) as conn:
        return {name: int(conn.execute(stmt).scalar_one()) for name, stmt in stmts.items()}
