"""Ending a moderator's web session on the server, so a cookie copied before sign-out is void."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service.core.tables import EndedWebSession, utcnow
from service.web.auth import WebSession

__all__ = ["end_session", "session_ended"]


def _digest(web: WebSession) -> str:
    return hashlib.sha256(web.csrf.encode()).hexdigest()


def end_session(session: Session, web: WebSession, *, lifetime: timedelta) -> None:
    """Record the session as ended, and forget those older than a session can live."""
    now = utcnow()
    session.execute(delete(EndedWebSession).where(EndedWebSession.ended_at < now - lifetime))
    if session.get(EndedWebSession, _digest(web)) is None:
        session.add(EndedWebSession(token_hash=_digest(web), ended_at=now))
    session.flush()


def session_ended(session: Session, web: WebSession) -> bool:
    return session.get(EndedWebSession, _digest(web)) is not None
