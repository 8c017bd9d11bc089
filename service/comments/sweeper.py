"""Find comments left pending too long (a lost message, a dead worker, Redis was down)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from service.core.tables import Comment, CommentStatus, utcnow

__all__ = ["PendingSummary", "claim_stale_pending", "pending_summary"]


@dataclass(frozen=True)
class PendingSummary:
    count: int
    oldest: datetime | None  # when the longest-waiting pending comment was submitted


def pending_summary(session: Session) -> PendingSummary:
    """How many comments wait for a decision, and since when the oldest has."""
    count, oldest = session.execute(
        select(func.count(), func.min(Comment.created_at)).where(
            Comment.status == CommentStatus.PENDING
        )
    ).one()
    return PendingSummary(int(count), oldest)


def claim_stale_pending(
    session: Session, *, older_than_seconds: float, limit: int = 5000
) -> list[str]:
    """Ids of comments pending longer than the limit and not swept within it; marks them swept.

    The mark keeps a backlog from being enqueued again on every sweep while it is still queued.
    """
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_seconds)
    ids = list(
        session.scalars(
            select(Comment.id)
            .where(
                Comment.status == CommentStatus.PENDING,
                Comment.created_at <= cutoff,
                or_(Comment.swept_at.is_(None), Comment.swept_at <= cutoff),
            )
            .order_by(Comment.created_at)
            .limit(limit)
        )
    )
    if ids:
        session.execute(
            update(Comment)
            .where(Comment.id.in_(ids))
            .values(swept_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids
