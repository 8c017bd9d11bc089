"""Authors of a site: their standing (trust) set by moderators, and their history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import InvalidInput, NotFound
from service.core.tables import AuditEntry, Author, Comment, Trust, utcnow
from service.moderation.review_queue import author_histories
from service.moderation.reviews import check_note

__all__ = ["author_view", "set_author_trust"]

RECENT_COMMENTS = 20


def _author(session: Session, site_id: int, external_id: str) -> Author:
    author = session.scalar(
        select(Author).where(Author.site_id == site_id, Author.external_id == external_id)
    )
    if author is None:
        raise NotFound(f"no author with id {external_id!r} on this site", field="author_id")
    return author


def author_view(session: Session, site_id: int, external_id: str) -> dict[str, Any]:
    """Trust, counts by status, the latest comments and the trust changes of one author."""
    author = _author(session, site_id, external_id)
    recent = session.scalars(
        select(Comment)
        .where(Comment.author_id == author.id)
        .order_by(Comment.created_at.desc())
        .limit(RECENT_COMMENTS)
    ).unique()
    changes = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.site_id == site_id,
            AuditEntry.comment_id.is_(None),
            AuditEntry.event == "author.trust_changed",
        )
        .order_by(AuditEntry.id)
    )
    return {
        "id": author.external_id,
        "trust": author.trust,
        "history": author_histories(session, [author.id])[author.id],
        "recent": [
            {
                "id": c.id,
                "external_id": c.external_id,
                "status": c.status,
                "text": c.text,
                "created_at": c.created_at,
            }
            for c in recent
        ],
        "trust_changes": [
            {"at": e.created_at, "actor": e.actor, **e.data}
            for e in changes
            if e.data.get("author_id") == external_id
        ],
    }


def set_author_trust(
    session: Session, site_id: int, external_id: str, trust: str, *, actor: str, note: str = ""
) -> dict[str, Any]:
    """Mark an author trusted, premoderated, banned or normal again; recorded in the audit log.

    It applies to comments decided from now on; comments already decided keep their decision.
    An author the site never sent a comment for is created, so a site can ban ahead of time.
    """
    if trust not in Trust.ALL:
        raise InvalidInput(f"trust must be one of {', '.join(Trust.ALL)}", field="trust")
    check_note(note)
    author = session.scalar(
        select(Author).where(Author.site_id == site_id, Author.external_id == external_id)
    )
    if author is None:
        author = Author(site_id=site_id, external_id=external_id, trust=Trust.NORMAL)
        session.add(author)
        session.flush()
    previous = author.trust
    author.trust = trust
    session.add(
        AuditEntry(
            site_id=site_id,
            comment_id=None,
            actor=actor,
            event="author.trust_changed",
            data={"author_id": external_id, "from": previous, "to": trust, "note": note},
            created_at=utcnow(),
        )
    )
    session.flush()
    return author_view(session, site_id, external_id)
