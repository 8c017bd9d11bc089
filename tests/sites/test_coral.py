"""A site's Coral signing secret over a real database: set, read, replaced, removed, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.errors import InvalidInput, SiteNotFound
from service.core.tables import AuditEntry
from service.sites.coral import (
    coral_signing_secret,
    coral_signing_secret_set,
    remove_coral_signing_secret,
    set_coral_signing_secret,
)
from service.sites.keys import get_or_create_site

SECRET = "ssc_2f8a4c1e9b7d4e6fa0c35b8d91e7f264"


def _site(sessions: sessionmaker[Session], name: str = "news") -> int:
    with session_scope(sessions) as session:
        return get_or_create_site(session, name).id


def _audit(session: Session, site_id: int) -> list[tuple[str, dict[str, object]]]:
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.site_id == site_id).order_by(AuditEntry.id)
    )
    return [(row.event, row.data) for row in rows if row.event.startswith("coral.")]


def test_the_secret_is_set_read_and_replaced_with_an_audit_that_never_holds_it(
    sessions: sessionmaker[Session],
) -> None:
    site_id, other_id = _site(sessions), _site(sessions, "other")
    with session_scope(sessions) as session:
        assert coral_signing_secret(session, site_id) is None
        assert not coral_signing_secret_set(session, "news")
        assert set_coral_signing_secret(session, "news", secret=SECRET, actor="admin") == "news"
    with session_scope(sessions) as session:
        assert coral_signing_secret(session, site_id) == SECRET
        assert coral_signing_secret_set(session, "news")
        assert coral_signing_secret(session, other_id) is None, "one site's secret only"
        set_coral_signing_secret(session, "news", secret=SECRET, actor="admin")
        set_coral_signing_secret(session, "news", secret=SECRET[::-1], actor="admin")
    with session_scope(sessions) as session:
        assert coral_signing_secret(session, site_id) == SECRET[::-1]
        audit = _audit(session, site_id)
    assert audit == [
        ("coral.secret_set", {"secret_changed": True}),
        ("coral.secret_set", {"secret_changed": False}),
        ("coral.secret_set", {"secret_changed": True}),
    ]
    assert SECRET not in repr(audit) and SECRET[::-1] not in repr(audit)


def test_a_removed_secret_is_gone_and_removing_none_records_nothing(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site(sessions)
    with session_scope(sessions) as session:
        remove_coral_signing_secret(session, "news", actor="admin")
        set_coral_signing_secret(session, "news", secret=SECRET, actor="admin")
        remove_coral_signing_secret(session, "news", actor="admin")
    with session_scope(sessions) as session:
        assert coral_signing_secret(session, site_id) is None
        assert [event for event, _ in _audit(session, site_id)] == [
            "coral.secret_set",
            "coral.secret_removed",
        ]


@pytest.mark.parametrize("secret", ["x" * 15, "x" * 201, f" {SECRET}", f"{SECRET}\n"])
def test_a_bad_secret_is_refused_and_the_old_one_kept(
    sessions: sessionmaker[Session], secret: str
) -> None:
    site_id = _site(sessions)
    with session_scope(sessions) as session:
        set_coral_signing_secret(session, "news", secret=SECRET, actor="admin")
    with pytest.raises(InvalidInput) as raised, session_scope(sessions) as session:
        set_coral_signing_secret(session, "news", secret=secret, actor="admin")
    assert raised.value.field == "signing_secret"
    with session_scope(sessions) as session:
        assert coral_signing_secret(session, site_id) == SECRET


def test_an_unknown_site_has_no_secret(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(SiteNotFound), session_scope(sessions) as session:
        set_coral_signing_secret(session, "nowhere", secret=SECRET, actor="admin")
    with pytest.raises(SiteNotFound), session_scope(sessions) as session:
        coral_signing_secret_set(session, "nowhere")
