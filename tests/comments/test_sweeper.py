"""The sweeper finds comments pending too long, and only those."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.comments.sweeper import claim_stale_pending
from service.core.db import session_scope
from service.core.tables import Comment, utcnow
from service.sites.keys import get_or_create_site


def test_only_comments_pending_longer_than_the_limit_are_swept(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        ids = [
            submit_comment(
                session,
                site_id,
                CommentIn(external_id=str(i), article_id="a", author_id="u", text="hi"),
                max_text_chars=100,
            ).comment.id
            for i in range(3)
        ]
        old = utcnow() - timedelta(minutes=5)
        session.execute(update(Comment).where(Comment.id.in_(ids[:2])).values(created_at=old))
        session.execute(update(Comment).where(Comment.id == ids[1]).values(status="approved"))
    with session_scope(sessions) as session:
        assert claim_stale_pending(session, older_than_seconds=60) == [ids[0]]
    with session_scope(sessions) as session:
        assert claim_stale_pending(session, older_than_seconds=60) == [], "swept once a period"
    with session_scope(sessions) as session:
        session.execute(update(Comment).where(Comment.id == ids[0]).values(swept_at=old))
    with session_scope(sessions) as session:
        assert claim_stale_pending(session, older_than_seconds=60) == [ids[0]], "and again later"
