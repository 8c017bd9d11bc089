"""What a threshold would have held of a site's recent decisions, and the site's articles and
sections with their hold rates, on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.tables import (
    Author,
    Comment,
    CommentStatus,
    Decision,
    PolicyOverride,
    Review,
    utcnow,
)
from service.moderation.articles import site_articles, site_sections
from service.moderation.threshold_preview import ANY_ATTRIBUTE, preview_thresholds
from service.sites.keys import get_or_create_site

_count = iter(range(1_000_000))


def _decided(
    session: Session,
    site_name: str,
    scores: dict[str, float],
    *,
    status: str = CommentStatus.APPROVED,
    reviewed: bool = False,
    article: str = "a-1",
    section: str | None = None,
    minutes_ago: float = 0,
) -> str:
    """A decided comment with these scores; `reviewed`: a moderator moved it to `status`."""
    site = get_or_create_site(session, site_name)
    author = Author(site_id=site.id, external_id=f"reader-{next(_count)}")
    session.add(author)
    session.flush()
    at = utcnow() - timedelta(minutes=minutes_ago)
    comment = Comment(
        site_id=site.id,
        external_id=f"c-{next(_count)}",
        article_id=article,
        section=section,
        author_id=author.id,
        text="text",
        status=status,
        created_at=at,
    )
    session.add(comment)
    session.flush()
    action = {"approved": "approve", "held": "hold", "rejected": "reject"}[status]
    if reviewed:
        action = "hold"
    session.add(
        Decision(
            comment_id=comment.id,
            action=action,
            scores=scores,
            reasons=[],
            model_version="m",
            latency_ms=1.0,
            decided_at=at,
        )
    )
    if reviewed:
        session.add(
            Review(
                site_id=site.id,
                comment_id=comment.id,
                key_id=1,
                actor="mod",
                action="reject" if status == CommentStatus.REJECTED else "approve",
                from_status=CommentStatus.HELD,
                to_status=status,
            )
        )
    session.flush()
    return comment.id


def test_hold_rate_and_recall_count_scores_at_or_above_the_threshold(
    sessions: sessionmaker[Session],
) -> None:
    rejected = CommentStatus.REJECTED
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        _decided(session, "news", {"toxic": 0.9, "insult": 0.2}, status=rejected, reviewed=True)
        _decided(session, "news", {"toxic": 0.5, "insult": 0.7}, status=rejected, reviewed=True)
        _decided(session, "news", {"toxic": 0.3, "insult": 0.1}, status=rejected, reviewed=True)
        _decided(session, "news", {"toxic": 0.6, "insult": 0.1}, reviewed=True)  # approved
        _decided(session, "news", {"toxic": 0.1, "insult": 0.0})
        # Rejected by the pipeline, never by a person: not in the recall's count.
        _decided(session, "news", {"toxic": 0.95, "insult": 0.9}, status=rejected)
        _decided(session, "news", {}, status=rejected)  # a banned word: never scored
        _decided(session, "other", {"toxic": 0.99, "insult": 0.99}, status=rejected, reviewed=True)

    with session_scope(sessions) as session:
        preview = preview_thresholds(session, site_id, {"toxic": 0.5, "insult": 0.7})

    assert preview.decisions == 7, "the site's own decisions only, scored or not"
    toxic, insult, both = (preview.attributes[k] for k in ("toxic", "insult", ANY_ATTRIBUTE))
    assert (toxic.scored, toxic.held, toxic.rejected, toxic.caught) == (6, 4, 3, 2)
    assert toxic.threshold == 0.5
    assert toxic.hold_rate == pytest.approx(4 / 6), "0.5 itself is held, as the policy decides"
    assert toxic.recall == pytest.approx(2 / 3)
    assert (insult.held, insult.caught) == (2, 1)
    assert (both.held, both.caught, both.threshold) == (4, 2, None)


def test_preview_reads_only_the_latest_decisions_and_an_empty_site_has_no_rates(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        empty_id = get_or_create_site(session, "empty").id
        for _ in range(3):
            _decided(session, "news", {"toxic": 0.1})
        _decided(session, "news", {"toxic": 0.9})  # the latest
    with session_scope(sessions) as session:
        latest = preview_thresholds(session, site_id, {"toxic": 0.5}, last=1)
        empty = preview_thresholds(session, empty_id, {"toxic": 0.5})
    assert (latest.decisions, latest.attributes["toxic"].hold_rate) == (1, 1.0)
    assert empty.decisions == 0
    assert empty.attributes["toxic"].hold_rate is None
    assert empty.attributes["toxic"].recall is None


def test_articles_are_listed_latest_first_with_counts_hold_rates_and_overrides(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        held = CommentStatus.HELD
        _decided(session, "news", {}, article="Old_Story", minutes_ago=60)
        _decided(session, "news", {}, article="peace-talks", minutes_ago=5, section="world")
        _decided(session, "news", {}, article="peace-talks", status=held, section="world")
        _decided(session, "news", {}, article="100%_sure", minutes_ago=30, section="sport")
        _decided(session, "other", {}, article="peace-talks-elsewhere")
        session.add(PolicyOverride(site_id=site_id, scope="article", key="peace-talks", policy={}))

    with session_scope(sessions) as session:
        articles = site_articles(session, site_id)
        found = site_articles(session, site_id, query="STORY")
        literal = site_articles(session, site_id, query="%")
        limited = site_articles(session, site_id, limit=1)
        sections = site_sections(session, site_id)

    assert [a.key for a in articles] == ["peace-talks", "100%_sure", "Old_Story"]
    peace = articles[0]
    assert (peace.comments, peace.decided, peace.held, peace.hold_rate) == (2, 2, 1, 0.5)
    assert peace.has_override and not articles[1].has_override
    assert peace.last_comment_at is not None and peace.last_comment_at.tzinfo is not None
    assert [a.key for a in found] == ["Old_Story"], "a substring, in any case"
    assert [a.key for a in literal] == ["100%_sure"], "% is a character, not a wildcard"
    assert [a.key for a in limited] == ["peace-talks"]
    assert [(s.key, s.comments) for s in sections] == [("world", 2), ("sport", 1)]
