"""Erase what readers wrote: all of one author's comments when they ask (a legal duty for
European newsrooms), and every comment older than a site's retention.

Erasing a comment blanks its text and metadata and everything made from them: its labels
(they copy the text) are deleted; its decision keeps the action, scores, model and reason
codes but loses the matched words and spans; moderators' notes on it, the notes of the audit
entries about it, and the payloads of its webhook deliveries (kept for retries) lose their text
and words. What stays is what counts need: the row, its status, when it came and was decided.
A comment still pending or held is rejected as it is erased: there is nothing left to publish
or review. An erased author's id is replaced on the author row and in the audit trail, and the
erasure itself is audited with counts only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.core.audit import audit_site
from service.core.db import session_scope
from service.core.errors import InvalidInput, NotFound
from service.core.tables import (
    AuditEntry,
    Author,
    Comment,
    CommentStatus,
    Decision,
    Label,
    Review,
    Site,
    WebhookDelivery,
    utcnow,
)
from service.sites.sites import get_site, site_view

__all__ = [
    "MAX_RETENTION_DAYS",
    "Erased",
    "erase_author",
    "erase_comments",
    "purge_expired",
    "set_retention",
]

# Keys that hold what a reader wrote, or words taken from it, wherever they are nested.
PERSONAL_KEYS = frozenset({"text", "spans", "matched", "note", "metadata", "detail", "author_id"})
ERASED_AUTHOR = "erased"
MAX_RETENTION_DAYS = 36_500
CHUNK = 500  # comments a transaction erases, so a large purge never holds the database long


@dataclass
class Erased:
    comments: int = 0
    labels: int = 0
    decisions: int = 0
    deliveries: int = 0

    def add(self, other: Erased) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)


def scrubbed(value: Any) -> Any:
    """`value` without PERSONAL_KEYS at any depth."""
    if isinstance(value, dict):
        return {k: scrubbed(v) for k, v in value.items() if k not in PERSONAL_KEYS}
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    return value


def erase_comments(session: Session, comment_ids: Sequence[str], *, now: datetime) -> Erased:
    """Erase these comments (at most a few hundred: callers chunk) and what came of them."""
    ids = list(comment_ids)
    if not ids:
        return Erased()
    undecided = (CommentStatus.PENDING, CommentStatus.HELD)
    session.execute(
        update(Comment)
        .where(Comment.id.in_(ids), Comment.status.in_(undecided))
        .values(status=CommentStatus.REJECTED, reason_tags="erased", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Comment)
        .where(Comment.id.in_(ids))
        .values(text="", extra={}, erased_at=now, version=Comment.version + 1)
        .execution_options(synchronize_session=False)
    )
    labels = session.execute(
        delete(Label).where(Label.comment_id.in_(ids)).execution_options(synchronize_session=False)
    )
    session.execute(
        update(Review)
        .where(Review.comment_id.in_(ids))
        .values(note="")
        .execution_options(synchronize_session=False)
    )
    decisions = _scrub_rows(session, Decision, Decision.comment_id.in_(ids), "reasons")
    _scrub_rows(session, AuditEntry, AuditEntry.comment_id.in_(ids), "data")
    deliveries = _scrub_rows(
        session, WebhookDelivery, WebhookDelivery.comment_id.in_(ids), "payload"
    )
    return Erased(len(ids), int(getattr(labels, "rowcount", 0) or 0), decisions, deliveries)


def _scrub_rows(session: Session, table: Any, where: Any, column: str) -> int:
    """Drop PERSONAL_KEYS from a JSON column of the rows `where` selects; how many rows."""
    rows = session.execute(select(table.id, getattr(table, column)).where(where)).all()
    for row_id, value in rows:
        session.execute(
            update(table)
            .where(table.id == row_id)
            .values({column: scrubbed(value)})
            .execution_options(synchronize_session=False)
        )
    return len(rows)


def _unerased(session: Session, author_id: int, limit: int | None) -> list[str]:
    query = select(Comment.id).where(Comment.author_id == author_id, Comment.erased_at.is_(None))
    return list(session.scalars(query.limit(limit) if limit is not None else query))


def erase_author(
    sessions: sessionmaker[Session], site_id: int, external_id: str, *, actor: str
) -> dict[str, Any]:
    """Erase every comment of the site's author `external_id`, and the id itself.

    A session factory, not a session: an author of years holds thousands of comments, and one
    transaction over all of them would hold SQLite's only write lock (and intake with it) for
    seconds. Each chunk of comments commits on its own, then one last transaction erases any
    comment stored meanwhile and replaces the id. Run again after a failure, it goes on where
    it stopped: the id is replaced last.
    """
    now, erased = utcnow(), Erased()
    with session_scope(sessions) as session:
        author = session.scalar(
            select(Author).where(Author.site_id == site_id, Author.external_id == external_id)
        )
        if author is None:
            raise NotFound(f"no author with id {external_id!r} on this site", field="author_id")
        author_id = author.id
    while True:
        with session_scope(sessions) as session:
            chunk = erase_comments(session, _unerased(session, author_id, CHUNK), now=now)
        erased.add(chunk)
        if chunk.comments < CHUNK:
            break
    with session_scope(sessions) as session:
        erased.add(erase_comments(session, _unerased(session, author_id, None), now=now))
        _forget_author(session, session.get_one(Author, author_id), external_id)
        audit_site(
            session,
            site_id,
            actor,
            "author.erased",
            {"author": author_id, **asdict(erased)},
            at=now,
        )
    return {"author_id": external_id, "erased": asdict(erased), "erased_at": now}


def _forget_author(session: Session, author: Author, external_id: str) -> None:
    """Replace the author's id on its row and in the trust changes recorded about it."""
    changes = session.scalars(
        select(AuditEntry).where(
            AuditEntry.site_id == author.site_id, AuditEntry.event == "author.trust_changed"
        )
    )
    for entry in changes:
        if entry.data.get("author_id") == external_id:
            entry.data = {**scrubbed(entry.data), "author_id": ERASED_AUTHOR}
    # Unguessable: a submitter sending this id must never reach the erased author's row.
    author.external_id = f"{ERASED_AUTHOR}-{uuid.uuid4().hex}"
    session.flush()


def set_retention(
    session: Session, site_name: str, days: int | None, *, actor: str
) -> dict[str, Any]:
    """Keep the site's comment text `days` days (None: for ever)."""
    if days is not None and not 1 <= days <= MAX_RETENTION_DAYS:
        raise InvalidInput(f"days must be 1 to {MAX_RETENTION_DAYS}, or null", field="days")
    site = get_site(session, site_name)
    previous, site.retention_days = site.retention_days, days
    audit_site(session, site.id, actor, "site.retention_changed", {"from": previous, "to": days})
    session.flush()
    return site_view(site)


def purge_expired(session: Session, *, now: datetime | None = None, limit: int = CHUNK) -> int:
    """Erase up to `limit` comments older than their site's retention, and the site's labels
    as old; how many comments (call again until below `limit`: a call is one transaction)."""
    now = now or utcnow()
    done = 0
    sites = session.execute(
        select(Site.id, Site.retention_days).where(Site.retention_days.is_not(None))
    )
    for site_id, days in sites.all():
        if done >= limit:
            break
        if days is not None:
            erased = _purge_site(session, site_id, now - timedelta(days=days), limit - done, now)
            if erased.comments or erased.labels:
                data = {"older_than_days": days, **asdict(erased)}
                audit_site(session, site_id, "retention", "retention.purged", data, at=now)
            done += erased.comments
    session.flush()
    return done


def _purge_site(
    session: Session, site_id: int, cutoff: datetime, limit: int, now: datetime
) -> Erased:
    ids = session.scalars(
        select(Comment.id)
        .where(Comment.site_id == site_id, Comment.erased_at.is_(None), Comment.created_at < cutoff)
        .order_by(Comment.created_at)
        .limit(limit)
    )
    erased = erase_comments(session, list(ids), now=now)
    # Labels that belong to no stored comment (imported, Perspective's suggestscore) hold
    # comment text too, and age out by the same rule.
    labels = session.execute(
        delete(Label)
        .where(Label.site_id == site_id, Label.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    erased.labels += int(getattr(labels, "rowcount", 0) or 0)
    return erased
