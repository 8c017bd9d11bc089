"""Database engines and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "PerDatabase",
    "engine_of",
    "make_engine",
    "make_session_factory",
    "rowcount",
    "session_scope",
]


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes. FULL syncs the log at every commit, so a
    # comment that got a 2xx survives a power cut too; it costs 0.19 ms a commit here
    # (0.22 vs 0.04 ms measured), two commits a comment.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _private_file(path: Path) -> None:
    """Make the database file owner-only before SQLite opens it: it holds readers' comments and
    webhook secrets. SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        # One connection per process: SQLite has one writer anyway, and threads queueing on the
        # pool wake the moment it is free, where SQLite's own busy handler sleeps up to 100 ms
        # between tries (p99 of the pipeline benchmark: see docs/operations.md).
        engine = create_engine(
            url,
            connect_args={"timeout": 10},
            pool_size=1,
            max_overflow=0,
            pool_timeout=30,
            hide_parameters=True,
        )
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    # hide_parameters: a failed statement's error (logged) must not carry a secret or a
    # reader's text that was bound to it.
    return create_engine(
        parsed, pool_size=20, max_overflow=20, pool_pre_ping=True, hide_parameters=True
    )


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched: `Session.execute` returns a CursorResult for
    them, but its signature promises only a Result."""
    return cast("CursorResult[Any]", result).rowcount


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The edge of a unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


K = TypeVar("K")
V = TypeVar("V")


def engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


class PerDatabase(Generic[K, V]):
    """What a process remembers of one database, kept apart from any other database it talks
    to (as tests do): a site id means nothing outside its database. Gone with the engine."""

    def __init__(self) -> None:
        self._kept: weakref.WeakKeyDictionary[Engine, dict[K, V]] = weakref.WeakKeyDictionary()

    def of(self, session: Session) -> dict[K, V]:
        return self._kept.setdefault(engine_of(session), {})
