"""Intake stores a comment once per (site, external id), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.comments.intake import get_comment, submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.errors import CommentNotFound, IdempotencyConflict, InvalidInput
from service.core.tables import Author, Comment
from service.sites.keys import get_or_create_site


def _payload(**changes: object) -> CommentIn:
    base: dict[str, object] = {
        "external_id": "c-1",
        "article_id": "a-1",
        "author_id": "u-1",
        "text": "Hello there.",
    }
    return CommentIn.model_validate({**base, **changes})


def _site(sessions: sessionmaker[Session], name: str = "news") -> int:
    with session_scope(sessions) as session:
        return get_or_create_site(session, name).id


def test_new_comment_is_stored_pending_with_its_author(sessions: sessionmaker[Session]) -> None:
    site_id = _site(sessions)
    with session_scope(sessions) as session:
        submitted = submit_comment(
            session, site_id, _payload(section="world", metadata={"k": 1}), max_text_chars=100
        )
    assert submitted.created
    with session_scope(sessions) as session:
        stored = get_comment(session, site_id, submitted.comment.id)
        assert stored.status == "pending"
        assert stored.author.external_id == "u-1"
        assert stored.section == "world"
        assert stored.extra == {"k": 1}
        assert stored.created_at.tzinfo is not None


def test_resubmission_returns_the_first_comment(sessions: sessionmaker[Session]) -> None:
    site_id = _site(sessions)
    with session_scope(sessions) as session:
        first = submit_comment(session, site_id, _payload(), max_text_chars=100)
    with session_scope(sessions) as session:
        again = submit_comment(session, site_id, _payload(), max_text_chars=100)
    assert not again.created
    assert again.comment.id == first.comment.id
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 1
        assert session.scalar(select(func.count()).select_from(Author)) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [({"text": "Other."}, "text"), ({"article_id": "a-2"}, "article_id"),
     ({"author_id": "u-2"}, "author_id")],
)  # fmt: skip
def test_reused_external_id_for_another_comment_is_a_conflict(
    sessions: sessionmaker[Session], change: dict[str, str], field: str
) -> None:
    site_id = _site(sessions)
    with session_scope(sessions) as session:
        submit_comment(session, site_id, _payload(), max_text_chars=100)
    with pytest.raises(IdempotencyConflict) as raised, session_scope(sessions) as session:
        submit_comment(session, site_id, _payload(**change), max_text_chars=100)
    assert raised.value.field == field


def test_text_over_the_configured_limit_is_refused(sessions: sessionmaker[Session]) -> None:
    site_id = _site(sessions)
    with pytest.raises(InvalidInput) as raised, session_scope(sessions) as session:
        submit_comment(session, site_id, _payload(text="x" * 11), max_text_chars=10)
    assert raised.value.field == "text"
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 0


def test_same_external_id_on_two_sites_is_two_comments(sessions: sessionmaker[Session]) -> None:
    news, other = _site(sessions, "news"), _site(sessions, "other")
    with session_scope(sessions) as session:
        a = submit_comment(session, news, _payload(), max_text_chars=100)
        b = submit_comment(session, other, _payload(), max_text_chars=100)
    assert a.comment.id != b.comment.id
    with pytest.raises(CommentNotFound), session_scope(sessions) as session:
        get_comment(session, other, a.comment.id)
