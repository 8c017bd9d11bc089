"""A site's policy per level, on SQLite and PostgreSQL: replaced, read back, deleted, resolved
most specific first, audited, and refused whole when it does not hold together."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.errors import InvalidInput, NotFound, SiteNotFound
from service.core.tables import AuditEntry, Site
from service.rules.overrides import (
    current_policies,
    delete_policy,
    effective_view,
    get_policy,
    put_policy,
)
from service.rules.policy_body import PolicyBody
from service.sites.keys import get_or_create_site

DEFAULTS = {"toxic": 0.2, "insult": 0.2}


def _put(session: Session, scope: str, key: str | None, body: dict) -> dict:
    return put_policy(
        session,
        "news",
        scope,
        key,
        PolicyBody.model_validate(body),
        actor="admin",
        defaults=DEFAULTS,
    )


def test_levels_resolve_site_then_section_then_article(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        _put(session, "site", None, {"thresholds": {"toxic": 0.4}})
        _put(
            session, "section", "politics", {"thresholds": {"toxic": 0.3}, "premoderate_all": True}
        )
        _put(session, "article", "peace-talks", {"closed": True})
    with session_scope(sessions) as session:
        version = session.scalar(select(Site.policy_version).where(Site.id == site_id))
        assert version == 3, "every change moves the version the workers follow"
        policies = current_policies(session, site_id, version or 0)
        article = policies.resolve(session, DEFAULTS, "politics", "peace-talks")
        assert (article.thresholds["toxic"], article.premoderate_all, article.closed) == (
            0.3,
            True,
            True,
        )
        elsewhere = policies.resolve(session, DEFAULTS, "sport", "match")
        assert (elsewhere.thresholds["toxic"], elsewhere.premoderate_all) == (0.4, False)
        assert not policies.resolve(session, DEFAULTS, "sport", "peace-talks").premoderate_all


def test_the_effective_policy_of_an_article_names_its_sources(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        submit_comment(
            session,
            site_id,
            CommentIn(
                external_id="c1",
                article_id="peace-talks",
                author_id="u",
                text="hi",
                section="politics",
            ),
            max_text_chars=100,
        )
        _put(session, "section", "politics", {"rules": {"links": {"max_links": 1}}})
        _put(session, "article", "peace-talks", {"rules": {"links": {"max_links": 0}}})
    with session_scope(sessions) as session:
        view = effective_view(
            session,
            "news",
            "peace-talks",
            section=None,
            defaults=DEFAULTS,
            unsupported_language="hold",
        )
    assert view["section"] == "politics", "the section of the article's comments"
    assert view["from"] == ["defaults", "section", "article"]
    assert view["policy"]["rules"]["links"] == {"max_links": 0}
    assert view["policy"]["thresholds"] == DEFAULTS


def test_changes_are_audited_with_before_and_after(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        get_or_create_site(session, "news")
        _put(session, "article", "a1", {"closed": True})
        _put(session, "article", "a1", {"closed": False})
        delete_policy(session, "news", "article", "a1", actor="admin")
    with session_scope(sessions) as session:
        events = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        policy_events = [e for e in events if e.event.startswith("policy.")]
        assert [(e.event, e.data["from"], e.data["to"]) for e in policy_events] == [
            ("policy.updated", {}, {"closed": True}),
            ("policy.updated", {"closed": True}, {"closed": False}),
            ("policy.deleted", {"closed": False}, {}),
        ]
        assert all(e.actor == "admin" and e.data["key"] == "a1" for e in policy_events)
        assert get_policy(session, "news", "article", "a1")["policy"] == {}


def test_what_does_not_hold_together_is_refused_and_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        get_or_create_site(session, "news")
        _put(session, "site", None, {"thresholds": {"toxic": 0.6}})
    with pytest.raises(InvalidInput) as low, session_scope(sessions) as session:
        # Below the site's hold threshold: it would reject what is not even held.
        _put(session, "article", "a1", {"reject_thresholds": {"toxic": 0.5}})
    assert low.value.field == "reject_thresholds"
    with session_scope(sessions) as session:
        _put(session, "section", "opinion", {"reject_thresholds": {"toxic": 0.7}})
    with pytest.raises(InvalidInput) as above, session_scope(sessions) as session:
        # The site's threshold raised above a section's band: refused, not silently rejecting.
        _put(session, "site", None, {"thresholds": {"toxic": 0.8}})
    assert above.value.field == "reject_thresholds"
    with pytest.raises(InvalidInput) as scope, session_scope(sessions) as session:
        _put(session, "story", "a1", {})
    assert scope.value.field == "scope"
    with pytest.raises(InvalidInput), session_scope(sessions) as session:
        _put(session, "article", "  ", {})
    with pytest.raises(SiteNotFound), session_scope(sessions) as session:
        put_policy(session, "nowhere", "site", None, PolicyBody(), actor="admin", defaults=DEFAULTS)
    with pytest.raises(NotFound), session_scope(sessions) as session:
        delete_policy(session, "news", "section", "sport", actor="admin")
    with session_scope(sessions) as session:
        assert get_policy(session, "news", "article", "a1")["policy"] == {}
        assert session.scalar(select(Site.policy_version).where(Site.name == "news")) == 2
