"""server-side sessions, token scopes/project/expiry, the audit log

Existing API tokens get the scopes that match what their owner's role could do before scopes
existed: admins ``admin, annotate, export, feedback``; annotators ``annotate, feedback``
(docs/collect.md, "Tokens and scopes"). Their public ``token_id`` is the first 16 hex digits
of the stored hash. Signed-cookie sessions of the old kind are not carried over: everyone
logs in once more after the upgrade.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("token_id", sa.String(length=32), nullable=True))
    op.add_column("api_tokens", sa.Column("scopes", sa.JSON(), nullable=True))
    op.add_column("api_tokens", sa.Column("project_id", sa.String(length=64), nullable=True))
    op.add_column("api_tokens", sa.Column("expires_at", _TS, nullable=True))
    op.execute("UPDATE api_tokens SET token_id = substr(token_hash, 1, 16)")
    # literal JSON text (no bound parameter): PostgreSQL casts an untyped literal to json
    op.execute(
        "UPDATE api_tokens SET scopes = '[\"admin\", \"annotate\", \"export\", \"feedback\"]' "
        "WHERE user_id IN (SELECT user_id FROM users WHERE role = 'admin')"
    )
    op.execute(
        "UPDATE api_tokens SET scopes = '[\"annotate\", \"feedback\"]' WHERE scopes IS NULL"
    )
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("scopes", existing_type=sa.JSON(), nullable=False)
        batch.create_index("ix_api_tokens_token_id", ["token_id"], unique=True)
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("client", sa.String(length=100), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"]),
        sa.PrimaryKeyConstraint("session_id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=300), nullable=False),
        sa.Column("target", sa.JSON(), nullable=True),
        sa.Column("client", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_token_id"), "audit_log", ["token_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_token_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_sessions_user_id"), table_name="sessions")
    op.drop_table("sessions")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_token_id")
        batch.drop_column("expires_at")
        batch.drop_column("project_id")
        batch.drop_column("scopes")
        batch.drop_column("token_id")
