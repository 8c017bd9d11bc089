"""Bring a database to the newest schema with the project's Alembic revisions."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

__all__ = ["upgrade_database"]


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Upgrade to `revision` (the newest by default; an older one for testing a migration)."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, revision)
