"""What an author's earlier comments say of them: how many were approved, and how many of
those decided lately were rejected (Coral's "recent comment history")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.core.tables import Comment, CommentStatus

__all__ = ["AuthorHistory", "author_histories"]


@dataclass(frozen=True)
class AuthorHistory:
    approved: int  # ever, by the model or a person
    recent_decided: int  # approved or rejected, submitted since the window's start
    recent_rejected: int


NO_HISTORY = AuthorHistory(0, 0, 0)


def author_histories(
    session: Session, author_ids: Iterable[int], *, since: datetime
) -> dict[int, AuthorHistory]:
    """One grouped query for all the authors (ix_comments_author_status); unknown: nothing."""
    ids = sorted(set(author_ids))
    if not ids:
        return {}
    approved = Comment.status == CommentStatus.APPROVED
    recent = Comment.created_at >= since
    rows = session.execute(
        select(
            Comment.author_id,
            func.sum(case((approved, 1), else_=0)),
            func.sum(case((recent, 1), else_=0)),
            func.sum(case((recent & (Comment.status == CommentStatus.REJECTED), 1), else_=0)),
        )
        .where(
            Comment.author_id.in_(ids),
            Comment.status.in_([CommentStatus.APPROVED, CommentStatus.REJECTED]),
        )
        .group_by(Comment.author_id)
    )
    found = {row[0]: AuthorHistory(int(row[1]), int(row[2]), int(row[3])) for row in rows}
    return {i: found.get(i, NO_HISTORY) for i in ids}
