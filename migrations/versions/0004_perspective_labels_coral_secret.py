"""Perspective suggestscore labels (client token, community) and the site's Coral signing secret

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("coral_signing_secret", sa.String(length=200), nullable=True))
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_token", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("community_id", sa.String(length=300), nullable=True))
        batch_op.create_unique_constraint(
            "uq_labels_site_client_token", ["site_id", "client_token"]
        )


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_constraint("uq_labels_site_client_token", type_="unique")
        batch_op.drop_column("community_id")
        batch_op.drop_column("client_token")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("coral_signing_secret")
