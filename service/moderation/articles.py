"""A site's articles and sections as the admin console lists them: how many comments each
has, how often they were held, and whether it has a policy of its own, so an admin sees where
an override is worth making."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.core.tables import Comment, Decision, PolicyOverride

__all__ = ["LIST_LIMIT", "ThreadRow", "site_articles", "site_sections"]

LIST_LIMIT = 50


@dataclass(frozen=True)
class ThreadRow:
    """An article or a section of the site, as the console lists them."""

    key: str
    comments: int
    decided: int
    held: int
    last_comment_at: datetime | None
    has_override: bool

    @property
    def hold_rate(self) -> float | None:
        return self.held / self.decided if self.decided else None


def _threads(
    session: Session,
    site_id: int,
    *,
    column: InstrumentedAttribute[Any],
    scope: str,
    query: str | None,
    limit: int,
) -> list[ThreadRow]:
    conditions: list[ColumnElement[bool]] = [Comment.site_id == site_id, column.is_not(None)]
    if query:
        conditions.append(column.icontains(query, autoescape=True))
    last_at = func.max(Comment.created_at)
    rows = session.execute(
        select(
            column,
            func.count(Comment.id),
            func.count(Decision.id),
            func.coalesce(func.sum(case((Decision.action == "hold", 1), else_=0)), 0),
            last_at,
        )
        .outerjoin(Decision, Decision.comment_id == Comment.id)
        .where(*conditions)
        .group_by(column)
        .order_by(last_at.desc(), column)
        .limit(limit)
    ).all()
    keys = [row[0] for row in rows]
    overridden = set(
        session.scalars(
            select(PolicyOverride.key).where(
                PolicyOverride.site_id == site_id,
                PolicyOverride.scope == scope,
                PolicyOverride.key.in_(keys),
            )
        )
    )
    return [
        ThreadRow(key, int(comments), int(decided), int(held), at, key in overridden)
        for key, comments, decided, held, at in rows
    ]


def site_articles(
    session: Session, site_id: int, *, query: str | None = None, limit: int = LIST_LIMIT
) -> list[ThreadRow]:
    """The site's articles with comments, latest comment first; `query` a substring of their
    ids (any case)."""
    return _threads(
        session, site_id, column=Comment.article_id, scope="article", query=query, limit=limit
    )


def site_sections(
    session: Session, site_id: int, *, query: str | None = None, limit: int = LIST_LIMIT
) -> list[ThreadRow]:
    """The site's sections with comments, latest comment first; `query` as for articles."""
    return _threads(
        session, site_id, column=Comment.section, scope="section", query=query, limit=limit
    )
