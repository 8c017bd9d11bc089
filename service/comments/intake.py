"""Intake: store a validated comment as pending, once per (site, external id)."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import structlog
from sqlalchemy import Engine, Executable, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.errors import (
    ArticleClosed,
    CommentNotFound,
    IdempotencyConflict,
    InvalidInput,
    ModerationError,
)
from service.core.tables import Author, Comment, CommentStatus, Site, new_id, utcnow
from service.rules.overrides import current_policies

__all__ = [
    "Submission",
    "Submitted",
    "get_comment",
    "get_comment_by_external_id",
    "submit_batch",
    "submit_comment",
]

log = structlog.get_logger(__name__)

# Authors this transaction inserted: never remembered, since the transaction may roll back.
_NEW_AUTHORS = "intake_new_authors"
# Author ids this transaction has resolved, by (site id, external id).
_RESOLVED = "intake_resolved_authors"
# The policy version of each site this transaction has read.
_VERSIONS = "intake_policy_versions"


@dataclass(frozen=True)
class Submitted:
    comment: Comment
    created: bool


@dataclass(frozen=True)
class Submission:
    """One comment of a batch: the site it is for, its body, and the id it will have."""

    site_id: int
    payload: CommentIn
    comment_id: str


@functools.cache
def _inserts(dialect: str) -> tuple[Executable, Executable]:
    """The author and comment INSERTs of a dialect (only the dialects' own can skip a
    duplicate), built once: a statement built per comment costs more than running it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    authors, comments = cast(Table, Author.__table__), cast(Table, Comment.__table__)
    author = insert(authors).on_conflict_do_nothing(index_elements=["site_id", "external_id"])
    comment = (
        insert(comments)
        .on_conflict_do_nothing(index_elements=["site_id", "external_id"])
        .returning(comments.c.id)  # no row back means another comment holds the external id
    )
    return author, comment


class _KnownAuthors:
    """Author ids this process has read, per database: an author's row is never deleted or
    renumbered, so a site backend's regular commenters cost no query after the first.

    Only ids read back from committed rows are kept, never one this transaction inserted: it
    may still roll back. Bounded: full, it starts over.
    """

    SIZE = 50_000

    def __init__(self) -> None:
        self._ids: weakref.WeakKeyDictionary[Engine, dict[tuple[int, str], int]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, engine: Engine, site_id: int, external_id: str) -> int | None:
        known = self._ids.get(engine)
        return known.get((site_id, external_id)) if known is not None else None

    def put(self, engine: Engine, site_id: int, external_id: str, author_id: int) -> None:
        known = self._ids.setdefault(engine, {})
        if len(known) >= self.SIZE:
            known.clear()
        known[(site_id, external_id)] = author_id


_KNOWN = _KnownAuthors()


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _author_id(session: Session, site_id: int, external_id: str) -> int:
    engine = _engine(session)
    known = _KNOWN.get(engine, site_id, external_id)
    if known is not None:
        return known
    # Resolved earlier in this transaction (a batch's authors are resolved first, in order).
    resolved: dict[tuple[int, str], int] = session.info.setdefault(_RESOLVED, {})
    if (site_id, external_id) in resolved:
        return resolved[(site_id, external_id)]
    resolved[(site_id, external_id)] = author_id = _look_up_or_insert(
        session, engine, site_id, external_id
    )
    return author_id


def _look_up_or_insert(session: Session, engine: Engine, site_id: int, external_id: str) -> int:
    found = session.scalar(
        select(Author.id).where(Author.site_id == site_id, Author.external_id == external_id)
    )
    if found is not None:
        if (site_id, external_id) not in session.info.get(_NEW_AUTHORS, ()):
            _KNOWN.put(engine, site_id, external_id, found)
        return found
    session.info.setdefault(_NEW_AUTHORS, set()).add((site_id, external_id))
    # Two comments of a new author may arrive at once: let the unique constraint pick one.
    insert_author, _ = _inserts(engine.dialect.name)
    session.execute(
        insert_author,
        {"site_id": site_id, "external_id": external_id, "trust": "normal", "created_at": utcnow()},
    )
    return session.scalars(
        select(Author.id).where(Author.site_id == site_id, Author.external_id == external_id)
    ).one()


def _same_submission(existing: Comment, payload: CommentIn) -> None:
    """A retried post must be the same comment; a reused id for another one is a conflict."""
    for field, old, new in (
        ("text", existing.text, payload.text),
        ("article_id", existing.article_id, payload.article_id),
        ("author_id", existing.author.external_id, payload.author_id),
        ("parent_id", existing.parent_id, payload.parent_id),
    ):
        if old != new:
            raise IdempotencyConflict(
                f"external_id {payload.external_id!r} was already used for a comment with a "
                f"different {field}",
                field=field,
            )


def submit_comment(
    session: Session,
    site_id: int,
    payload: CommentIn,
    *,
    max_text_chars: int,
    comment_id: str | None = None,
) -> Submitted:
    """Store the comment as pending, or return the one already stored under its external id."""
    if len(payload.text) > max_text_chars:
        raise InvalidInput(
            f"text is {len(payload.text)} characters; the limit is {max_text_chars}", field="text"
        )
    if _refused(session, site_id, payload):
        # A retry of a comment taken before the article closed still gets its first answer.
        existing = session.scalar(
            select(Comment).where(
                Comment.site_id == site_id, Comment.external_id == payload.external_id
            )
        )
        if existing is None:
            raise ArticleClosed(
                f"article {payload.article_id!r} is closed to new comments", field="article_id"
            )
        _same_submission(existing, payload)
        return Submitted(existing, created=False)
    # Insert first and look for an earlier copy only on conflict: retries are the rare case.
    author_id = _author_id(session, site_id, payload.author_id)
    now = utcnow()
    values = {
        "id": comment_id or new_id(),
        "site_id": site_id,
        "external_id": payload.external_id,
        "article_id": payload.article_id,
        "section": payload.section,
        "author_id": author_id,
        "parent_id": payload.parent_id,
        "text": payload.text,
        "metadata": payload.metadata,
        "status": CommentStatus.PENDING,
        "created_at": now,
        "updated_at": now,
    }
    _, insert_comment = _inserts(_engine(session).dialect.name)
    inserted = session.execute(insert_comment, values).scalar_one_or_none()
    if inserted is None:
        existing = get_comment_by_external_id(session, site_id, payload.external_id)
        _same_submission(existing, payload)
        # The very id this submission chose: its own earlier commit, whose acknowledgement
        # was lost and the batch retried. It is still this request's comment to enqueue.
        return Submitted(existing, created=existing.id == comment_id)
    # The row is exactly these values: describe it without reading it back.
    comment = Comment(**{k: v for k, v in values.items() if k != "metadata"})
    comment.extra = payload.metadata
    return Submitted(comment, created=True)


def _refused(session: Session, site_id: int, payload: CommentIn) -> bool:
    """Whether the comment's article is closed and its site refuses comments there."""
    versions: dict[int, int] = session.info.setdefault(_VERSIONS, {})
    if site_id not in versions:
        version = session.scalar(select(Site.policy_version).where(Site.id == site_id))
        versions[site_id] = version or 0
    policy = current_policies(session, site_id, versions[site_id]).resolve(
        session, {}, payload.section, payload.article_id
    )
    return policy.closed and policy.closed_action == "refuse"


def submit_batch(
    sessions: sessionmaker[Session], batch: Sequence[Submission], *, max_text_chars: int
) -> list[Submitted | Exception]:
    """Store every comment of the batch in one transaction: one commit, one fsync, for all.

    Each comment gets its own answer, a `Submitted` or the error to raise for it. A comment
    refused for itself (too long, an external id holding another text) is refused alone.
    Authors, then comments, are inserted in key order, so two API processes' batches take
    PostgreSQL's row locks in the same order and never deadlock each other.

    Should the transaction fail on a constraint or a value, which one comment can cause,
    each comment is tried again in a transaction of its own, so that it fails alone. Any
    other failure (the database away, locked, out of connections) is every comment's answer
    at once: retrying them one by one would only wait on it again.
    """
    try:
        with session_scope(sessions) as session:
            return _submit_all(session, batch, max_text_chars)
    except (IntegrityError, DataError) as exc:
        if len(batch) == 1:
            return [exc]
        log.warning("intake_batch_failed", size=len(batch), error=str(exc)[:200])
    except Exception as exc:
        return [exc] * len(batch)
    answers: list[Submitted | Exception] = []
    for item in batch:
        try:
            with session_scope(sessions) as session:
                answers.append(_submit_one(session, item, max_text_chars))
        except Exception as exc:
            answers.append(exc)
    return answers


def _submit_all(
    session: Session, batch: Sequence[Submission], max_text_chars: int
) -> list[Submitted | Exception]:
    fitting = [item for item in batch if len(item.payload.text) <= max_text_chars]
    for site_id, author in sorted({(i.site_id, i.payload.author_id) for i in fitting}):
        _author_id(session, site_id, author)
    order = sorted(
        range(len(batch)), key=lambda i: (batch[i].site_id, batch[i].payload.external_id)
    )
    answers: dict[int, Submitted | Exception] = {
        i: _submit_one(session, batch[i], max_text_chars) for i in order
    }
    return [answers[i] for i in range(len(batch))]


def _submit_one(
    session: Session, item: Submission, max_text_chars: int
) -> Submitted | ModerationError:
    try:
        return submit_comment(
            session,
            item.site_id,
            item.payload,
            max_text_chars=max_text_chars,
            comment_id=item.comment_id,
        )
    # Nothing of the comment is written; a new author it named may be (an author row with
    # no comment, as a failed post leaves in any forum).
    except (InvalidInput, IdempotencyConflict, ArticleClosed) as refused:
        return refused


def get_comment(session: Session, site_id: int, comment_id: str) -> Comment:
    comment = session.get(Comment, comment_id)
    # Another site's comment is reported exactly like a missing one, so ids reveal nothing.
    if comment is None or comment.site_id != site_id:
        raise CommentNotFound(f"no comment with id {comment_id!r}", field="id")
    return comment


def get_comment_by_external_id(session: Session, site_id: int, external_id: str) -> Comment:
    comment = session.scalar(
        select(Comment).where(Comment.site_id == site_id, Comment.external_id == external_id)
    )
    if comment is None:
        raise CommentNotFound(f"no comment with external_id {external_id!r}", field="external_id")
    return comment
