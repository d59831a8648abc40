"""The store's tables as SQLAlchemy Core ``Table`` objects, for the collect layer's statements.

Every statement of :mod:`preflab.collect` is prebuilt Core over these (no ORM loads on the
annotation path); the ORM classes of :mod:`preflab.store.tables` stay the one definition.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from preflab.store.tables import (
    ApiToken,
    Assignment,
    AuditEvent,
    GuidelineRow,
    Item,
    JudgeRow,
    JudgmentRow,
    LiveCandidateRow,
    LiveConversationRow,
    LiveTurnRow,
    ProjectEndpointRow,
    ProjectMember,
    ProjectRow,
    PromptRow,
    ResponseRow,
    SessionRow,
    User,
)

__all__ = [
    "API_TOKENS",
    "ASSIGNMENTS",
    "AUDIT_LOG",
    "GUIDELINES",
    "ITEMS",
    "JUDGES",
    "JUDGMENTS",
    "LIVE_CANDIDATES",
    "LIVE_CONVERSATIONS",
    "LIVE_TURNS",
    "MEMBERS",
    "PROJECTS",
    "PROJECT_ENDPOINTS",
    "PROMPTS",
    "RESPONSES",
    "SESSIONS",
    "USERS",
]

API_TOKENS = cast(Table, ApiToken.__table__)
ASSIGNMENTS = cast(Table, Assignment.__table__)
GUIDELINES = cast(Table, GuidelineRow.__table__)
ITEMS = cast(Table, Item.__table__)
JUDGES = cast(Table, JudgeRow.__table__)
JUDGMENTS = cast(Table, JudgmentRow.__table__)
MEMBERS = cast(Table, ProjectMember.__table__)
PROJECTS = cast(Table, ProjectRow.__table__)
PROMPTS = cast(Table, PromptRow.__table__)
RESPONSES = cast(Table, ResponseRow.__table__)
USERS = cast(Table, User.__table__)
LIVE_CANDIDATES = cast(Table, LiveCandidateRow.__table__)
LIVE_CONVERSATIONS = cast(Table, LiveConversationRow.__table__)
LIVE_TURNS = cast(Table, LiveTurnRow.__table__)
PROJECT_ENDPOINTS = cast(Table, ProjectEndpointRow.__table__)
AUDIT_LOG = cast(Table, AuditEvent.__table__)
SESSIONS = cast(Table, SessionRow.__table__)
