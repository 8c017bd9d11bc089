"""Erasure on a real database (SQLite and PostgreSQL): an author's comments on request, and
comments past a site's retention, with everything that quoted them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.errors import InvalidInput, NotFound
from service.core.tables import (
    AuditEntry,
    Author,
    Comment,
    Decision,
    Label,
    Review,
    ShadowScore,
    Site,
    WebhookDelivery,
    utcnow,
)
from service.moderation.authors import set_author_trust
from service.moderation.erasure import erase_author, purge_expired, set_retention
from service.moderation.reviews import review_comment
from service.webhooks.config import COMMENT_DECIDED, record_event
from tests.factories import CIVIL, TOXIC, decide_texts

SECRET_WORDS = ("idiot", "pathetic", "stupid", "moron")


def _everything_about(session: Session, comment_ids: list[str]) -> str:
    """Every stored value that concerns these comments, as one string to search."""
    rows: list[Any] = []
    for table, column in (
        (Comment, Comment.id),
        (Decision, Decision.comment_id),
        (Label, Label.comment_id),
        (Review, Review.comment_id),
        (AuditEntry, AuditEntry.comment_id),
        (WebhookDelivery, WebhookDelivery.comment_id),
    ):
        for row in session.scalars(select(table).where(column.in_(comment_ids))):
            rows.append({c.key: getattr(row, c.key) for c in table.__table__.columns})
    return json.dumps(rows, default=str).lower()


def _with_traces(sessions: sessionmaker[Session]) -> tuple[int, list[str], list[str]]:
    """A troll's held and approved comments with a review, labels, an audit note and a
    webhook payload each; and a civil reader's comments that must stay as they are."""
    site_id, troll = decide_texts(sessions, TOXIC[:3] + CIVIL[:1], author="troll-42", prefix="t")
    _, reader = decide_texts(sessions, CIVIL[1:3], author="reader-7", prefix="r")
    with session_scope(sessions) as session:
        review_comment(
            session, site_id, troll[0], key_id=1, actor="mod", action="reject",
            reason="ABUSIVE", note="called the minister a pathetic idiot",
        )  # fmt: skip
        set_author_trust(session, site_id, "troll-42", "banned", actor="mod", note="idiot again")
        for comment_id in troll + reader:
            record_event(
                session, site_id=site_id, url="https://news.example/hook", event=COMMENT_DECIDED,
                comment_id=comment_id, site_name="news",
                data={"comment": {"id": comment_id, "text": "quoted text", "decision": None}},
            )  # fmt: skip
    return site_id, troll, reader


def test_erasing_an_author_leaves_no_text_of_theirs_anywhere(
    sessions: sessionmaker[Session],
) -> None:
    site_id, troll, reader = _with_traces(sessions)
    with session_scope(sessions) as session:
        labels_before = session.scalar(
            select(func.count()).select_from(Label).where(Label.comment_id.in_(troll))
        )
        assert labels_before, "the review made a label"
        assert any(w in _everything_about(session, troll) for w in SECRET_WORDS)
        reader_before = _everything_about(session, reader)

    done = erase_author(sessions, site_id, "troll-42", actor="admin")
    assert done["erased"]["comments"] == 4 and done["erased"]["labels"] == labels_before

    with session_scope(sessions) as session:
        stored = _everything_about(session, troll)
        for word in (*SECRET_WORDS, "quoted text", "troll-42", "minister"):
            assert word not in stored, word
        comments = list(session.scalars(select(Comment).where(Comment.id.in_(troll))))
        assert all(c.text == "" and c.extra == {} and c.erased_at for c in comments)
        # Nothing left to publish or review; counts and decisions without text remain.
        assert {c.status for c in comments} <= {"rejected", "approved"}
        decisions = list(session.scalars(select(Decision).where(Decision.comment_id.in_(troll))))
        assert len(decisions) == 4 and all(d.scores for d in decisions[:3])
        assert all("code" in r for d in decisions for r in d.reasons)
        assert not session.scalars(select(Label).where(Label.comment_id.in_(troll))).all()
        author_ids = list(session.scalars(select(Author.external_id)))
        assert "troll-42" not in author_ids and "reader-7" in author_ids
        trail = json.dumps([e.data for e in session.scalars(select(AuditEntry))]).lower()
        assert "troll-42" not in trail and "idiot again" not in trail
        erased = session.scalars(select(AuditEntry).where(AuditEntry.event == "author.erased"))
        (entry,) = erased
        assert entry.actor == "admin" and entry.data["comments"] == 4
        # The other reader's comments are untouched.
        assert _everything_about(session, reader) == reader_before


def test_erasing_an_author_the_site_never_sent_is_a_404_naming_the_field(
    sessions: sessionmaker[Session],
) -> None:
    site_id, _ = decide_texts(sessions, CIVIL[:1])
    with pytest.raises(NotFound) as missing:
        erase_author(sessions, site_id, "nobody", actor="admin")
    assert missing.value.field == "author_id"


def test_a_pending_comment_erased_is_never_decided_afterwards(
    sessions: sessionmaker[Session],
) -> None:
    from service.comments.decisions import decide_comments
    from service.core.settings import DEFAULT_THRESHOLDS
    from tests.factories import default_scorer

    site_id, _ = decide_texts(sessions, CIVIL[:1])
    with session_scope(sessions) as session:
        pending = submit_comment(
            session, site_id,
            CommentIn(external_id="p1", article_id="a1", author_id="leaver", text=TOXIC[0]),
            max_text_chars=10_000,
        ).comment.id  # fmt: skip
    erase_author(sessions, site_id, "leaver", actor="admin")
    with session_scope(sessions) as session:
        decided = decide_comments(
            session, [pending], default_scorer(), default_thresholds=DEFAULT_THRESHOLDS
        )
        assert decided == []
        assert session.get_one(Comment, pending).status == "rejected"


def test_retention_erases_only_what_is_older_than_the_site_keeps_it(
    sessions: sessionmaker[Session],
) -> None:
    site_id, old = decide_texts(sessions, TOXIC[:2] + CIVIL[:1], author="a", prefix="old")
    _, new = decide_texts(sessions, CIVIL[1:3], author="b", prefix="new")
    now = utcnow()
    with session_scope(sessions) as session:
        session.execute(
            update(Comment)
            .where(Comment.id.in_(old))
            .values(created_at=now - timedelta(days=31))
            .execution_options(synchronize_session=False)
        )
        assert purge_expired(session, now=now) == 0, "no site keeps text for a limited time"
        view = set_retention(session, "news", 30, actor="admin")
        assert view["retention_days"] == 30
    with session_scope(sessions) as session:
        new_before = _everything_about(session, new)
        assert purge_expired(session, now=now, limit=2) == 2, "one chunk at a time"
    with session_scope(sessions) as session:
        assert purge_expired(session, now=now) == 1
        assert purge_expired(session, now=now) == 0
    with session_scope(sessions) as session:
        assert all(
            c.text == "" and c.erased_at
            for c in session.scalars(select(Comment).where(Comment.id.in_(old)))
        )
        assert _everything_about(session, new) == new_before
        purged = session.scalars(select(AuditEntry).where(AuditEntry.event == "retention.purged"))
        assert sum(e.data["comments"] for e in purged) == 3
        assert session.get_one(Site, site_id).retention_days == 30


def test_a_retention_out_of_range_is_refused_naming_the_field(
    sessions: sessionmaker[Session],
) -> None:
    decide_texts(sessions, CIVIL[:1])
    with session_scope(sessions) as session:
        for days in (0, -3, 40_000):
            with pytest.raises(InvalidInput) as bad:
                set_retention(session, "news", days, actor="admin")
            assert bad.value.field == "days"
        assert set_retention(session, "news", None, actor="admin")["retention_days"] is None


def test_shadow_scores_keep_no_text_and_stay(sessions: sessionmaker[Session]) -> None:
    # What a shadow model stored has no text: the erasure leaves it, and the table has none.
    assert "text" not in {c.key for c in ShadowScore.__table__.columns}


def test_a_long_history_is_erased_a_chunk_a_transaction_and_never_reviewed_again(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.core.errors import NotReviewable
    from service.moderation import erasure

    monkeypatch.setattr(erasure, "CHUNK", 2)  # five comments: three transactions of comments
    site_id, ids = decide_texts(sessions, TOXIC[:3] + CIVIL[:2], author="veteran", prefix="v")
    done = erase_author(sessions, site_id, "veteran", actor="admin")
    assert done["erased"]["comments"] == 5
    with session_scope(sessions) as session:
        assert all(c.erased_at for c in session.scalars(select(Comment).where(Comment.id.in_(ids))))
        replaced = session.scalar(select(Author.external_id).where(Author.site_id == site_id))
        assert replaced is not None and replaced.startswith("erased-") and len(replaced) > 30
        with pytest.raises(NotReviewable, match="erased"):
            review_comment(session, site_id, ids[0], key_id=1, actor="mod", action="approve")


def test_retention_also_ages_out_labels_that_belong_to_no_comment(
    sessions: sessionmaker[Session],
) -> None:
    site_id, _ = decide_texts(sessions, CIVIL[:1])
    now = utcnow()
    with session_scope(sessions) as session:
        for age in (40, 5):
            at = now - timedelta(days=age)
            session.add(
                Label(site_id=site_id, source="perspective", text=f"suggested {age}",
                      labels={"toxic": 1}, created_at=at, updated_at=at)
            )  # fmt: skip
        set_retention(session, "news", 30, actor="admin")
    with session_scope(sessions) as session:
        purge_expired(session, now=now)
    with session_scope(sessions) as session:
        assert list(session.scalars(select(Label.text))) == ["suggested 5"]
