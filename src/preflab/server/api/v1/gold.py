"""Gold items over the API (issue 13): list, set (all or nothing), upload a CSV/JSONL file,
clear, accuracy per annotator over time, and the project's gold threshold. Admin only.

Handlers are thin: they check the caller may see the project and call :mod:`preflab.collect`
in one unit of work; answers are checked there, the same way as on the pages and the CLI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from preflab import collect
from preflab.server.api.v1.schemas import ProjectPublic
from preflab.server.deps import AdminUser, DbDep, visible_project

router = APIRouter(tags=["gold"])


class GoldItemPublic(BaseModel):
    """A gold item and its expected answer."""

    item_id: str
    prompt_id: str
    response_ids: list[str]
    answer: dict[str, Any]


class GoldAnswer(BaseModel):
    """One expected answer: the item and the answer (its shape depends on the project's kind:
    ``{"preferred": id}``, ``{"tie": true}``, ``{"both_bad": true}``, ``{"label": bool}``,
    ``{"best": id}`` or ``{"scores": {id: {attribute: score}}}``)."""

    item_id: str = Field(min_length=1)
    answer: dict[str, Any]


class GoldSet(BaseModel):
    """Expected answers to store, all or nothing."""

    answers: list[GoldAnswer] = Field(min_length=1, max_length=100_000)


class GoldSetResult(BaseModel):
    set: int = Field(description="Items made gold (or given a new answer).")


class GoldClearResult(BaseModel):
    cleared: int = Field(description="Items that were gold and are ordinary again.")


class GoldPoint(BaseModel):
    at: datetime | None
    right: bool
    accuracy: float = Field(description="Accuracy over this annotator's gold answers so far.")


class GoldAnnotator(BaseModel):
    """One annotator's gold answers in time order, and whether the threshold flags them."""

    judge_id: str
    right: int
    answered: int
    accuracy: float | None
    flagged: bool
    reason: str | None
    points: list[GoldPoint]


class GoldAccuracyPage(BaseModel):
    threshold: collect.GoldThreshold | None
    annotators: list[GoldAnnotator]


def accuracy_page(project: collect.Project,
                  history: dict[str, list[tuple[datetime | None, bool]]]) -> GoldAccuracyPage:
    """Return the accuracy figures of ``collect.gold_history`` (shared with the admin page)."""
    rows = []
    for judge_id, answers in sorted(history.items()):
        right, points = 0, []
        for n, (at, ok) in enumerate(answers, 1):
            right += ok
            points.append(GoldPoint(at=at, right=ok, accuracy=right / n))
        why = collect.gold_standing(project, right, len(answers))
        rows.append(GoldAnnotator(judge_id=judge_id, right=right, answered=len(answers),
                                  accuracy=right / len(answers) if answers else None,
                                  flagged=why is not None, reason=why, points=points))
    return GoldAccuracyPage(threshold=collect.gold_threshold(project), annotators=rows)


@router.get("/projects/{project_id}/gold")
def list_gold(project_id: str, admin: AdminUser, db: DbDep) -> list[GoldItemPublic]:
    """List the project's gold items with their expected answers (admin)."""
    visible_project(db, admin, project_id)
    with db.connect() as conn:
        return [GoldItemPublic(**g) for g in collect.list_gold(conn, project_id)]


@router.post("/projects/{project_id}/gold")
def set_gold(project_id: str, body: GoldSet, admin: AdminUser, db: DbDep) -> GoldSetResult:
    """Make items gold with their expected answers, all or nothing (admin). Each answer is
    checked against its item's responses and the project's question; one bad answer stores
    none, and the error names its item and field."""
    visible_project(db, admin, project_id)
    lines = [collect.GoldLine(0, a.item_id, a.answer) for a in body.answers]
    with db.transaction() as conn:
        return GoldSetResult(set=collect.set_gold(conn, project_id, lines))


@router.post("/projects/{project_id}/gold/file")
async def upload_gold(
    project_id: str, request: Request, admin: AdminUser, db: DbDep,
    filename: str = Query("gold.csv", description="Its suffix says the format: .csv or .jsonl"),
) -> GoldSetResult:
    """Upload a CSV or JSONL file of gold answers as the request body, all or nothing
    (admin); a bad line stores nothing and the error names the file's line and field."""
    visible_project(db, admin, project_id)
    data = await request.body()

    def work() -> int:
        with db.transaction() as conn:
            return collect.load_gold_file(conn, project_id, filename, data)

    return GoldSetResult(set=await db.run(work))


@router.delete("/projects/{project_id}/gold/items/{item_id}")
def clear_gold(project_id: str, item_id: str, admin: AdminUser, db: DbDep) -> GoldClearResult:
    """Make a gold item ordinary again (admin); its judgments stay stored."""
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        return GoldClearResult(cleared=collect.clear_gold(conn, project_id, [item_id]))


@router.get("/projects/{project_id}/gold/accuracy")
def gold_accuracy(project_id: str, admin: AdminUser, db: DbDep) -> GoldAccuracyPage:
    """Gold accuracy per annotator over time and who the threshold flags (admin)."""
    project = visible_project(db, admin, project_id)
    with db.connect() as conn:
        return accuracy_page(project, collect.gold_history(conn, project_id))


@router.put("/projects/{project_id}/gold/threshold")
def put_threshold(project_id: str, body: collect.GoldThreshold, admin: AdminUser,
                  db: DbDep) -> ProjectPublic:
    """Set the project's gold threshold: the least accuracy after ``after`` gold answers, and
    whether a flagged annotator gets no new tasks (admin)."""
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        return ProjectPublic.of(collect.set_gold_threshold(conn, project_id, body))


@router.delete("/projects/{project_id}/gold/threshold")
def delete_threshold(project_id: str, admin: AdminUser, db: DbDep) -> ProjectPublic:
    """Remove the project's gold threshold (admin): nobody is flagged or stopped by it."""
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        return ProjectPublic.of(collect.set_gold_threshold(conn, project_id, None))
