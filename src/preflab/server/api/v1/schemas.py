"""Request and response bodies of the JSON API (``<Resource>Create`` / ``<Resource>Public``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from preflab.collect import Judgment, ProjectEndpoint, api_key_status
from preflab.collect.rows import aware

__all__ = [
    "AssignmentPublic",
    "ConversationCreate",
    "ConversationPublic",
    "ConversationSummary",
    "EndpointPublic",
    "GuidelineCreate",
    "GuidelinePublic",
    "ItemPage",
    "ItemPublic",
    "JudgmentPage",
    "JudgmentPublic",
    "LiveCandidatePublic",
    "LiveMessageCreate",
    "LiveTurnPublic",
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


class RowPublic(BaseModel):
    """A schema that shows a :mod:`preflab.collect` row: its fields are the row's, by name."""

    @classmethod
    def of(cls, row: object) -> Self:
        """Return the schema of ``row`` (one of ``preflab.collect``'s rows); times as aware UTC."""
        values = {name: getattr(row, name) for name in cls.model_fields}
        return cls.model_validate(
            {k: aware(v) if isinstance(v, datetime) else v for k, v in values.items()}
        )


class TokenCreate(BaseModel):
    username: str
    password: str
    name: str = "api"


class UserPublic(RowPublic):
    user_id: str
    username: str
    role: str
    vendor: str | None
    team: str | None
    is_active: bool


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


class GuidelinePublic(RowPublic):
    version: int
    text: str
    author: str | None
    created_at: datetime | None


class ProjectPublic(RowPublic):
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

    @field_validator("attributes", "config", mode="before")
    @classmethod
    def _stored_null_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        # Any: a JSON column's value, which an old row may hold as null
        if value is not None:
            return value
        return [] if info.field_name == "attributes" else {}


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
            started_at=aware(j.started_at),
            submitted_at=aware(j.submitted_at), comment=j.comment, flags=list(j.flags or []),
            submission_id=j.idempotency_key,
        )


class JudgmentPage(BaseModel):
    total: int
    offset: int
    limit: int
    judgments: list[JudgmentPublic]


class ItemPublic(RowPublic):
    item_id: str
    prompt_id: str
    response_ids: list[str]
    is_gold: bool
    priority: int
    target: int
    done: int
    reserved: int
    batch_id: str | None


class ItemPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[ItemPublic]


class AssignmentPublic(RowPublic):
    """One serving of an item: to whom, when, why, and what came of it."""

    assignment_id: str
    user_id: str
    status: str
    reserved_at: datetime | None
    expires_at: datetime | None
    reason: str | None
    shown_order: list[str] | None
    judgment_id: str | None


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
    flagged: bool = False  # below the project's gold threshold (issue 13)


class ProgressPublic(RowPublic):
    """A project's progress: items, judgments, per annotator and batch, gold accuracy."""

    items: int
    complete_items: int
    target_judgments: int
    judgments: int
    reserved: int
    per_annotator: list[AnnotatorProgress]
    per_batch: list[BatchProgress]
    gold: list[GoldAccuracy]


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


class EndpointPublic(RowPublic):
    """A project's model endpoint as the API shows it: the NAME of its key variable and
    whether the server's environment sets it, never a key."""

    project_id: str
    name: str
    base_url: str
    model: str
    revision: str | None
    params: dict[str, Any]
    concurrency: int
    timeout: float
    api_key_env: str | None
    api_key_status: Literal["none", "set", "not set"] = Field(
        description="none: no key needed; set / not set: whether the server's environment "
        "has api_key_env")
    enabled: bool
    created_at: datetime | None

    @classmethod
    def of(cls, row: object) -> Self:
        """Return the schema of a :class:`preflab.collect.ProjectEndpoint`, with its key status
        in this server process's environment."""
        assert isinstance(row, ProjectEndpoint)
        values = {name: getattr(row, name) for name in cls.model_fields if name != "api_key_status"}
        values["api_key_status"] = api_key_status(row)
        values["created_at"] = aware(row.created_at)
        values["params"] = dict(row.params or {})
        return cls.model_validate(values)


# -- live conversations (issue 12) -------------------------------------------------------------


class ConversationCreate(BaseModel):
    """Start a live conversation: your first message, or one drawn from the prompt pool."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["chat", "arena"] = "chat"
    message: str | None = Field(default=None, max_length=20_000)
    from_pool: bool = False


class LiveMessageCreate(BaseModel):
    """The next user message of an arena battle."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=20_000)


class ConversationSummary(RowPublic):
    """A live conversation in a list (the arena's models stay hidden here)."""

    conversation_id: str
    project_id: str
    user_id: str
    mode: str
    status: str
    revealed_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None


class LiveCandidatePublic(BaseModel):
    """One candidate answer of a live turn. ``text`` and ``html`` (the sanitized rendering,
    the only form a page shows) are set once it is complete; ``endpoint``, ``model`` and
    ``revision`` only when the viewer may see them (arena: after the vote or a reveal)."""

    candidate_id: str
    turn: int
    round: int
    slot: int
    status: str
    text: str | None
    html: str | None
    response_id: str | None
    tokens: int | None
    error: str | None
    attempts: int
    finish_reason: str | None
    ttft_ms: float | None
    latency_ms: float | None
    endpoint: str | None = None
    model: str | None = None
    revision: str | None = None


class LiveTurnPublic(BaseModel):
    """One assistant turn: its prompt (the conversation so far), candidates, and the answer
    the conversation went on with."""

    turn: int
    round: int
    status: str
    prompt_id: str
    messages: list[MessagePublic]
    user_message: str | None
    item_id: str | None
    assignment_id: str | None
    judgment_id: str | None
    continued_response_id: str | None
    continued_text: str | None
    continued_html: str | None
    candidates: list[LiveCandidatePublic]
    history: list[LiveCandidatePublic]


class ConversationPublic(BaseModel):
    """A live conversation as its annotator (or an admin) sees it."""

    conversation_id: str
    project_id: str
    user_id: str
    mode: str
    status: str
    kind: str
    k: int
    turn_limit: int
    can_continue: bool
    judgment_id: str | None
    excluded_reason: str | None
    revealed_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    reveal: dict[str, dict[str, str | None]] | None
    turns: list[LiveTurnPublic]
