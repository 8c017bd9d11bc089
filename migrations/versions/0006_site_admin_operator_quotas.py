"""Roles per site: admin keys become operator keys; sites get their own key quota

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing admin key could act on every site: it keeps that power, under its new
    # name. An operator narrows it by issuing site_admin keys and revoking these.
    op.execute("UPDATE api_keys SET role = 'operator' WHERE role = 'admin'")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_requests_per_second", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("key_burst", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("key_burst")
        batch_op.drop_column("key_requests_per_second")
    # site_admin keys were narrower than admin keys: they go back as moderators, not admins.
    op.execute("UPDATE api_keys SET role = 'moderator' WHERE role = 'site_admin'")
    op.execute("UPDATE api_keys SET role = 'admin' WHERE role = 'operator'")
