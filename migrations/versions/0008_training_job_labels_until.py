"""Training jobs remember the newest label they read, for the schedule

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 17:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("labels_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_training_jobs_site_finished", ["site_id", "finished_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("training_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_training_jobs_site_finished")
        batch_op.drop_column("labels_until")
