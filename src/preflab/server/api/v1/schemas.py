"""Request and response bodies of the JSON API (``<Resource>Create`` / ``<Resource>Public``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from preflab.collect import Assignment, Guideline, Item, Judgment, Progress, Project, User

__all__ = [
    "AssignmentPublic",
    "GuidelineCreate",
    "GuidelinePublic",
    "ItemPage",
    "ItemPublic",
    "JudgmentPage",
    "JudgmentPublic",
    "MemberCreate",
    "ProgressPublic",
    "ProjectPublic",
    "SkipCreate",
    "TaskNext",
    "TaskPublic",
    "TokenCreate",
    "TokenPublic",
    "UserCreate",
    "UserPublic",
]


def utc(ts: datetime | None) -> datetime | None:
    """Return ``ts`` as aware UTC (SQLite hands back naive datetimes stored as UTC)."""
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


class TokenCreate(BaseModel):
    username: str
    password: str
    name: str = "api"


class UserPublic(BaseModel):
    user_id: str
    username: str
    role: str
    vendor: str | None
    team: str | None
    is_active: bool

    @classmethod
    def of(cls, u: User) -> UserPublic:
        return cls(user_id=u.user_id, username=u.username, role=u.role, vendor=u.vendor,
                   team=u.team, is_active=u.is_active)


class TokenPublic(BaseModel):
    token: str
    user: UserPublic


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8)
    role: str = "annotator"
    vendor: str | None = None
    team: str | None = None


class MemberCreate(BaseModel):
    username: str


class GuidelineCreate(BaseModel):
    text: str = Field(min_length=1, max_length=200_000)


class GuidelinePublic(BaseModel):
    version: int
    text: str
    author: str | None
    created_at: datetime | None

    @classmethod
    def of(cls, g: Guideline) -> GuidelinePublic:
        return cls(version=g.version, text=g.text, author=g.author, created_at=utc(g.created_at))


class ProjectPublic(BaseModel):
    """A project as the API shows it."""

    project_id: str
    name: str
    kind: str
    scale: int
    allow_tie: bool
    allow_both_bad: bool
    attributes: list[str]
    overlap: int
    overlap_share: float
    gold_share: float
    config: dict[str, Any]

    @classmethod
    def of(cls, p: Project) -> ProjectPublic:
        return cls(
            project_id=p.project_id, name=p.name, kind=p.kind, scale=p.scale,
            allow_tie=p.allow_tie, allow_both_bad=p.allow_both_bad,
            attributes=list(p.attributes or []), overlap=p.overlap,
            overlap_share=p.overlap_share, gold_share=p.gold_share,
            config=dict(p.config or {}),
        )


class SkipCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class JudgmentPublic(BaseModel):
    judgment_id: str
    item_id: str | None
    prompt_id: str
    response_ids: list[str]
    kind: str
    value: dict[str, Any]
    judge_id: str
    guideline_version: int | None
    started_at: datetime | None
    submitted_at: datetime | None
    comment: str | None
    flags: list[str]
    submission_id: str | None

    @classmethod
    def of(cls, j: Judgment) -> JudgmentPublic:
        return cls(
            judgment_id=j.judgment_id, item_id=j.item_id, prompt_id=j.prompt_id,
            response_ids=list(j.response_ids), kind=j.kind, value=dict(j.value),
            judge_id=j.judge_id, guideline_version=j.guideline_version,
            started_at=utc(j.started_at),
            submitted_at=utc(j.submitted_at), comment=j.comment, flags=list(j.flags or []),
            submission_id=j.idempotency_key,
        )


class JudgmentPage(BaseModel):
    total: int
    offset: int
    limit: int
    judgments: list[JudgmentPublic]


class ItemPublic(BaseModel):
    item_id: str
    prompt_id: str
    response_ids: list[str]
    is_gold: bool
    priority: int
    target: int
    done: int
    reserved: int
    batch_id: str | None

    @classmethod
    def of(cls, i: Item) -> ItemPublic:
        return cls(item_id=i.item_id, prompt_id=i.prompt_id, response_ids=list(i.response_ids),
                   is_gold=i.is_gold, priority=i.priority, target=i.target, done=i.done,
                   reserved=i.reserved, batch_id=i.batch_id)


class ItemPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[ItemPublic]


class AssignmentPublic(BaseModel):
    """One serving of an item: to whom, when, why, and what came of it."""

    assignment_id: str
    user_id: str
    status: str
    reserved_at: datetime | None
    expires_at: datetime | None
    reason: str | None
    shown_order: list[str] | None
    judgment_id: str | None

    @classmethod
    def of(cls, a: Assignment) -> AssignmentPublic:
        return cls(assignment_id=a.assignment_id, user_id=a.user_id, status=a.status,
                   reserved_at=utc(a.reserved_at), expires_at=utc(a.expires_at),
                   reason=a.reason, shown_order=a.shown_order, judgment_id=a.judgment_id)


class AnnotatorProgress(BaseModel):
    judge_id: str
    judgments: int
    skipped: int
    first: datetime | None
    last: datetime | None


class BatchProgress(BaseModel):
    batch_id: str | None
    items: int
    done: int
    target: int


class GoldAccuracy(BaseModel):
    judge_id: str
    correct: int
    total: int
    accuracy: float | None


class ProgressPublic(BaseModel):
    """A project's progress: items, judgments, per annotator and batch, gold accuracy."""

    items: int
    complete_items: int
    target_judgments: int
    judgments: int
    reserved: int
    per_annotator: list[AnnotatorProgress]
    per_batch: list[BatchProgress]
    gold: list[GoldAccuracy]

    @classmethod
    def of(cls, p: Progress) -> ProgressPublic:
        return cls.model_validate(
            {f: getattr(p, f) for f in Progress.__dataclass_fields__})


class MessagePublic(BaseModel):
    model_config = ConfigDict(extra="allow")  # a message's other keys pass through as stored

    role: str
    content: str


class PromptPublic(BaseModel):
    prompt_id: str
    messages: list[MessagePublic]


class ShownResponse(BaseModel):
    response_id: str
    content: str


class TaskPublic(BaseModel):
    """A task as served: the prompt, the responses in the order shown, the guidelines version
    and the diff of the guidelines since the version you last worked under."""

    assignment_id: str
    item_id: str
    project_id: str
    kind: str
    status: str
    expires_at: datetime | None
    prompt: PromptPublic
    responses: list[ShownResponse]
    guideline_version: int | None
    guideline_changes: list[str]


class TaskNext(BaseModel):
    """The answer of "next task": the task, or null when nothing is left for you."""

    task: TaskPublic | None
