"""Web sessions ended by signing out, so that a copy of their cookie is worth nothing

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("ended_web_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_ended_web_sessions_ended_at", ["ended_at"], unique=False)


def downgrade() -> None:
    op.drop_table("ended_web_sessions")
