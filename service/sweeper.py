"""Find comments left pending too long (a lost message, a dead worker, Redis was down)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import Comment, CommentStatus, utcnow

__all__ = ["stale_pending_ids"]


def stale_pending_ids(
    session: Session, *, older_than_seconds: float, limit: int = 5000
) -> list[str]:
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    return list(
        session.scalars(
            select(Comment.id)
            .where(Comment.status == CommentStatus.PENDING, Comment.created_at <= cutoff)
            .order_by(Comment.created_at)
            .limit(limit)
        )
    )
