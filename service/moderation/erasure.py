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

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

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


def erase_author(session: Session, site_id: int, external_id: str, *, actor: str) -> dict[str, Any]:
    """Erase every comment of the site's author `external_id`, and the id itself."""
    author = session.scalar(
        select(Author).where(Author.site_id == site_id, Author.external_id == external_id)
    )
    if author is None:
        raise NotFound(f"no author with id {external_id!r} on this site", field="author_id")
    now, erased = utcnow(), Erased()
    ids = list(session.scalars(select(Comment.id).where(Comment.author_id == author.id)))
    for start in range(0, len(ids), CHUNK):
        erased.add(erase_comments(session, ids[start : start + CHUNK], now=now))
    # The trust changes about this author name them in their data.
    changes = session.scalars(
        select(AuditEntry).where(
            AuditEntry.site_id == site_id, AuditEntry.event == "author.trust_changed"
        )
    )
    for entry in changes:
        if entry.data.get("author_id") == external_id:
            entry.data = {**scrubbed(entry.data), "author_id": ERASED_AUTHOR}
    author.external_id = f"{ERASED_AUTHOR}-{author.id}"
    session.add(
        AuditEntry(
            site_id=site_id,
            comment_id=None,
            actor=actor,
            event="author.erased",
            data={"author": author.id, **asdict(erased)},
            created_at=now,
        )
    )
    session.flush()
    return {"author_id": external_id, "erased": asdict(erased), "erased_at": now}


def set_retention(
    session: Session, site_name: str, days: int | None, *, actor: str
) -> dict[str, Any]:
    """Keep the site's comment text `days` days (None: for ever)."""
    if days is not None and not 1 <= days <= MAX_RETENTION_DAYS:
        raise InvalidInput(f"days must be 1 to {MAX_RETENTION_DAYS}, or null", field="days")
    site = get_site(session, site_name)
    previous, site.retention_days = site.retention_days, days
    session.add(
        AuditEntry(
            site_id=site.id,
            comment_id=None,
            actor=actor,
            event="site.retention_changed",
            data={"from": previous, "to": days},
            created_at=utcnow(),
        )
    )
    session.flush()
    return site_view(site)


def purge_expired(session: Session, *, now: datetime | None = None, limit: int = CHUNK) -> int:
    """Erase up to `limit` comments older than their site's retention; how many (call again
    until 0: each call is one transaction's worth)."""
    now = now or utcnow()
    done = 0
    sites = session.execute(
        select(Site.id, Site.retention_days).where(Site.retention_days.is_not(None))
    )
    for site_id, days in sites.all():
        if done >= limit:
            break
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        ids = list(
            session.scalars(
                select(Comment.id)
                .where(
                    Comment.site_id == site_id,
                    Comment.created_at < cutoff,
                    Comment.erased_at.is_(None),
                )
                .order_by(Comment.created_at)
                .limit(limit - done)
            )
        )
        if not ids:
            continue
        erased = erase_comments(session, ids, now=now)
        session.add(
            AuditEntry(
                site_id=site_id,
                comment_id=None,
                actor="retention",
                event="retention.purged",
                data={"older_than_days": days, **asdict(erased)},
                created_at=now,
            )
        )
        done += erased.comments
    session.flush()
    return done
