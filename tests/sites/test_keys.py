"""API keys: shown once, stored hashed, refused once revoked."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.errors import AuthError, InvalidInput
from service.core.tables import ApiKey
from service.sites.keys import authenticate, create_key, hash_key, revoke_key


def test_key_is_stored_only_as_its_hash(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        _, plain = create_key(session, site_name="news", role="submitter")
    with session_scope(sessions) as session:
        stored = session.scalars(select(ApiKey)).one()
        assert stored.key_hash == hash_key(plain)
        assert plain not in (stored.key_hash, stored.prefix)
        assert authenticate(session, plain).site.name == "news"


def test_revoked_key_is_refused(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        _, plain = create_key(session, site_name="news", role="moderator")
    with session_scope(sessions) as session:
        revoke_key(session, plain[:10])
    with pytest.raises(AuthError, match="revoked"), session_scope(sessions) as session:
        authenticate(session, plain)


def test_unknown_role_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidInput) as raised, session_scope(sessions) as session:
        create_key(session, site_name="news", role="owner")
    assert raised.value.field == "role"
