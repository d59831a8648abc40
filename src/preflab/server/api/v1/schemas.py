"""Request and response bodies of the JSON API (``<Resource>Create`` / ``<Resource>Public``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from preflab.store.tables import Item, JudgmentRow, User

__all__ = [
    "GuidelineCreate",
    "GuidelinePublic",
    "ItemPublic",
    "JudgmentPage",
    "JudgmentPublic",
    "MemberCreate",
    "SkipCreate",
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
    def of(cls, j: JudgmentRow) -> JudgmentPublic:
        return cls(
            judgment_id=j.judgment_id, item_id=j.item_id, prompt_id=j.prompt_id,
            response_ids=list(j.response_ids), kind=j.kind, value=dict(j.value),
            judge_id=j.judge_id, guideline_version=j.guideline_version, started_at=utc(j.started_at),
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
