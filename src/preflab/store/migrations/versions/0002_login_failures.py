"""login failures kept in the database (one limit for every server process)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("failure_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("failed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("failure_id"),
    )
    op.create_index("ix_login_failures_key", "login_failures", ["key", "failed_at"], unique=False)
    op.create_index(
        op.f("ix_login_failures_failed_at"), "login_failures", ["failed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_failed_at"), table_name="login_failures")
    op.drop_index("ix_login_failures_key", table_name="login_failures")
    op.drop_table("login_failures")
