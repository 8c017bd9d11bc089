"""A site's Coral Talk integration: the secret Coral signs its external moderation calls with."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import InvalidInput
from service.core.tables import AuditEntry, Site, utcnow
from service.sites.sites import get_site

__all__ = [
    "MAX_SIGNING_SECRET_LENGTH",
    "MIN_SIGNING_SECRET_LENGTH",
    "coral_signing_secret",
    "coral_signing_secret_set",
    "remove_coral_signing_secret",
    "set_coral_signing_secret",
]

MIN_SIGNING_SECRET_LENGTH = 16
MAX_SIGNING_SECRET_LENGTH = 200  # the column's size


def _checked(secret: str) -> str:
    if not MIN_SIGNING_SECRET_LENGTH <= len(secret) <= MAX_SIGNING_SECRET_LENGTH:
        raise InvalidInput(
            f"the signing secret must be {MIN_SIGNING_SECRET_LENGTH} to "
            f"{MAX_SIGNING_SECRET_LENGTH} characters",
            field="signing_secret",
        )
    # A secret pasted with a newline would fail every signature, silently, for every comment.
    if secret != secret.strip():
        raise InvalidInput(
            "the signing secret must not start or end with whitespace", field="signing_secret"
        )
    return secret


def set_coral_signing_secret(session: Session, site_name: str, *, secret: str, actor: str) -> str:
    """Store the site's Coral signing secret (replacing any); the site's name. The audit entry
    says whether it changed, never what it is."""
    site = get_site(session, site_name)
    checked = _checked(secret)
    changed = checked != site.coral_signing_secret
    site.coral_signing_secret = checked
    session.add(
        AuditEntry(
            site_id=site.id,
            actor=actor,
            event="coral.secret_set",
            data={"secret_changed": changed},
            created_at=utcnow(),
        )
    )
    session.flush()
    return site.name


def remove_coral_signing_secret(session: Session, site_name: str, *, actor: str) -> None:
    """Forget the site's Coral signing secret: every external moderation call is then refused."""
    site = get_site(session, site_name)
    if site.coral_signing_secret is None:
        return
    site.coral_signing_secret = None
    session.add(
        AuditEntry(
            site_id=site.id, actor=actor, event="coral.secret_removed", data={}, created_at=utcnow()
        )
    )
    session.flush()


def coral_signing_secret(session: Session, site_id: int) -> str | None:
    """The site's Coral signing secret, or None when none is set."""
    return session.scalar(select(Site.coral_signing_secret).where(Site.id == site_id))


def coral_signing_secret_set(session: Session, site_name: str) -> bool:
    """Whether the named site has a Coral signing secret (which is never shown)."""
    return get_site(session, site_name).coral_signing_secret is not None
