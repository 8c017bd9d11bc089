"""Intake stores a comment once per (site, external id), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.comments.intake import Submission, Submitted, get_comment, submit_batch, submit_comment
from service.comments.schemas import CommentIn
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.errors import CommentNotFound, IdempotencyConflict, InvalidInput, Unavailable
from service.core.migrate import upgrade_database
from service.core.tables import Author, Comment, new_id
from service.http.intake import IntakeBatcher, Stored
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


def _batch(site_id: int, *payloads: CommentIn) -> list[Submission]:
    return [Submission(site_id, payload, new_id()) for payload in payloads]


def _commits(sessions: sessionmaker[Session]) -> list[int]:
    seen: list[int] = []
    event.listen(sessions.kw["bind"], "commit", lambda conn: seen.append(1))
    return seen


def test_a_batch_is_stored_in_one_transaction(sessions: sessionmaker[Session]) -> None:
    site_id = _site(sessions)
    commits = _commits(sessions)
    batch = _batch(
        site_id, *[_payload(external_id=f"b-{n}", author_id=f"u-{n % 3}") for n in range(10)]
    )
    answers = submit_batch(sessions, batch, max_text_chars=100)
    assert len(commits) == 1
    assert [a.comment.id for a in answers if isinstance(a, Submitted)] == [
        item.comment_id for item in batch
    ]
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 10
        assert session.scalar(select(func.count()).select_from(Author)) == 3


def test_a_comment_refused_for_itself_is_refused_alone(sessions: sessionmaker[Session]) -> None:
    site_id = _site(sessions)
    with session_scope(sessions) as session:
        submit_comment(session, site_id, _payload(external_id="taken"), max_text_chars=100)
    batch = _batch(
        site_id,
        _payload(external_id="fine-1"),
        _payload(external_id="long", text="x" * 101),
        _payload(external_id="taken", text="Another text."),
        _payload(external_id="taken"),  # a retry of the stored one
        _payload(external_id="fine-2"),
        _payload(external_id="fine-2"),  # the same comment twice in one batch
    )
    answers = submit_batch(sessions, batch, max_text_chars=100)
    kinds = [type(a).__name__ for a in answers]
    assert kinds == [
        "Submitted", "InvalidInput", "IdempotencyConflict", "Submitted", "Submitted", "Submitted"
    ]  # fmt: skip
    created = [a.created for a in answers if isinstance(a, Submitted)]
    assert created == [True, False, True, False]
    assert answers[5].comment.id == batch[4].comment_id  # type: ignore[union-attr]
    with session_scope(sessions) as session:
        ids = set(session.scalars(select(Comment.external_id)))
    assert ids == {"taken", "fine-1", "fine-2"}


def test_a_comment_that_breaks_the_transaction_fails_alone(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    good = _batch(
        site_id, _payload(external_id="g-1", author_id="new"), _payload(external_id="g-2")
    )
    poison = Submission(site_id + 1000, _payload(external_id="p", author_id="new"), new_id())
    answers = submit_batch(sessions, [good[0], poison, good[1]], max_text_chars=100)
    assert isinstance(answers[0], Submitted) and answers[0].created
    assert isinstance(answers[1], Exception) and not isinstance(answers[1], InvalidInput)
    assert isinstance(answers[2], Submitted) and answers[2].created
    with session_scope(sessions) as session:
        stored = session.scalars(select(Comment)).all()
        assert {c.external_id: c.author.external_id for c in stored} == {"g-1": "new", "g-2": "u-1"}
    # The author the failed transaction inserted and read back was not remembered.
    with session_scope(sessions) as session:
        again = submit_comment(
            session, site_id, _payload(external_id="g-3", author_id="new"), max_text_chars=100
        )
        assert again.comment.author_id == session.scalar(
            select(Author.id).where(Author.external_id == "new")
        )


def _batcher(
    sessions: sessionmaker[Session], sent: list[list[str]], *, max_batch: int
) -> IntakeBatcher:
    def enqueue(ids: Sequence[str]) -> bool:
        sent.append(list(ids))
        return True

    return IntakeBatcher(sessions, enqueue, max_text_chars=100, max_batch=max_batch)


def test_comments_arriving_together_share_a_commit_and_a_message(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    sent: list[list[str]] = []
    batcher = _batcher(sessions, sent, max_batch=8)
    commits = _commits(sessions)

    async def submit_all() -> list[Stored]:
        payloads = [_payload(external_id=f"t-{n}") for n in range(20)]
        return await asyncio.gather(
            *(batcher.submit(site_id, p, new_id()) for p in payloads),
            return_exceptions=False,
        )

    stored = asyncio.run(submit_all())
    assert [len(ids) for ids in sent] == [8, 8, 4]
    assert len(commits) == 3
    assert all(s.created and s.enqueued for s in stored)
    assert [i for ids in sent for i in ids] == [s.view["id"] for s in stored]


def test_a_lone_comment_is_stored_at_once_and_a_refusal_reaches_its_request(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    sent: list[list[str]] = []
    batcher = _batcher(sessions, sent, max_batch=8)

    async def one_then_bad() -> tuple[Stored, BaseException | Stored]:
        first = await batcher.submit(site_id, _payload(), new_id())
        results = await asyncio.gather(
            batcher.submit(site_id, _payload(external_id="x", text="y" * 200), new_id()),
            batcher.submit(site_id, _payload(external_id="z"), new_id()),
            return_exceptions=True,
        )
        assert isinstance(results[1], Stored) and results[1].created
        return first, results[0]

    first, refused = asyncio.run(one_then_bad())
    assert first.created and first.enqueued and sent[0] == [first.view["id"]]
    assert isinstance(refused, InvalidInput) and refused.field == "text"
    assert len(sent[1]) == 1, "only the stored comment is enqueued"


def test_a_database_failure_is_every_comments_answer_without_retrying_each(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    attempts: list[str] = []

    @event.listens_for(sessions.kw["bind"], "before_cursor_execute")
    def refuse(conn: object, cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("INSERT INTO comments"):
            attempts.append(statement)
            raise OperationalError(statement, None, Exception("database is locked"))

    batch = _batch(site_id, *[_payload(external_id=f"d-{n}") for n in range(3)])
    answers = submit_batch(sessions, batch, max_text_chars=100)
    assert all(isinstance(a, OperationalError) for a in answers)
    assert len(attempts) == 1, "one attempt for the batch, none for each comment"


def test_a_batch_retried_after_its_commit_landed_still_owns_its_comments(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    batch = _batch(site_id, _payload(external_id="landed"))
    (first,) = submit_batch(sessions, batch, max_text_chars=100)
    (again,) = submit_batch(sessions, batch, max_text_chars=100)  # the same ids: a lost ack
    assert isinstance(first, Submitted) and isinstance(again, Submitted)
    assert again.created and again.comment.id == first.comment.id
    (other,) = submit_batch(
        sessions, _batch(site_id, _payload(external_id="landed")), max_text_chars=100
    )
    assert isinstance(other, Submitted) and not other.created, "another request's retry"


def test_a_batch_inserts_its_authors_and_comments_in_key_order(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    inserted: list[tuple[str, str]] = []

    @event.listens_for(sessions.kw["bind"], "before_cursor_execute")
    def record(conn: object, cursor: object, statement: str, parameters: Any, *_: object) -> None:
        for table in ("authors", "comments"):
            if statement.startswith(f"INSERT INTO {table}"):
                inserted.append((table, str(parameters)))

    payloads = [("c-3", "u-b"), ("c-1", "u-c"), ("c-2", "u-a")]
    batch = _batch(site_id, *[_payload(external_id=e, author_id=a) for e, a in payloads])
    submit_batch(sessions, batch, max_text_chars=100)
    authors = [p for table, p in inserted if table == "authors"]
    comments = [p for table, p in inserted if table == "comments"]
    assert [next(a for a in ("u-a", "u-b", "u-c") if f"'{a}'" in p) for p in authors] == [
        "u-a", "u-b", "u-c"
    ]  # fmt: skip
    assert [next(c for c in ("c-1", "c-2", "c-3") if f"'{c}'" in p) for p in comments] == [
        "c-1", "c-2", "c-3"
    ]  # fmt: skip


def test_a_failed_enqueue_answers_stored_and_not_enqueued(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)

    def broken(ids: Sequence[str]) -> bool:
        raise RuntimeError("the broker client broke")

    batcher = IntakeBatcher(sessions, broken, max_text_chars=100, max_batch=8)
    stored = asyncio.run(batcher.submit(site_id, _payload(), new_id()))
    assert stored.created and not stored.enqueued
    with session_scope(sessions) as session:
        assert get_comment(session, site_id, stored.view["id"]).status == "pending"


def test_requests_queued_behind_a_cancelled_writer_are_answered(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    batcher = _batcher(sessions, [], max_batch=8)

    async def cancel_the_writer() -> list[BaseException | Stored]:
        submits = [
            asyncio.ensure_future(batcher.submit(site_id, _payload(external_id=f"q-{n}"), new_id()))
            for n in range(3)
        ]
        await asyncio.sleep(0)  # the first submit has started the writer
        assert batcher._writer is not None
        batcher._writer.cancel()
        return await asyncio.wait_for(asyncio.gather(*submits, return_exceptions=True), 5)

    answers = asyncio.run(cancel_the_writer())
    assert all(isinstance(a, Unavailable) for a in answers), answers


def test_a_slow_send_holds_only_its_own_batch(sessions: sessionmaker[Session]) -> None:
    site_id = _site(sessions)
    release, sent = threading.Event(), []

    def slow_then_quick(ids: Sequence[str]) -> bool:
        sent.append(list(ids))
        if len(sent) == 1:
            release.wait(10)  # a Redis that does not answer
        return True

    batcher = IntakeBatcher(sessions, slow_then_quick, max_text_chars=100, max_batch=8)

    async def submit_around_the_stuck_send() -> tuple[Stored, Stored, bool]:
        first = asyncio.ensure_future(
            batcher.submit(site_id, _payload(external_id="s-1"), new_id())
        )
        while not sent:
            await asyncio.sleep(0.01)
        second = await asyncio.wait_for(
            batcher.submit(site_id, _payload(external_id="s-2"), new_id()), 5
        )
        first_was_waiting = not first.done()
        release.set()
        return await first, second, first_was_waiting

    first, second, first_was_waiting = asyncio.run(submit_around_the_stuck_send())
    assert first_was_waiting, "the first request waits for its own send"
    assert second.created and second.enqueued, "the next batch was stored and sent meanwhile"
    assert first.created and first.enqueued
