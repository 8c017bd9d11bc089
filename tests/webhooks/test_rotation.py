"""Rotating a webhook's signing secret: shown once, checked URL, nothing without a URL."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.errors import InvalidInput
from service.core.tables import AuditEntry, Site
from service.sites.keys import get_or_create_site
from service.webhooks.rotation import rotate_webhook_secret

URL = "http://127.0.0.1:9/hooks/moderation"
OLD_SECRET = "s3cret-s3cret-s3cret"
OWN = [("moderation.example", 443)]


def _rotate(session: Session, *, allowed: tuple[str, ...] = ("127.0.0.0/8",)) -> str | None:
    config = rotate_webhook_secret(
        session,
        "news",
        actor="admin key mk_1",
        service_origins=OWN,
        api_port=8000,
        allowed_networks=allowed,
    )
    return config.secret


def test_a_rotated_secret_is_new_returned_once_and_audited_without_its_value(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        site = get_or_create_site(session, "news")
        site.webhook_url, site.webhook_secret = URL, OLD_SECRET
    with session_scope(sessions) as session:
        secret = _rotate(session)
    assert secret is not None and len(secret) >= 32 and secret != OLD_SECRET
    with session_scope(sessions) as session:
        stored = session.scalar(select(Site).where(Site.name == "news"))
        assert stored is not None and (stored.webhook_url, stored.webhook_secret) == (URL, secret)
        (entry,) = session.scalars(select(AuditEntry)).all()
    assert (entry.event, entry.data) == ("webhook.updated", {"url": URL, "secret_changed": True})


def test_no_rotation_without_a_url_or_once_the_url_is_no_longer_allowed(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        get_or_create_site(session, "news")
    with pytest.raises(InvalidInput) as error, session_scope(sessions) as session:
        _rotate(session)
    assert error.value.field == "url" and "set one first" in error.value.detail
    with session_scope(sessions) as session:
        site = session.scalar(select(Site).where(Site.name == "news"))
        assert site is not None
        site.webhook_url, site.webhook_secret = URL, OLD_SECRET
    # The deployment no longer allows loopback: the same checks as setting the URL refuse it.
    with pytest.raises(InvalidInput), session_scope(sessions) as session:
        _rotate(session, allowed=())
    with session_scope(sessions) as session:
        assert session.scalar(select(Site.webhook_secret)) == OLD_SECRET
