"""An index on an author's comments by time, for the rules that read an author's recent past

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 20:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_comments_author_created", "comments", ["author_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_comments_author_created", table_name="comments")
