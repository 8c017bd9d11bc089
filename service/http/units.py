"""A route's unit of work: run it in a session, commit, then act on what it produced.

Every route and page that touches the database goes through here, so that none can forget the
order that matters: the session commits before anything is enqueued (a worker must never look
for a row it cannot see yet), and the blocking database and broker calls run on a worker thread,
never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.http.state import AppState

__all__ = ["in_session", "run_unit"]

T = TypeVar("T")


def run_unit(
    sessions: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    after_commit: Callable[[T], object] | None = None,
) -> T:
    """`work(session)` committed, then `after_commit(result)`; for code already off the loop
    (the pages' plain `def` handlers, which FastAPI runs on a worker thread)."""
    with session_scope(sessions) as session:
        result = work(session)
    if after_commit is not None:
        after_commit(result)
    return result


async def in_session(
    state: AppState,
    work: Callable[[Session], T],
    *,
    after_commit: Callable[[T], object] | None = None,
) -> T:
    """`run_unit` on a worker thread: what an `async def` route awaits."""
    return await run_in_threadpool(run_unit, state.sessions, work, after_commit=after_commit)
