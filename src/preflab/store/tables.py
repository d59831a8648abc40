"""SQLAlchemy 2 tables of the workspace store.

One ``Base.metadata`` for every table; Alembic migrations (``store/migrations``) are
generated from it. Record-shaped tables mirror ``preflab.records``; JSON columns hold the
parts whose shape varies (messages, judgment values, sampling parameters).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiToken",
    "Assignment",
    "AuditEvent",
    "Base",
    "BatchRow",
    "GenerationRequest",
    "GuidelineRow",
    "ImportRow",
    "Item",
    "JobRow",
    "JudgeRow",
    "JudgmentRow",
    "LiveCandidateRow",
    "LiveConversationRow",
    "LiveTurnRow",
    "LoginFailure",
    "ProjectEndpointRow",
    "ProjectMember",
    "ProjectRow",
    "PromptRow",
    "ResponseRow",
    "SessionRow",
    "User",
    "utcnow",
]


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


_TS = DateTime(timezone=True)


class ProjectRow(Base):
    __tablename__ = "projects"
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="pairwise")
    scale: Mapped[int] = mapped_column(Integer, default=5)
    allow_tie: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_both_bad: Mapped[bool] = mapped_column(Boolean, default=True)
    attributes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    overlap_share: Mapped[float] = mapped_column(Float, default=1.0)
    gold_share: Mapped[float] = mapped_column(Float, default=0.0)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class PromptRow(Base):
    __tablename__ = "prompts"
    prompt_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    messages: Mapped[list[Any]] = mapped_column(JSON)
    source: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    constraints: Mapped[list[Any] | None] = mapped_column(JSON)
    reference: Mapped[str | None] = mapped_column(Text)


class ResponseRow(Base):
    __tablename__ = "responses"
    response_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.prompt_id"), index=True)
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    model_revision: Mapped[str | None] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    origin: Mapped[str] = mapped_column(String(16), default="import")


class JudgeRow(Base):
    __tablename__ = "judges"
    judge_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    vendor: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    template: Mapped[str | None] = mapped_column(Text)
    template_version: Mapped[str | None] = mapped_column(String(64))


class GuidelineRow(Base):
    __tablename__ = "guideline_versions"
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.project_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    author: Mapped[str | None] = mapped_column(String(200))


class BatchRow(Base):
    __tablename__ = "batches"
    batch_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.project_id"))
    vendor: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(_TS)
    guideline_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="received")


class Item(Base):
    """A unit of annotation in a project: a prompt with the responses to judge."""

    __tablename__ = "items"
    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.project_id"), index=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.prompt_id"))
    response_ids: Mapped[list[Any]] = mapped_column(JSON)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # judgments still wanted (overlap target) and how many are done / reserved
    target: Mapped[int] = mapped_column(Integer, default=1)
    done: Mapped[int] = mapped_column(Integer, default=0)
    # live reservations; the queue serves an item only while done + reserved < target
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    # done + reserved < target, kept by the queue's conditional updates so that "next task"
    # walks an index instead of scanning every item (issue 4)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    batch_id: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    __table_args__ = (
        UniqueConstraint("project_id", "prompt_id", "response_ids_key"),
        Index("ix_items_queue", "project_id", "is_gold", "priority", "done"),
        Index("ix_items_open", "project_id", "is_gold", "is_open", "priority", "item_id"),
    )
    response_ids_key: Mapped[str] = mapped_column(String(200), default="")


class JudgmentRow(Base):
    __tablename__ = "judgments"
    judgment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.prompt_id"), index=True)
    response_ids: Mapped[list[Any]] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(16))
    judge_id: Mapped[str] = mapped_column(String(200), index=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    item_id: Mapped[str | None] = mapped_column(ForeignKey("items.item_id"), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    guideline_version: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None] = mapped_column(_TS)
    submitted_at: Mapped[datetime | None] = mapped_column(_TS)
    comment: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    source: Mapped[str | None] = mapped_column(Text)
    source_line: Mapped[int | None] = mapped_column(Integer)


class User(Base):
    __tablename__ = "users"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(400))
    role: Mapped[str] = mapped_column(String(16), default="annotator")
    vendor: Mapped[str | None] = mapped_column(String(200))
    team: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class ProjectMember(Base):
    __tablename__ = "project_members"
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.project_id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), primary_key=True)
    last_guideline_version: Mapped[int | None] = mapped_column(Integer)


class ApiToken(Base):
    """An API token: only its SHA-256 is stored; ``token_id`` is the public name to list and
    revoke it by. ``scopes`` (a list of :class:`preflab.collect.accounts.Scope` values) say
    which routes it may call, ``project_id`` (optional) the one project it may touch."""

    __tablename__ = "api_tokens"
    token_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(_TS)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    token_id: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    project_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(_TS)


class SessionRow(Base):
    """A browser session: the cookie carries a random secret, this row only its SHA-256.

    Logging out, a password change (the other sessions) and disabling the user delete rows;
    a cookie whose row is gone logs nobody in. ``session_id`` is the public name shown on the
    user's page.
    """

    __tablename__ = "sessions"
    session_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), index=True)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(_TS)
    client: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class AuditEvent(Base):
    """One admin or token action: who (user, token), what (method and route, or a named
    action), on what (``target``: path parameters or the object), when, from where."""

    __tablename__ = "audit_log"
    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(_TS, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(200))
    token_id: Mapped[str | None] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(300))
    target: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    client: Mapped[str | None] = mapped_column(String(100))


class LoginFailure(Base):
    """One failed login, under each key it counts against (``user:NAME``, ``addr:IP``).

    Kept in the database so that every server process (``preflab serve --workers N``) counts
    the same failures; rows older than the limiter's window are deleted as new ones come.
    """

    __tablename__ = "login_failures"
    failure_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))
    failed_at: Mapped[float] = mapped_column(Float, index=True)  # Unix time, seconds
    __table_args__ = (Index("ix_login_failures_key", "key", "failed_at"),)


class Assignment(Base):
    """An item served to one annotator: reserved, then submitted, skipped or expired."""

    __tablename__ = "assignments"
    assignment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("items.item_id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="reserved")
    reserved_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(_TS)
    shown_order: Mapped[list[Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    judgment_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (
        UniqueConstraint("item_id", "user_id"),
        Index("ix_assignments_live", "status", "expires_at"),
        Index("ix_assignments_user", "project_id", "user_id", "status"),
    )


class ImportRow(Base):
    """One import of one file: makes re-imports of the same content a no-op."""

    __tablename__ = "imports"
    import_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    __table_args__ = (UniqueConstraint("format", "sha256", "project_id"),)


class JobRow(Base):
    __tablename__ = "jobs"
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(_TS)


class GenerationRequest(Base):
    """One model call, keyed by a hash of (endpoint, model, messages, parameters, seed)."""

    __tablename__ = "generation_requests"
    request_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(_TS)


class ProjectEndpointRow(Base):
    """A model endpoint attached to a project for live collection (issue 12).

    The API key is never stored: ``api_key_env`` names the environment variable of the server
    process that holds it.
    """

    __tablename__ = "project_endpoints"
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.project_id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    base_url: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    revision: Mapped[str | None] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    concurrency: Mapped[int] = mapped_column(Integer, default=4)
    timeout: Mapped[float] = mapped_column(Float, default=60.0)
    api_key_env: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class LiveConversationRow(Base):
    """A live chat (``mode="chat"``) or arena battle (``mode="arena"``) of one annotator.

    ``endpoints`` holds the arena's two endpoint names in slot order (A, B), hidden from the
    annotator until ``revealed_at``; chat mode plans its endpoints per turn.
    """

    __tablename__ = "live_conversations"
    conversation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.project_id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), index=True)
    mode: Mapped[str] = mapped_column(String(16), default="chat")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done | voted
    endpoints: Mapped[list[Any] | None] = mapped_column(JSON)
    source_prompt_id: Mapped[str | None] = mapped_column(String(64))
    judgment_id: Mapped[str | None] = mapped_column(String(64))  # the arena vote
    excluded_reason: Mapped[str | None] = mapped_column(Text)  # why the vote is not counted
    revealed_at: Mapped[datetime | None] = mapped_column(_TS)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class LiveTurnRow(Base):
    """One assistant turn of a live conversation: its prompt (the conversation so far) and,
    in chat mode, the item and assignment the annotator judges once every candidate is done.

    ``round`` counts regenerations (0 first); ``continued_response_id`` is the answer the
    conversation goes on with (the chosen one, or the annotator's edit of it).
    """

    __tablename__ = "live_turns"
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("live_conversations.conversation_id"), primary_key=True
    )
    turn: Mapped[int] = mapped_column(Integer, primary_key=True)
    side: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)  # arena: 0=A, 1=B
    prompt_id: Mapped[str] = mapped_column(ForeignKey("prompts.prompt_id"))
    round: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="generating")  # generating|ready|judged
    item_id: Mapped[str | None] = mapped_column(String(64))
    assignment_id: Mapped[str | None] = mapped_column(String(64))
    judgment_id: Mapped[str | None] = mapped_column(String(64))
    continued_response_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)


class LiveCandidateRow(Base):
    """One sampled answer of a live turn, from request to stored response.

    ``status``: pending → streaming → complete, or failed / broken (stopped mid-stream) /
    cancelled (the page closed) / duplicate (same text as another slot) / regenerated (an
    earlier round). The latest row per (conversation, turn, round, slot) is the one shown;
    earlier rows of a slot stay as its history. ``text`` is filled only when complete.
    """

    __tablename__ = "live_candidates"
    candidate_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("live_conversations.conversation_id"), index=True
    )
    turn: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer, default=0)
    slot: Mapped[int] = mapped_column(Integer)  # position shown, 0 = left / A
    endpoint: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    revision: Mapped[str | None] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    owner: Mapped[str | None] = mapped_column(String(64))  # server process generating it
    text: Mapped[str | None] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    response_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(_TS, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(_TS)
    finished_at: Mapped[datetime | None] = mapped_column(_TS)
    __table_args__ = (
        Index("ix_live_candidates_turn", "conversation_id", "turn", "round", "slot"),
    )
