"""Production feedback: a deployed app reports thumbs, edits and regenerations."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from preflab.loop.feedback import FeedbackBatch, store_feedback
from preflab.server.deps import CurrentUser, DbDep, visible_project

router = APIRouter(tags=["feedback"])


class FeedbackEventResult(BaseModel):
    event_id: str
    status: str
    judgment_id: str | None = None


class FeedbackResult(BaseModel):
    stored: int
    duplicates: int
    no_preference: int
    events: list[FeedbackEventResult]


@router.post("/projects/{project_id}/feedback")
def post_feedback(
    project_id: str, body: FeedbackBatch, user: CurrentUser, db: DbDep
) -> FeedbackResult:
    """Store what end users of a deployed model did with its answers (project members).

    Up to 1,000 events per call, in one transaction: all are stored or, on an error, none.
    ``thumbs`` → a binary judgment (KTO rows), ``edit`` → an edit judgment (the edit is
    preferred), ``regenerate`` → a ranking with the kept answer first (flagged ``implicit``).
    Each event's ``event_id`` makes it idempotent: sent again it is a ``duplicate`` and stores
    nothing. An edit equal to the answer, or regenerations that all read the same, are
    ``no_preference`` and store nothing. Give the reporting app a token of its own account,
    member of this project only.
    """
    project = visible_project(db, user, project_id)
    with db.transaction() as conn:
        outcomes = store_feedback(conn, body, project.project_id)
    counts = {"stored": 0, "duplicate": 0, "no_preference": 0}
    for o in outcomes:
        counts[o.status] += 1
    return FeedbackResult(
        stored=counts["stored"],
        duplicates=counts["duplicate"],
        no_preference=counts["no_preference"],
        events=[
            FeedbackEventResult(event_id=o.event_id, status=o.status, judgment_id=o.judgment_id)
            for o in outcomes
        ],
    )
