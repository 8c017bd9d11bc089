"""The moderators' queue, claims, reviews, bulk reviews, history, authors and stats, on a real
database (SQLite and PostgreSQL) with comments decided by the shipped model."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.errors import (
    ClaimConflict,
    CommentNotFound,
    InvalidInput,
    NotReviewable,
    StaleVersion,
)
from service.core.tables import Comment, Review, utcnow
from service.moderation.authors import author_view, set_author_trust
from service.moderation.review_queue import QueueFilters, claim_items, list_queue
from service.moderation.reviews import comment_history, review_comment, review_many
from service.moderation.stats import site_stats
from tests.factories import CIVIL, TOXIC, decide_texts, default_scorer

ME, OTHER = 1, 2  # two moderators' key ids


def _review(
    session: Session,
    site_id: int,
    comment_id: str,
    action: str,
    *,
    key_id: int = ME,
    reason: str | None = None,
    version: int | None = None,
) -> None:
    review_comment(
        session,
        site_id,
        comment_id,
        key_id=key_id,
        actor="mod",
        action=action,
        reason=reason,
        version=version,
    )


def test_held_comments_appear_in_queue_sorted_by_score_and_page_by_cursor(
    sessions: sessionmaker[Session],
) -> None:
    site_id, ids = decide_texts(sessions, TOXIC[:7] + CIVIL[:3])
    with session_scope(sessions) as session:
        first = list_queue(session, site_id, limit=3)
        rest = list_queue(session, site_id, limit=3, cursor=first.next_cursor)
        last = list_queue(session, site_id, limit=3, cursor=rest.next_cursor)
        by_age = list_queue(session, site_id, sort="age", limit=100)
    items = first.items + rest.items + last.items
    assert last.next_cursor is None
    assert len(items) == 7 and {i["id"] for i in items} == set(ids[:7]), "only held, each once"
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    top = items[0]
    assert top["reasons"][0]["code"] == "attribute_over_threshold"
    span = top["reasons"][0]["spans"][0]
    assert top["text"][span["start"] : span["end"]] == span["text"]
    assert top["author"] == {
        "id": "reader",
        "trust": "normal",
        "history": {"comments": 10, "approved": 3, "rejected": 0, "held": 7, "pending": 0},
    }
    created = [i["created_at"] for i in by_age.items]
    assert created == sorted(created)
    with session_scope(sessions) as session, pytest.raises(InvalidInput) as bad:
        list_queue(session, site_id, cursor="not-a-cursor")
    assert bad.value.field == "cursor"


def test_queue_filters_by_article_author_reason_attribute_and_date(
    sessions: sessionmaker[Session],
) -> None:
    site_id, _ = decide_texts(sessions, TOXIC[:3], article="a1", author="ann")
    decide_texts(sessions, TOXIC[3:5], article="a2", author="bob", prefix="d")
    with session_scope(sessions) as session:

        def ids(**filters: object) -> int:
            return len(list_queue(session, site_id, filters=QueueFilters(**filters)).items)  # type: ignore[arg-type]

        assert ids() == 5
        assert ids(article_id="a2") == 2
        assert ids(author_id="ann") == 3
        assert ids(reason="attribute_over_threshold") == 5
        assert ids(reason="scoring_error") == 0
        assert ids(attribute="toxic") == 5
        assert ids(since=utcnow() + timedelta(minutes=1)) == 0
        assert ids(until=utcnow() + timedelta(minutes=1)) == 5


def test_two_moderators_claim_disjoint_comments_and_leases_expire(
    sessions: sessionmaker[Session],
) -> None:
    site_id, ids = decide_texts(sessions, TOXIC[:6])
    with session_scope(sessions) as session:
        mine = claim_items(session, site_id, ME, limit=4, claim_seconds=60, actor="me")
    with session_scope(sessions) as session:
        theirs = claim_items(session, site_id, OTHER, limit=4, claim_seconds=60, actor="them")
    assert len(mine) == 4 and len(theirs) == 2
    assert not {i["id"] for i in mine} & {i["id"] for i in theirs}
    with session_scope(sessions) as session:  # my claims, renewed, not more of them
        again = claim_items(session, site_id, ME, limit=4, claim_seconds=60, actor="me")
    assert {i["id"] for i in again} == {i["id"] for i in mine}
    # The lease runs out by itself: then another moderator may take the comments.
    with session_scope(sessions) as session:
        session.execute(
            update(Comment)
            .where(Comment.claimed_by == ME)
            .values(claim_expires_at=utcnow() - timedelta(seconds=1))
        )
    with session_scope(sessions) as session:
        taken = claim_items(session, site_id, OTHER, limit=10, claim_seconds=60, actor="them")
    assert {i["id"] for i in taken} == set(ids)


def test_review_records_who_and_why_and_a_moderator_may_change_their_mind(
    sessions: sessionmaker[Session],
) -> None:
    site_id, (held,) = decide_texts(sessions, TOXIC[:1])
    with session_scope(sessions) as session:
        version = session.get(Comment, held).version  # type: ignore[union-attr]
        done = review_comment(
            session,
            site_id,
            held,
            key_id=ME,
            actor="alice",
            action="reject",
            reason="ABUSIVE",
            note="insult",
            version=version,
        )
    assert done.view["status"] == "rejected" and done.view["version"] == version + 1
    with session_scope(sessions) as session:
        again = review_comment(
            session, site_id, held, key_id=OTHER, actor="bob", action="approve", version=version + 1
        )
        assert again.view["status"] == "approved"
        assert list_queue(session, site_id).items == []
        events = comment_history(session, site_id, held)
    assert [e["event"] for e in events] == ["submitted", "decided", "reviewed", "reviewed"]
    assert events[1]["data"]["model_version"] == default_scorer().version
    assert events[2]["actor"] == "alice"
    assert events[2]["data"]["reason"] == "ABUSIVE" and events[2]["data"]["note"] == "insult"
    assert events[3]["data"]["from_status"] == "rejected"


def test_a_stale_review_is_refused_and_changes_nothing(sessions: sessionmaker[Session]) -> None:
    site_id, (held,) = decide_texts(sessions, TOXIC[:1])
    with session_scope(sessions) as session:
        version = session.get(Comment, held).version  # type: ignore[union-attr]
        _review(session, site_id, held, "reject", version=version)
    with session_scope(sessions) as session, pytest.raises(StaleVersion) as stale:
        _review(session, site_id, held, "approve", key_id=OTHER, version=version)
    assert stale.value.field == "version"
    with session_scope(sessions) as session:
        assert session.get(Comment, held).status == "rejected"  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).select_from(Review)) == 1


def test_unknown_not_held_and_other_sites_comments_cannot_be_reviewed(
    sessions: sessionmaker[Session],
) -> None:
    site_id, (held, approved) = decide_texts(sessions, [TOXIC[0], CIVIL[0]])
    other_site, (foreign,) = decide_texts(sessions, TOXIC[:1], site="elsewhere")
    with session_scope(sessions) as session:
        with pytest.raises(NotReviewable):
            _review(session, site_id, approved, "reject")
        with pytest.raises(CommentNotFound):
            _review(session, site_id, "0" * 32, "reject")
        with pytest.raises(CommentNotFound):  # exactly like a missing one
            _review(session, site_id, foreign, "reject")
        with pytest.raises(InvalidInput) as action:
            _review(session, site_id, held, "delete")
        with pytest.raises(InvalidInput) as reason:
            _review(session, site_id, held, "reject", reason="RUDE")
    assert (action.value.field, reason.value.field) == ("action", "reason")
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Review)) == 0
        assert session.get(Comment, held).status == "held"  # type: ignore[union-attr]
        assert other_site != site_id


def test_claims_protect_a_comment_from_others_and_an_expired_claim_must_be_renewed(
    sessions: sessionmaker[Session],
) -> None:
    site_id, (held,) = decide_texts(sessions, TOXIC[:1])
    with session_scope(sessions) as session:
        claim_items(session, site_id, ME, limit=1, claim_seconds=60)
    with session_scope(sessions) as session, pytest.raises(ClaimConflict):
        _review(session, site_id, held, "reject", key_id=OTHER)
    with session_scope(sessions) as session:
        session.execute(update(Comment).values(claim_expires_at=utcnow() - timedelta(seconds=1)))
    with session_scope(sessions) as session, pytest.raises(ClaimConflict) as expired:
        _review(session, site_id, held, "reject", key_id=ME)
    assert "expired" in expired.value.detail
    with session_scope(sessions) as session:
        claim_items(session, site_id, ME, limit=1, claim_seconds=60)
        _review(session, site_id, held, "reject", key_id=ME)
        assert session.get(Comment, held).claimed_by is None  # type: ignore[union-attr]


def test_bulk_review_is_all_or_nothing(sessions: sessionmaker[Session]) -> None:
    site_id, ids = decide_texts(sessions, TOXIC[:5] + CIVIL[:1])
    held, approved = ids[:5], ids[5]

    def bulk(session: Session, comment_ids: list[str]) -> int:
        return len(
            review_many(
                session, site_id, comment_ids, key_id=ME, actor="m", action="reject", reason="SPAM"
            )
        )

    with session_scope(sessions) as session, pytest.raises(NotReviewable) as not_held:
        bulk(session, [*held, approved])
    assert approved in not_held.value.detail and "nothing was reviewed" in not_held.value.detail
    with session_scope(sessions) as session, pytest.raises(CommentNotFound):
        bulk(session, [*held, "f" * 32])
    with session_scope(sessions) as session, pytest.raises(InvalidInput, match="repeat"):
        bulk(session, [held[0], held[0]])
    with session_scope(sessions) as session, pytest.raises(InvalidInput, match="500"):
        bulk(session, [f"{i:032x}" for i in range(501)])
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Review)) == 0
        assert bulk(session, held) == 5
    with session_scope(sessions) as session:
        statuses = session.scalars(select(Comment.status).where(Comment.id.in_(held))).all()
        assert set(statuses) == {"rejected"}


def test_author_trust_changes_later_decisions_and_is_audited(
    sessions: sessionmaker[Session],
) -> None:
    site_id, _ = decide_texts(sessions, CIVIL[:1], author="troll")
    with session_scope(sessions) as session:
        set_author_trust(session, site_id, "troll", "banned", actor="mod", note="spam wave")
        set_author_trust(session, site_id, "careful", "premoderated", actor="mod")
        set_author_trust(session, site_id, "regular", "trusted", actor="mod")
        with pytest.raises(InvalidInput):
            set_author_trust(session, site_id, "x", "vip", actor="mod")
    _, (banned,) = decide_texts(sessions, CIVIL[1:2], author="troll", prefix="b")
    _, (premod,) = decide_texts(sessions, CIVIL[2:3], author="careful", prefix="p")
    # A borderline insult (toxic ~0.3-0.8) is held for anyone but a trusted author.
    _, (trusted,) = decide_texts(
        sessions, ["This is a ridiculous article."], author="regular", prefix="t"
    )
    with session_scope(sessions) as session:
        status = {i: session.get(Comment, i).status for i in (banned, premod, trusted)}  # type: ignore[union-attr]
        premod_reasons = session.get(Comment, premod).decision.reasons  # type: ignore[union-attr]
        view = author_view(session, site_id, "troll")
    assert status == {banned: "rejected", premod: "held", trusted: "approved"}
    assert premod_reasons[0]["code"] == "author_premoderated"
    assert view["trust"] == "banned" and view["history"]["rejected"] == 1
    assert view["trust_changes"][0]["note"] == "spam wave"


def test_stats_count_the_queue_hold_rate_review_time_and_overturns(
    sessions: sessionmaker[Session],
) -> None:
    site_id, ids = decide_texts(sessions, TOXIC[:4] + CIVIL[:4])
    with session_scope(sessions) as session:
        _review(session, site_id, ids[0], "approve")  # an overturn of the model
        _review(session, site_id, ids[1], "reject")
        stats = site_stats(session, site_id, hours=3)
    assert stats["queue_size"] == 2
    assert stats["decided"] == 8 and stats["hold_rate"] == 0.5
    assert stats["reviewed"] == 2 and stats["median_review_seconds"] is not None
    assert stats["overturn"]["toxic"] == {"reviewed": 2, "overturned": 1, "rate": 0.5}
    assert len(stats["series"]) == 3
    assert stats["series"][-1]["queue_size"] == 2 and stats["series"][-1]["held"] == 4
