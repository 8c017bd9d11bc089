"""A route's unit of work: committed before its follow-up runs, and nothing of it on failure."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.tables import Site
from service.http.units import run_unit


def _sites(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Site)) or 0


def test_the_follow_up_sees_what_the_work_committed(sessions: sessionmaker[Session]) -> None:
    seen: list[int] = []

    def work(session: Session) -> str:
        session.add(Site(name="news", policy={}))
        return "news"

    # As a worker would: another connection, looking for the row the enqueued task names.
    result = run_unit(sessions, work, after_commit=lambda _: seen.append(_sites(sessions)))
    assert result == "news"
    assert seen == [1]


def test_a_failing_unit_keeps_nothing_and_sends_nothing(sessions: sessionmaker[Session]) -> None:
    sent: list[object] = []

    def work(session: Session) -> None:
        session.add(Site(name="news", policy={}))
        session.flush()
        raise RuntimeError("refused after the write")

    with pytest.raises(RuntimeError):
        run_unit(sessions, work, after_commit=sent.append)
    assert sent == []
    assert _sites(sessions) == 0
