"""An author's history on SQLite and PostgreSQL: approved comments counted up to the cap the
rules ask for, and decided ones within the window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.tables import Author, Comment, utcnow
from service.rules.history import author_histories
from service.sites.keys import get_or_create_site


def test_history_counts_approved_up_to_the_cap_and_decided_within_the_window(
    sessions: sessionmaker[Session],
) -> None:
    statuses = ["approved"] * 5 + ["rejected"] * 2 + ["held", "pending"]
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        ids = [
            submit_comment(
                session,
                site_id,
                CommentIn(external_id=f"h{i}", article_id="a", author_id="reader", text="hi"),
                max_text_chars=100,
            ).comment.id
            for i in range(len(statuses))
        ]
        for comment_id, status in zip(ids, statuses, strict=True):
            session.execute(update(Comment).where(Comment.id == comment_id).values(status=status))
        # Two of the approvals are old: outside a week's window.
        old = utcnow() - timedelta(days=30)
        session.execute(update(Comment).where(Comment.id.in_(ids[:2])).values(created_at=old))
        author = session.get_one(Comment, ids[0]).author_id
        other = Author(site_id=site_id, external_id="silent")
        session.add(other)
        session.flush()
        since = utcnow() - timedelta(days=7)
        found = author_histories(session, [author, other.id], since=since, approved_cap=3)
        assert (found[author].approved, found[author].recent_decided) == (3, 5)
        assert found[author].recent_rejected == 2
        assert found[other.id].approved == 0 and found[other.id].recent_decided == 0
        uncapped = author_histories(session, [author], since=since, approved_cap=100)
        assert uncapped[author].approved == 5
