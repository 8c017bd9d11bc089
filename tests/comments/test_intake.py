"""Intake stores a comment once per (site, external id), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from service.comments.intake import get_comment, submit_comment
from service.comments.schemas import CommentIn
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.errors import CommentNotFound, IdempotencyConflict, InvalidInput
from service.core.migrate import upgrade_database
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


def _author_queries(sessions: sessionmaker[Session]) -> list[str]:
    """Statements on the authors table, recorded as the engine runs them."""
    seen: list[str] = []
    engine = sessions.kw["bind"]

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn: object, cursor: object, statement: str, *_: object) -> None:
        if "authors" in statement:
            seen.append(statement.split()[0])

    return seen


def test_a_known_author_costs_no_query_and_each_database_keeps_its_own(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    site_id = _site(sessions)
    seen = _author_queries(sessions)
    for n in range(3):
        with session_scope(sessions) as session:
            submit_comment(session, site_id, _payload(external_id=f"k-{n}"), max_text_chars=100)
    # New: looked up, inserted, read back. Then once more from its committed row, then never.
    assert seen == ["SELECT", "INSERT", "SELECT", "SELECT"], seen
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade_database(other_url)
    other = make_session_factory(make_engine(other_url))
    with session_scope(other) as session:
        get_or_create_site(session, "padding")  # the same site id would mean another row here
        other_site = get_or_create_site(session, "news").id
        submitted = submit_comment(session, other_site, _payload(), max_text_chars=100)
        assert submitted.comment.author_id == session.scalar(
            select(Author.id).where(Author.site_id == other_site)
        )


def test_an_author_inserted_by_a_rolled_back_submission_is_not_remembered(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    with pytest.raises(RuntimeError), session_scope(sessions) as session:
        submit_comment(session, site_id, _payload(author_id="ghost"), max_text_chars=100)
        raise RuntimeError("the request failed after the insert")
    with session_scope(sessions) as session:
        submitted = submit_comment(
            session, site_id, _payload(external_id="c-2", author_id="ghost"), max_text_chars=100
        )
    with session_scope(sessions) as session:
        assert get_comment(session, site_id, submitted.comment.id).author.external_id == "ghost"
