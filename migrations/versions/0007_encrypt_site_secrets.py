"""Site secrets (webhook, Coral signing) encrypted at rest under a key derived from the secret key

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:40:00.000000
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from service.core.secrets import SEALED_PREFIX, at_rest_keyring

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("webhook_secret", "coral_signing_secret")
PLAIN_LENGTH = 200
# sealed_length(200) in service/core/secrets.py, written out: a revision must not change when
# the code does. A Fernet token of 200 four-byte characters, base64, behind "enc:v1:".
SEALED_LENGTH = 1171


def upgrade() -> None:
    with _foreign_keys_off_on_sqlite():
        _resize(PLAIN_LENGTH, SEALED_LENGTH)
        _rewrite(_seal_unless_sealed)


def downgrade() -> None:
    with _foreign_keys_off_on_sqlite():
        _rewrite(_open)
        _resize(SEALED_LENGTH, PLAIN_LENGTH)


def _seal_unless_sealed(value: str) -> str:
    # On SQLite the sealed rows commit a moment before the new version does: a run stopped
    # in between goes again over sealed values, which must open under this key (else it is
    # not the key they were sealed with, and sealing them twice would hide that).
    if value.startswith(SEALED_PREFIX):
        at_rest_keyring().open(value)
        return value
    return at_rest_keyring().seal(value)


def _open(value: str) -> str:
    return at_rest_keyring().open(value)


def _resize(old: int, new: int) -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=old),
                type_=sa.String(length=new),
                existing_nullable=True,
            )


def _rewrite(change: Callable[[str], str]) -> None:
    """Every stored secret through `change`, row by row (a deployment has few sites)."""
    sites = sa.table("sites", sa.column("id", sa.Integer), *(sa.column(c) for c in COLUMNS))
    bind = op.get_bind()
    for row in bind.execute(sa.select(sites)).mappings().all():
        values = {c: change(row[c]) for c in COLUMNS if row[c] is not None}
        if values:
            bind.execute(sites.update().where(sites.c.id == row["id"]).values(values))


@contextmanager
def _foreign_keys_off_on_sqlite() -> Iterator[None]:
    """SQLite changes a column's type by copying the table and dropping the old one; with
    foreign keys on, that drop deletes every row that references a site (ON DELETE CASCADE)."""
    context = op.get_context()
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    # The pragma is ignored inside a transaction, so it is set between two.
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
    if op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar() != 0:
        raise RuntimeError("could not turn SQLite's foreign keys off to rebuild `sites`")
    yield
    broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"rebuilding `sites` left rows with no site: {broken[:5]}")
    # On failure above nothing is turned back on: committing here would keep half the work,
    # and the connection (the pragma's scope) is closed when the migration ends.
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=ON")
