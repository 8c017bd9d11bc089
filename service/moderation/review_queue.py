"""The moderators' queue: held comments of a site, filtered, sorted, paged, and leased.

A claim is a lease on a held comment: `claim_items` gives up to N unclaimed (or expired)
comments to one moderator's key for `claim_seconds`, so two moderators never review the same
comment; a lease simply runs out, nothing has to release it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from service.core.errors import InvalidInput
from service.core.tables import AuditEntry, Author, Comment, CommentStatus, Decision, utcnow

__all__ = [
    "MAX_PAGE",
    "QueueFilters",
    "QueuePage",
    "author_histories",
    "claim_items",
    "list_queue",
    "queue_item",
]

MAX_PAGE = 100
Sort = Literal["score", "age"]


@dataclass(frozen=True)
class QueueFilters:
    article_id: str | None = None
    section: str | None = None
    author_id: str | None = None  # the site's external author id
    reason: str | None = None  # a reason code, e.g. attribute_over_threshold
    attribute: str | None = None  # held for this attribute
    since: datetime | None = None
    until: datetime | None = None
    # Held (decided) at or after: what a live page asks for, since a comment may be submitted
    # long before it is decided (when the queue was away).
    held_since: datetime | None = None


@dataclass(frozen=True)
class QueuePage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(sort: Sort, comment: Comment) -> str:
    key = comment.score if sort == "score" else comment.created_at.isoformat()
    raw = orjson.dumps({"s": sort, "k": key, "id": comment.id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(sort: Sort, cursor: str) -> tuple[Any, str]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["s"] != sort:
            raise ValueError("cursor is for another sort order")
        key = float(data["k"]) if sort == "score" else datetime.fromisoformat(data["k"])
        return key, str(data["id"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidInput(
            "cursor is not one this API returned (or was made for another sort)",
            field="cursor",
        ) from exc


def _filtered(query: Select[Any], site_id: int, filters: QueueFilters) -> Select[Any]:
    query = query.where(Comment.site_id == site_id, Comment.status == CommentStatus.HELD)
    if filters.article_id is not None:
        query = query.where(Comment.article_id == filters.article_id)
    if filters.section is not None:
        query = query.where(Comment.section == filters.section)
    if filters.author_id is not None:
        query = query.join(Author, Author.id == Comment.author_id).where(
            Author.external_id == filters.author_id
        )
    if filters.reason is not None:
        query = query.where(Comment.reason_tags.contains(f" code:{filters.reason} "))
    if filters.attribute is not None:
        query = query.where(Comment.reason_tags.contains(f" attribute:{filters.attribute} "))
    if filters.since is not None:
        query = query.where(Comment.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(Comment.created_at < filters.until)
    if filters.held_since is not None:
        query = query.where(Comment.updated_at >= filters.held_since)
    return query


def _ordered(query: Select[Any], sort: Sort, after: tuple[Any, str] | None) -> Select[Any]:
    # Keyset pagination: a page costs the same however deep it is, and rows decided meanwhile
    # neither repeat nor vanish between pages. Highest score first; oldest first by age.
    if sort == "score":
        if after is not None:
            key, last_id = after
            query = query.where(
                or_(Comment.score < key, and_(Comment.score == key, Comment.id > last_id))
            )
        return query.order_by(Comment.score.desc(), Comment.id)
    if after is not None:
        key, last_id = after
        query = query.where(
            or_(Comment.created_at > key, and_(Comment.created_at == key, Comment.id > last_id))
        )
    return query.order_by(Comment.created_at, Comment.id)


def author_histories(session: Session, author_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per author: how many comments, and how many of them are approved, rejected, held."""
    counts: dict[int, dict[str, int]] = {
        a: {"comments": 0, "approved": 0, "rejected": 0, "held": 0, "pending": 0}
        for a in author_ids
    }
    if not author_ids:
        return counts
    rows = session.execute(
        select(Comment.author_id, Comment.status, func.count())
        .where(Comment.author_id.in_(set(author_ids)))
        .group_by(Comment.author_id, Comment.status)
    ).all()
    for author_id, status, n in rows:
        counts[author_id][status] = n
        counts[author_id]["comments"] += n
    return counts


def queue_item(
    comment: Comment, decision: Decision | None, history: dict[str, int] | None
) -> dict[str, Any]:
    """What a moderator sees of one held comment."""
    return {
        "id": comment.id,
        "external_id": comment.external_id,
        "version": comment.version,
        "status": comment.status,
        "text": comment.text,
        "article_id": comment.article_id,
        "section": comment.section,
        "parent_id": comment.parent_id,
        "created_at": comment.created_at,
        "score": comment.score,
        "scores": decision.scores if decision else {},
        "reasons": decision.reasons if decision else [],
        "model_version": decision.model_version if decision else None,
        "decided_at": decision.decided_at if decision else None,
        "author": {
            "id": comment.author.external_id,
            "trust": comment.author.trust,
            "history": history or {},
        },
        "claimed_by": comment.claimed_by,
        "claim_expires_at": comment.claim_expires_at,
    }


def _items(session: Session, comments: Sequence[Comment]) -> list[dict[str, Any]]:
    histories = author_histories(session, [c.author_id for c in comments])
    return [queue_item(c, c.decision, histories[c.author_id]) for c in comments]


def list_queue(
    session: Session,
    site_id: int,
    *,
    filters: QueueFilters | None = None,
    sort: Sort = "score",
    limit: int = 50,
    cursor: str | None = None,
) -> QueuePage:
    """One page of the site's held comments, and the cursor of the next page (None at the end)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    after = _decode_cursor(sort, cursor) if cursor else None
    query = _ordered(_filtered(select(Comment), site_id, filters or QueueFilters()), sort, after)
    comments = session.scalars(query.limit(limit + 1)).unique().all()
    more = len(comments) > limit
    comments = comments[:limit]
    next_cursor = _encode_cursor(sort, comments[-1]) if more and comments else None
    return QueuePage(_items(session, comments), next_cursor)


def _free(key_id: int, now: datetime) -> ColumnElement[bool]:
    """Nobody else holds a live lease: unclaimed, claimed by `key_id`, or the lease ran out."""
    return or_(
        Comment.claimed_by.is_(None),
        Comment.claimed_by == key_id,
        Comment.claim_expires_at <= now,
    )


def _lease(
    session: Session, candidates: Sequence[str], *, key_id: int, now: datetime, until: datetime
) -> Sequence[str]:
    """Lease those candidates still held and free; the ids it leased."""
    return session.scalars(
        update(Comment)
        .where(Comment.id.in_(candidates), Comment.status == CommentStatus.HELD, _free(key_id, now))
        .values(claimed_by=key_id, claim_expires_at=until)
        .returning(Comment.id)
        .execution_options(synchronize_session=False)
    ).all()


def _audit_claims(
    session: Session,
    site_id: int,
    claimed: Sequence[str],
    *,
    actor: str,
    until: datetime,
    now: datetime,
) -> None:
    session.add_all(
        AuditEntry(
            site_id=site_id,
            comment_id=comment_id,
            actor=actor,
            event="claimed",
            data={"until": until.isoformat()},
            created_at=now,
        )
        for comment_id in claimed
    )


def claim_items(
    session: Session,
    site_id: int,
    key_id: int,
    *,
    limit: int,
    claim_seconds: float,
    actor: str = "",
    filters: QueueFilters | None = None,
) -> list[dict[str, Any]]:
    """Lease up to `limit` held comments (highest score first) to the key `key_id`.

    The caller's own live claims count first and are renewed, so asking again never hands out
    more than `limit`. A comment is taken only if nobody else holds a live lease on it; the
    guarded UPDATE makes that true even when two moderators claim at the same instant.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    now = utcnow()
    candidates = session.scalars(
        _ordered(_filtered(select(Comment.id), site_id, filters or QueueFilters()), "score", None)
        .where(_free(key_id, now))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not candidates:
        return []
    until = now + timedelta(seconds=claim_seconds)
    claimed = _lease(session, candidates, key_id=key_id, now=now, until=until)
    if not claimed:
        return []
    _audit_claims(session, site_id, claimed, actor=actor, until=until, now=now)
    session.flush()
    session.expire_all()
    comments = (
        session.scalars(_ordered(select(Comment).where(Comment.id.in_(claimed)), "score", None))
        .unique()
        .all()
    )
    return _items(session, comments)
