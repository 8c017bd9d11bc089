"""The embedded database is the owner's alone: it holds readers' comments and webhook secrets."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

from service.core.db import make_engine


def test_the_sqlite_file_and_its_folder_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "var" / "moderation.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    for path in (database, database.parent):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
