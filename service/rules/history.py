"""What an author's earlier comments say of them: how many were approved, and how many of
those decided lately were rejected (Coral's "recent comment history")."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Executable, Integer, bindparam, case, func, select, union_all
from sqlalchemy.orm import Session

from service.core.tables import Comment, CommentStatus

__all__ = ["AuthorHistory", "author_histories"]


@dataclass(frozen=True)
class AuthorHistory:
    approved: int  # by the model or a person, counted up to the cap asked for
    recent_decided: int  # approved or rejected, submitted since the window's start
    recent_rejected: int


NO_HISTORY = AuthorHistory(0, 0, 0)


@functools.lru_cache(maxsize=128)
def _approved_statement(authors: int) -> Executable:
    """One capped count per author, UNIONed: built once per number of authors, since building
    the statement costs more than running it."""
    cap = bindparam("cap", type_=Integer)
    parts = []
    for i in range(authors):
        author = bindparam(f"a{i}", type_=Integer)
        parts.append(
            select(author.label("author_id"))
            .select_from(Comment)
            .where(Comment.author_id == author, Comment.status == CommentStatus.APPROVED)
            .limit(cap)
            .subquery()
            .select()
        )
    capped = union_all(*parts).subquery()
    return select(capped.c.author_id, func.count()).group_by(capped.c.author_id)


def _approved(session: Session, ids: list[int], cap: int) -> dict[int, int]:
    """Each author's approved comments, counting no further than `cap`: an author with years
    of comments costs what a newcomer does (ix_comments_author_status, a bounded range each)."""
    if cap <= 0:
        return {}
    values = {"cap": cap, **{f"a{i}": author for i, author in enumerate(ids)}}
    rows = session.execute(_approved_statement(len(ids)), values)
    return {int(author): int(n) for author, n in rows}


def _recent(session: Session, ids: list[int], since: datetime) -> dict[int, tuple[int, int]]:
    """Decided and rejected comments since `since` (ix_comments_author_created)."""
    rejected = case((Comment.status == CommentStatus.REJECTED, 1), else_=0)
    rows = session.execute(
        select(Comment.author_id, func.count(), func.sum(rejected))
        .where(
            Comment.author_id.in_(ids),
            Comment.created_at >= since,
            Comment.status.in_([CommentStatus.APPROVED, CommentStatus.REJECTED]),
        )
        .group_by(Comment.author_id)
    )
    return {int(author): (int(n), int(r or 0)) for author, n, r in rows}


def author_histories(
    session: Session, author_ids: Iterable[int], *, since: datetime, approved_cap: int
) -> dict[int, AuthorHistory]:
    """Two queries for all the authors; an author with no decided comment: nothing."""
    ids = sorted(set(author_ids))
    if not ids:
        return {}
    approved = _approved(session, ids, approved_cap)
    recent = _recent(session, ids, since)
    return {i: AuthorHistory(approved.get(i, 0), *recent.get(i, (0, 0))) for i in ids}
