"""The rows the annotation layer hands out: one frozen, slotted dataclass per concept.

Every read of :mod:`preflab.collect` returns these, built from prebuilt Core statements whose
columns are selected in the dataclass's field order (``Row(*result_row)``), so pages, the API,
the CLI and the hot task route all see the same type, and no ORM instance is built per request.
Field names are the column names of :mod:`preflab.store.tables`, so templates and the
``…Public.of`` API schemas read them as attributes; timestamps are aware UTC on every database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Dialect, Table, type_coerce
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Assignment",
    "AwareDateTime",
    "Guideline",
    "Item",
    "Judgment",
    "LiveCandidate",
    "LiveConversation",
    "LiveTurn",
    "Progress",
    "Project",
    "ProjectEndpoint",
    "Prompt",
    "Response",
    "Task",
    "TaskView",
    "User",
    "aware",
    "columns",
]


def aware(ts: datetime | None) -> datetime | None:
    """Return ``ts`` as aware UTC (SQLite hands back naive datetimes stored as UTC)."""
    if ts is None or ts.tzinfo is not None:
        return ts
    return ts.replace(tzinfo=UTC)


class AwareDateTime(TypeDecorator[datetime]):
    """A timestamp read back as aware UTC on every database (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return aware(value)


def columns(row_type: type, table: Table, prefix: str = "") -> list[ColumnElement[Any]]:
    """Return ``table``'s columns in ``row_type``'s field order, labelled ``prefix + name``;
    timestamps come back aware (UTC).

    A statement selecting these builds the row with ``row_type(*result_row)``.
    """
    out: list[ColumnElement[Any]] = []
    for f in fields(row_type):
        col = table.c[f.name]
        if isinstance(col.type, DateTime):
            out.append(type_coerce(col, AwareDateTime()).label(prefix + col.name))
        else:
            out.append(col.label(prefix + col.name) if prefix else col)
    return out


@dataclass(frozen=True, slots=True)
class User:
    """An account: an annotator or an admin (its id is also the human judge's id)."""

    user_id: str
    username: str
    password_hash: str = field(repr=False)
    role: str
    vendor: str | None
    team: str | None
    is_active: bool
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class Project:
    """A project: its question (kind, scale, attributes), overlap target and gold share."""

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
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class Guideline:
    """One version of a project's guidelines."""

    project_id: str
    version: int
    text: str
    created_at: datetime | None
    author: str | None


@dataclass(frozen=True, slots=True)
class Item:
    """An annotation item: a prompt with the responses to judge, and its queue counters."""

    item_id: str
    project_id: str
    prompt_id: str
    response_ids: list[str]
    is_gold: bool
    gold_answer: dict[str, Any] | None
    priority: int
    target: int
    done: int
    reserved: int
    is_open: bool
    batch_id: str | None
    source: str | None
    created_at: datetime | None
    response_ids_key: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """One serving of an item to one annotator (reserved, submitted, skipped or expired)."""

    assignment_id: str
    item_id: str
    user_id: str
    status: str
    reserved_at: datetime | None
    expires_at: datetime | None
    shown_order: list[str] | None
    reason: str | None
    judgment_id: str | None
    project_id: str | None


@dataclass(frozen=True, slots=True)
class Prompt:
    """The prompt of a task."""

    prompt_id: str
    messages: list[dict[str, Any]]
    source: str | None
    tags: list[str]
    constraints: list[Any] | None
    reference: str | None


@dataclass(frozen=True, slots=True)
class Response:
    """One response of a task."""

    response_id: str
    prompt_id: str
    content: str
    model: str | None
    model_revision: str | None
    params: dict[str, Any]
    origin: str


@dataclass(frozen=True, slots=True)
class Judgment:
    """A stored judgment (made in the app, imported, or from production feedback)."""

    judgment_id: str
    prompt_id: str
    response_ids: list[str]
    kind: str
    judge_id: str
    value: dict[str, Any]
    item_id: str | None
    project_id: str | None
    guideline_version: int | None
    batch_id: str | None
    started_at: datetime | None
    submitted_at: datetime | None
    comment: str | None
    flags: list[str]
    idempotency_key: str | None
    source: str | None
    source_line: int | None


@dataclass(frozen=True, slots=True)
class Task:
    """An item served to one annotator: the assignment, item, prompt and responses as shown."""

    assignment: Assignment
    item: Item
    prompt: Prompt
    responses: Sequence[Response]  # in the order shown
    reason: str


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task as pages and the API show it: with its project and the guidelines in force."""

    task: Task
    project: Project
    guideline_version: int | None
    guideline_text: str
    guideline_changes: list[str]  # unified diff since the version last worked under

    def to_dict(self) -> dict[str, Any]:
        """Return the task as the API's ``TaskPublic`` schema describes it (JSON types)."""
        t = self.task
        expires = aware(t.assignment.expires_at)
        return {
            "assignment_id": t.assignment.assignment_id,
            "item_id": t.item.item_id,
            "project_id": self.project.project_id,
            "kind": self.project.kind,
            "status": t.assignment.status,
            "expires_at": None if expires is None else expires.isoformat(),
            "prompt": {"prompt_id": t.prompt.prompt_id, "messages": t.prompt.messages},
            "responses": [{"response_id": r.response_id, "content": r.content}
                          for r in t.responses],
            "guideline_version": self.guideline_version,
            "guideline_changes": self.guideline_changes,
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """Counts for the admin progress page."""

    items: int
    complete_items: int
    target_judgments: int
    judgments: int
    reserved: int
    per_annotator: list[dict[str, Any]]
    per_batch: list[dict[str, Any]]
    gold: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ProjectEndpoint:
    """A model endpoint attached to a project for live collection (issue 12).

    ``api_key_env`` is the NAME of the server's environment variable holding the key; the key
    itself is never stored.
    """

    project_id: str
    name: str
    base_url: str
    model: str
    revision: str | None
    params: dict[str, Any]
    concurrency: int
    timeout: float
    api_key_env: str | None
    enabled: bool
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class LiveConversation:
    """A live chat (``mode="chat"``) or arena battle (``mode="arena"``) of one annotator.

    ``status``: ``open``, ``done`` or ``voted``; ``endpoints``: the arena's two endpoint names in
    slot order (A, B), hidden from the annotator until ``revealed_at``.
    """

    conversation_id: str
    project_id: str
    user_id: str
    mode: str
    status: str
    endpoints: list[str] | None
    source_prompt_id: str | None
    judgment_id: str | None
    excluded_reason: str | None
    revealed_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class LiveTurn:
    """One assistant turn of a live conversation (arena: one row per side, 0 = A, 1 = B).

    ``status``: ``generating``, ``ready`` (every candidate complete) or ``judged``.
    """

    conversation_id: str
    turn: int
    side: int
    prompt_id: str
    round: int
    status: str
    item_id: str | None
    assignment_id: str | None
    judgment_id: str | None
    continued_response_id: str | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class LiveCandidate:
    """One sampled answer of a live turn, from request to stored response.

    ``status``: pending, streaming, complete, failed, broken, cancelled, duplicate or
    regenerated; ``text`` is set only when complete.
    """

    candidate_id: str
    conversation_id: str
    turn: int
    round: int
    slot: int
    endpoint: str
    model: str
    revision: str | None
    params: dict[str, Any]
    status: str
    owner: str | None
    text: str | None
    finish_reason: str | None
    response_id: str | None
    error: str | None
    attempts: int
    ttft_ms: float | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
