"""A project's arena leaderboard and battles (live arena votes), for admins and, when the
project's live config allows it, its annotators.

``GET /api/v1/projects/{pid}/leaderboard`` answers with the same leaderboard JSON as
``preflab leaderboard --project P --json`` (the same battles, options and seed give the same
numbers); ``GET /api/v1/projects/{pid}/battles`` gives the battle file (JSONL) that
``preflab leaderboard FILE`` reads. The page (:mod:`preflab.server.pages.leaderboard`) shows
the same :class:`ProjectBoard`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from preflab import collect
from preflab.collect import Project, User
from preflab.collect.live_config import get_live_config
from preflab.errors import InputError, PermissionDeniedError
from preflab.server.db import Database
from preflab.server.deps import AdminUser, CurrentUser, DbDep, visible_project

if TYPE_CHECKING:
    import polars as pl

    from preflab.arena import Leaderboard

__all__ = [
    "LeaderboardPublic",
    "LeaderboardQuery",
    "ProjectBoard",
    "leaderboard_project",
    "project_board",
    "router",
]

router = APIRouter(tags=["leaderboard"])


class LeaderboardQuery(BaseModel):
    """The leaderboard's options, as query parameters; the defaults are ``preflab
    leaderboard``'s."""

    model_config = ConfigDict(extra="forbid")

    ties: Literal["half", "drop", "rao_kupper", "davidson"] = Field(
        "half", description="Tie rule: half (Chatbot Arena), drop, rao_kupper, davidson.")
    both_bad: Literal["tie", "drop"] = Field("tie", description="Both-bad votes: tie or drop.")
    anchor: str | None = Field(None, description="Model fixed at anchor_rating.")
    anchor_rating: float = Field(1000.0, description="The anchor's rating (or the mean).")
    rounds: int = Field(100, ge=2, le=1000, description="Bootstrap rounds.")
    seed: int = Field(0, description="Bootstrap seed.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Interval coverage.")
    l2: float = Field(0.0, ge=0, description="Ridge on strengths (0: maximum likelihood).")
    style_control: bool = Field(False, description="Also rate with length/markdown covariates.")
    keep_non_anonymous: bool = Field(
        False, description="Keep votes cast after the model names were shown.")
    keep_self_identified: bool = Field(
        False, description="Keep votes whose answers name a model.")
    max_votes_per_judge: int | None = Field(None, ge=1, description="Per-judge vote cap.")


class LeaderboardPublic(BaseModel):
    """A project's leaderboard: ``leaderboard`` is ``preflab leaderboard --json``'s object."""

    project_id: str
    votes: int = Field(description="Arena votes stored in the project (counted or not).")
    excluded: dict[str, int] = Field(
        description="Votes kept but excluded when they were cast, per recorded reason.")
    leaderboard: dict[str, Any] | None = Field(
        description="Ratings with intervals, matrices, hygiene (None: nothing to rate yet).")
    message: str | None = Field(description="Why there is no leaderboard yet, if there is none.")


@dataclass(frozen=True, slots=True)
class ProjectBoard:
    """What the leaderboard page and API show."""

    project: Project
    battles: pl.DataFrame
    board: Leaderboard | None
    message: str | None
    excluded: dict[str, int]

    def to_public(self) -> LeaderboardPublic:
        from preflab.arena import leaderboard_to_dict

        return LeaderboardPublic(
            project_id=self.project.project_id,
            votes=self.battles.height,
            excluded=self.excluded,
            leaderboard=None if self.board is None else leaderboard_to_dict(self.board),
            message=self.message,
        )


def leaderboard_project(db: Database, user: User, project_id: str) -> Project:
    """Return the project if ``user`` may see its leaderboard.

    Raises:
        NotFoundError: no such project, or the user is not a member.
        PermissionDeniedError: an annotator, and the project keeps its leaderboard for admins.
    """
    project = visible_project(db, user, project_id)
    if user.role != "admin" and not get_live_config(project).leaderboard_for_annotators:
        raise PermissionDeniedError(
            f"the leaderboard of project {project.name!r} is for admins; an admin can show it "
            "to annotators (live config leaderboard_for_annotators)",
            field="project_id",
        )
    return project


def project_board(db: Database, project: Project, query: LeaderboardQuery) -> ProjectBoard:
    """Return the project's battles and their leaderboard (None while nothing can be rated).

    Raises:
        InputError: ``anchor`` names no model of the battles.
    """
    from preflab.arena import build_leaderboard

    with db.connect() as conn:
        battles = collect.project_battles(conn, project.project_id)
    reasons = battles.get_column("excluded_reason").drop_nulls()
    excluded = {str(r): int(n) for r, n in reasons.value_counts(sort=True).iter_rows()}
    models = set(battles.get_column("model_a").to_list()) | set(
        battles.get_column("model_b").to_list()
    )
    if query.anchor is not None and query.anchor not in models:
        raise InputError(
            f"anchor {query.anchor!r} is not a model of this project's battles "
            f"({', '.join(sorted(models)) or 'none yet'})",
            field="anchor",
            value=query.anchor,
        )
    board = message = None
    if battles.height == 0:
        message = "no arena votes yet; the leaderboard fills as annotators vote in arena battles"
    else:
        try:
            board = build_leaderboard(
                battles,
                ties=query.ties,
                both_bad=query.both_bad,
                anchor=query.anchor,
                anchor_rating=query.anchor_rating,
                rounds=query.rounds,
                seed=query.seed,
                confidence=query.confidence,
                l2=query.l2,
                style_control=query.style_control,
                require_anonymous=not query.keep_non_anonymous,
                drop_self_identified=not query.keep_self_identified,
                max_votes_per_judge=query.max_votes_per_judge,
            )
        except InputError as exc:  # too few battles to rate (or groups that never met)
            message = str(exc)
    return ProjectBoard(project, battles, board, message, excluded)


@router.get("/projects/{project_id}/leaderboard")
def read_leaderboard(
    project_id: str,
    query: Annotated[LeaderboardQuery, Query()],
    user: CurrentUser,
    db: DbDep,
) -> LeaderboardPublic:
    """Return the project's arena leaderboard: Bradley–Terry ratings with bootstrap intervals
    from its live arena votes (admins; annotators when the project allows)."""
    project = leaderboard_project(db, user, project_id)
    return project_board(db, project, query).to_public()


@router.get(
    "/projects/{project_id}/battles",
    response_class=Response,
    responses={200: {"content": {"application/x-ndjson": {"schema": {
        "type": "string",
        "description": "One battle per line (JSON): model_a, model_b, outcome, judge_id, "
                       "revisions, anonymity, answers, style counts, excluded_reason.",
    }}}}},
)
def read_battles(project_id: str, admin: AdminUser, db: DbDep) -> Response:
    """Return the project's battles as a JSONL battle file that ``preflab leaderboard FILE``
    reads as it is (admin: the rows name judges and carry the answers)."""
    project = visible_project(db, admin, project_id)
    with db.connect() as conn:
        battles = collect.project_battles(conn, project.project_id)
    return Response(
        collect.battles_jsonl(battles),
        media_type="application/x-ndjson",
        headers={
            "Content-Disposition": f'attachment; filename="{project.project_id}-battles.jsonl"'
        },
    )
