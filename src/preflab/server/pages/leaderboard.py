"""The leaderboard page of a project: its live arena votes rated with intervals.

``/projects/{pid}/leaderboard`` shows what ``GET /api/v1/projects/{pid}/leaderboard`` answers
(the same :func:`~preflab.server.api.v1.leaderboard.project_board`), as the ratings table and
plots of :func:`preflab.arena.render_leaderboard_sections`, the battles per model and
revision, and the votes kept but excluded with their reasons. Admins see it; annotators only
when the project's live config sets ``leaderboard_for_annotators``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from preflab.server.api.v1.leaderboard import (
    LeaderboardQuery,
    ProjectBoard,
    leaderboard_project,
    project_board,
)
from preflab.server.deps import CurrentUser, DbDep

router = APIRouter()


def _model_rows(view: ProjectBoard) -> list[dict[str, Any]]:
    """Return one row per model: its revisions, endpoints, votes and excluded votes."""
    import polars as pl

    df = view.battles
    if df.height == 0:
        return []
    sides = pl.concat(
        [
            df.select(
                pl.col(f"model_{s}").alias("model"),
                pl.col(f"revision_{s}").alias("revision"),
                pl.col(f"endpoint_{s}").alias("endpoint"),
                pl.col("excluded_reason").is_not_null().alias("excluded"),
            )
            for s in ("a", "b")
        ]
    )
    grouped = (
        sides.group_by("model")
        .agg(
            pl.col("revision").drop_nulls().unique().sort().alias("revisions"),
            pl.col("endpoint").drop_nulls().unique().sort().alias("endpoints"),
            pl.len().alias("votes"),
            pl.col("excluded").sum().alias("excluded"),
        )
        .sort("model")
    )
    return grouped.to_dicts()


@router.get("/projects/{project_id}/leaderboard")
def leaderboard_page(
    request: Request,
    project_id: str,
    query: Annotated[LeaderboardQuery, Query()],
    user: CurrentUser,
    db: DbDep,
) -> Response:
    from preflab.arena import render_leaderboard_sections

    project = leaderboard_project(db, user, project_id)
    view = project_board(db, project, query)
    sections = None if view.board is None else render_leaderboard_sections(view.board)
    return request.app.state.templates.TemplateResponse(
        request,
        "leaderboard.html",
        {
            "user": user,
            "project": project,
            "view": view,
            "query": query,
            "sections": sections,
            "models": _model_rows(view),
        },
    )
