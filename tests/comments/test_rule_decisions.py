"""The site's rules in its decisions, on SQLite and PostgreSQL (and a real Redis for floods):
author history, links, the reject band, closed and pre-moderated articles, section overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.comments.decisions import decide_comments
from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.embedded_redis import EmbeddedRedis
from service.core.errors import ArticleClosed
from service.core.tables import Comment, CommentStatus, Decision
from service.rules.floods import RedisActivity
from service.rules.overrides import put_policy
from service.rules.policy_body import PolicyBody
from service.sites.keys import get_or_create_site
from tests.factories import THRESHOLDS, WordModel
from tests.stack import free_port

CIVIL = "Thank you for the careful reporting on the ceasefire negotiations."
_counter = iter(range(1_000_000))


@pytest.fixture(scope="module")
def redis_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port()).start()
    try:
        yield redis.Redis.from_url(server.url)
    finally:
        server.stop()


def _policy(sessions: sessionmaker[Session], scope: str, key: str | None, body: dict) -> None:
    with session_scope(sessions) as session:
        get_or_create_site(session, "news")
        put_policy(
            session,
            "news",
            scope,
            key,
            PolicyBody.model_validate(body),
            actor="admin",
            defaults=THRESHOLDS,
        )


def _post(
    sessions: sessionmaker[Session],
    *texts: str,
    author: str = "reader",
    article: str = "a1",
    section: str | None = None,
    activity: RedisActivity | None = None,
) -> list[tuple[str, Decision]]:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        ids = [
            submit_comment(
                session,
                site_id,
                CommentIn(
                    external_id=f"x{next(_counter)}",
                    article_id=article,
                    section=section,
                    author_id=author,
                    text=text,
                ),
                max_text_chars=10_000,
            ).comment.id
            for text in texts
        ]
    decided: list[tuple[str, Decision]] = []
    for comment_id in ids:  # one at a time, as a reader posts them
        with session_scope(sessions) as session:
            decide_comments(
                session, [comment_id], WordModel(), default_thresholds=THRESHOLDS, activity=activity
            )
        with sessions() as session:
            comment = session.get_one(Comment, comment_id)
            decision = session.scalars(select(Decision).where(Decision.comment_id == comment_id))
            decided.append((comment.status, decision.one()))
    return decided


def _codes(decision: Decision) -> list[Any]:
    return [r["code"] for r in decision.reasons]


def test_new_commenters_are_held_until_enough_comments_were_approved(
    sessions: sessionmaker[Session],
) -> None:
    _post(sessions, CIVIL, CIVIL, author="veteran")
    _policy(sessions, "site", None, {"rules": {"new_commenter": {"approved_comments": 2}}})
    ((status, decision),) = _post(sessions, CIVIL, author="veteran")
    assert status == "approved"
    ((status, decision),) = _post(sessions, CIVIL, author="newbie")
    assert (status, _codes(decision)) == ("held", ["new_commenter"])
    assert decision.reasons[0]["approved"] == 0
    assert decision.scores, "a held newcomer's comment keeps its scores for the moderator"


def test_an_author_whose_recent_comments_were_rejected_is_premoderated(
    sessions: sessionmaker[Session],
) -> None:
    _post(sessions, CIVIL, CIVIL, CIVIL, author="troll")
    with session_scope(sessions) as session:  # moderators rejected two of the three
        rejected = select(Comment.id).where(Comment.status == CommentStatus.APPROVED).limit(2)
        ids = list(session.scalars(rejected))
        session.execute(
            update(Comment).where(Comment.id.in_(ids)).values(status=CommentStatus.REJECTED)
        )
    _policy(
        sessions, "site", None, {"rules": {"recent_rejections": {"rate": 0.5, "min_decided": 3}}}
    )
    ((status, decision),) = _post(sessions, CIVIL, author="troll")
    assert (status, _codes(decision)) == ("held", ["recent_rejections"])
    assert {k: decision.reasons[0][k] for k in ("decided", "rejected")} == {
        "decided": 3,
        "rejected": 2,
    }
    ((status, _),) = _post(sessions, CIVIL, author="someone else")
    assert status == "approved"


def test_links_from_authors_without_approved_comments_are_held(
    sessions: sessionmaker[Session],
) -> None:
    _post(sessions, CIVIL, author="regular")
    _policy(sessions, "site", None, {"rules": {"links": {"min_approved": 1}}})
    text = "More at https://example.com/peace"
    ((status, decision),) = _post(sessions, text, author="first-timer")
    assert (status, _codes(decision)) == ("held", ["link_from_new_commenter"])
    assert decision.reasons[0]["links"][0]["url"] == "https://example.com/peace"
    ((status, _),) = _post(sessions, text, author="regular")
    assert status == "approved"


def test_a_sections_reject_band_rejects_with_spans_and_others_hold(
    sessions: sessionmaker[Session],
) -> None:
    _policy(sessions, "section", "politics", {"reject_thresholds": {"toxic": 0.85}})
    ((status, decision),) = _post(sessions, "you idiot", section="politics")
    assert (status, decision.action) == ("rejected", "reject")
    (reason,) = decision.reasons
    assert reason["code"] == "attribute_over_reject_threshold"
    assert (reason["threshold"], reason["spans"][0]["text"]) == (0.85, "idiot")
    ((status, decision),) = _post(sessions, "you idiot", section="sport")
    assert (status, _codes(decision)) == (
        "held",
        ["attribute_over_threshold", "attribute_over_threshold"],
    )


def test_a_closed_article_rejects_or_refuses_as_its_site_chooses(
    sessions: sessionmaker[Session],
) -> None:
    (early,) = _post(sessions, CIVIL, article="peace-talks")
    _policy(sessions, "article", "peace-talks", {"closed": True, "closed_action": "reject"})
    ((status, decision),) = _post(sessions, CIVIL, article="peace-talks")
    assert (status, _codes(decision), decision.scores) == ("rejected", ["article_closed"], {})
    _policy(sessions, "article", "peace-talks", {"closed": True})
    payload = CommentIn(external_id="late", article_id="peace-talks", author_id="u", text=CIVIL)
    with pytest.raises(ArticleClosed) as refused, session_scope(sessions) as session:
        submit_comment(session, get_or_create_site(session, "news").id, payload, max_text_chars=100)
    assert (refused.value.status_code, refused.value.field) == (409, "article_id")
    with session_scope(sessions) as session:  # a retry of what was taken before still answers
        site_id = get_or_create_site(session, "news").id
        first = session.get_one(Comment, early[1].comment_id)
        retry = CommentIn(
            external_id=first.external_id, article_id="peace-talks", author_id="reader", text=CIVIL
        )
        again = submit_comment(session, site_id, retry, max_text_chars=100)
        assert (again.comment.id, again.created) == (first.id, False)
    assert _post(sessions, CIVIL, article="elsewhere")[0][0] == "approved"


def test_a_premoderated_article_holds_everything(sessions: sessionmaker[Session]) -> None:
    _policy(sessions, "article", "peace-talks", {"premoderate_all": True})
    ((status, decision),) = _post(sessions, CIVIL, article="peace-talks")
    assert (status, _codes(decision)) == ("held", ["premoderate_all"])
    assert _post(sessions, CIVIL, article="weather")[0][0] == "approved"


def test_repeated_texts_and_floods_are_held_counted_in_redis(
    sessions: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    redis_client.flushall()
    activity = RedisActivity(redis_client)
    _policy(sessions, "site", None, {"rules": {"flood": {"max_repeats": 2, "max_per_minute": 4}}})
    same = ["Sign the deal NOW!", "sign the deal now", "SIGN THE DEAL NOW!!!"]
    decided = _post(sessions, *same, author="spammer", activity=activity)
    assert [status for status, _ in decided] == ["approved", "approved", "held"]
    assert _codes(decided[2][1]) == ["repeated_text"]
    assert decided[2][1].reasons[0]["count"] == 3
    more = _post(sessions, "one", "two", author="spammer", activity=activity)
    assert [status for status, _ in more] == ["approved", "held"]
    assert _codes(more[1][1]) == ["flood"] and more[1][1].reasons[0]["count"] == 5
    assert _post(sessions, same[0], author="calm reader", activity=activity)[0][0] == "approved"


def _submit_only(sessions: sessionmaker[Session], texts: list[str], **where: Any) -> list[str]:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        return [
            submit_comment(
                session,
                site_id,
                CommentIn(external_id=f"x{next(_counter)}", text=text, **where),
                max_text_chars=10_000,
            ).comment.id
            for text in texts
        ]


def test_a_flood_decided_newest_first_still_counts_the_comments_before_it(
    sessions: sessionmaker[Session], redis_client: redis.Redis
) -> None:
    redis_client.flushall()
    _policy(sessions, "site", None, {"rules": {"flood": {"max_per_minute": 5}}})
    ids = _submit_only(
        sessions, [f"point number {i}" for i in range(6)], article_id="a1", author_id="burst"
    )
    with session_scope(sessions) as session:  # the newest comment's task runs first, alone
        decide_comments(
            session,
            [ids[-1]],
            WordModel(),
            default_thresholds=THRESHOLDS,
            activity=RedisActivity(redis_client),
        )
    with sessions() as session:
        decision = session.scalars(select(Decision).where(Decision.comment_id == ids[-1])).one()
    assert _codes(decision) == ["flood"] and decision.reasons[0]["count"] == 6


def test_one_authors_comments_in_one_batch_each_get_their_own_policys_history(
    sessions: sessionmaker[Session],
) -> None:
    _policy(
        sessions,
        "article",
        "a30",
        {"rules": {"new_commenter": {}, "recent_rejections": {"window_days": 30}}},
    )
    ids = [
        *_submit_only(sessions, [CIVIL], article_id="a30", author_id="newbie"),
        *_submit_only(sessions, [CIVIL], article_id="other", author_id="newbie"),
    ]
    with session_scope(sessions) as session:
        decide_comments(session, ids, WordModel(), default_thresholds=THRESHOLDS)
    with sessions() as session:
        statuses = [session.get_one(Comment, i).status for i in ids]
    assert statuses == ["held", "approved"]
