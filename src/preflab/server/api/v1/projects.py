"""Projects, members, guidelines, items, progress and judgments."""

from __future__ import annotations

from fastapi import APIRouter, Query

from preflab import collect
from preflab.errors import NotFoundError
from preflab.server.api.v1.schemas import (
    AssignmentPublic,
    GuidelineCreate,
    GuidelinePublic,
    ItemPage,
    ItemPublic,
    JudgmentPage,
    JudgmentPublic,
    MemberCreate,
    ProgressPublic,
    ProjectPublic,
    UserPublic,
)
from preflab.server.deps import AdminUser, CurrentUser, DbDep, visible_project

router = APIRouter(tags=["projects"])


@router.get("/projects")
def list_projects(user: CurrentUser, db: DbDep) -> list[ProjectPublic]:
    """List the projects you may work on (admins: all)."""
    with db.connect() as conn:
        return [ProjectPublic.of(p) for p in collect.list_projects(conn, user)]


@router.post("/projects", status_code=201)
def create_project(body: collect.ProjectCreate, _admin: AdminUser, db: DbDep) -> ProjectPublic:
    """Create a project with its question config (admin)."""
    with db.transaction() as conn:
        return ProjectPublic.of(collect.create_project(conn, body))


@router.get("/projects/{project_id}")
def read_project(project_id: str, user: CurrentUser, db: DbDep) -> ProjectPublic:
    """Return one project."""
    return ProjectPublic.of(visible_project(db, user, project_id))


@router.get("/projects/{project_id}/members")
def list_members(project_id: str, admin: AdminUser, db: DbDep) -> list[UserPublic]:
    """List a project's members (admin)."""
    visible_project(db, admin, project_id)
    with db.connect() as conn:
        return [UserPublic.of(u) for u in collect.list_members(conn, project_id)]


@router.post("/projects/{project_id}/members", status_code=201)
def add_member(project_id: str, body: MemberCreate, admin: AdminUser, db: DbDep) -> UserPublic:
    """Give a user access to a project (admin)."""
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        user = collect.get_user_by_username(conn, body.username)
        if user is None:
            raise NotFoundError(f"no user named {body.username!r}", field="username")
        collect.add_member(conn, project_id, user.user_id)
        return UserPublic.of(user)


@router.get("/projects/{project_id}/guidelines")
def read_guidelines(
    project_id: str, user: CurrentUser, db: DbDep, version: int | None = None
) -> GuidelinePublic:
    """Return the current guidelines (or one ``version``)."""
    visible_project(db, user, project_id)
    with db.connect() as conn:
        row = (collect.get_guideline(conn, project_id, version) if version is not None
               else collect.current_guideline(conn, project_id))
    if row is None:
        raise NotFoundError(f"project {project_id!r} has no guidelines"
                            + (f" version {version}" if version is not None else ""),
                            field="version")
    return GuidelinePublic.of(row)


@router.post("/projects/{project_id}/guidelines", status_code=201)
def create_guidelines(
    project_id: str, body: GuidelineCreate, admin: AdminUser, db: DbDep
) -> GuidelinePublic:
    """Store a new guidelines version (admin); later judgments record it."""
    visible_project(db, admin, project_id)
    with db.transaction() as conn:
        return GuidelinePublic.of(
            collect.add_guideline_version(conn, project_id, body.text, admin.username))


@router.get("/projects/{project_id}/progress")
def read_progress(project_id: str, admin: AdminUser, db: DbDep) -> ProgressPublic:
    """Progress per project, annotator and batch, and gold accuracy (admin)."""
    visible_project(db, admin, project_id)
    with db.connect() as conn:
        return ProgressPublic.of(collect.project_progress(conn, project_id))


@router.get("/projects/{project_id}/items")
def list_items(
    project_id: str,
    admin: AdminUser,
    db: DbDep,
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=500),
) -> ItemPage:
    """One page of the project's items in queue order (admin)."""
    visible_project(db, admin, project_id)
    with db.connect() as conn:
        items, total = collect.list_items(conn, project_id, offset=offset, limit=limit)
    return ItemPage(total=total, offset=offset, limit=limit,
                    items=[ItemPublic.of(i) for i in items])


@router.get("/projects/{project_id}/items/{item_id}/assignments")
def explain_item(
    project_id: str, item_id: str, admin: AdminUser, db: DbDep
) -> list[AssignmentPublic]:
    """Who was served this item, when, and why (admin)."""
    visible_project(db, admin, project_id)
    with db.connect() as conn:
        return [AssignmentPublic.of(a) for a in collect.list_assignments(conn, item_id)
                if a.project_id == project_id]


@router.get("/projects/{project_id}/judgments")
def list_judgments(
    project_id: str,
    user: CurrentUser,
    db: DbDep,
    judge_id: str | None = None,
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=1000),
) -> JudgmentPage:
    """One page of judgments: your own, or anyone's for admins (filter with ``judge_id``)."""
    visible_project(db, user, project_id)
    if user.role != "admin":
        judge_id = user.user_id
    with db.connect() as conn:
        rows, total = collect.list_judgments(conn, project_id, judge_id=judge_id, offset=offset,
                                             limit=limit)
    return JudgmentPage(total=total, offset=offset, limit=limit,
                        judgments=[JudgmentPublic.of(j) for j in rows])
