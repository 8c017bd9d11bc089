"""API keys: creation (shown once), hashing, look-up and revocation."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import AuthError, Forbidden, InvalidInput, NotFound
from service.core.tables import ApiKey, Role, Site, utcnow

__all__ = [
    "ADMIN_WAS_SPLIT",
    "KEYS_CHANGED",
    "KEY_PREFIX",
    "OLD_ADMIN_ROLE",
    "UNKNOWN_KEY",
    "authenticate",
    "check_grant",
    "create_key",
    "get_or_create_site",
    "hash_key",
    "key_view",
    "list_keys",
    "managed_key",
    "revoke_key",
    "rotate_key",
]

UNKNOWN_KEY = "unknown or revoked API key"
# Announced on Redis after a key is revoked or rotated or a site's quota changes, so that
# every API process forgets the keys it remembered (service/http/key_cache.py).
KEYS_CHANGED = "moderation:keys-changed"

KEY_PREFIX = "mk_"


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is as safe as a slow one and costs a
    # microsecond on every request instead of a hundred milliseconds.
    return hashlib.sha256(key.encode()).hexdigest()


def get_or_create_site(session: Session, name: str) -> Site:
    site = session.scalar(select(Site).where(Site.name == name))
    if site is None:
        site = Site(name=name, policy={})
        session.add(site)
        session.flush()
    return site


# The name before roles were split per site (schema 0006), and what a caller using it is told.
OLD_ADMIN_ROLE = "admin"
ADMIN_WAS_SPLIT = "role 'admin' is now 'site_admin' (one site) or 'operator' (the deployment)"


def _check_role(role: str) -> None:
    if role == OLD_ADMIN_ROLE:
        raise InvalidInput(ADMIN_WAS_SPLIT, field="role")
    if role not in Role.ALL:
        raise InvalidInput(f"role must be one of {', '.join(Role.ALL)}", field="role")


def check_grant(*, by_role: str, by_site: str, site_name: str, role: str) -> None:
    """Forbidden unless a key of `by_role` on `by_site` may issue a `role` key for `site_name`:
    an operator anything anywhere, a site admin any role but operator on its own site."""
    _check_role(role)
    if by_role == Role.OPERATOR:
        return
    if by_role != Role.SITE_ADMIN:
        raise Forbidden(f"a {by_role} key may not issue keys", field="role")
    if site_name != by_site:
        raise Forbidden("a site_admin key issues keys for its own site only", field="site")
    if role == Role.OPERATOR:
        raise Forbidden("only an operator key may issue operator keys", field="role")


def create_key(
    session: Session, *, site_name: str, role: str, name: str = ""
) -> tuple[ApiKey, str]:
    """Create a key for a site (created if new); the plain key is returned once, never stored."""
    _check_role(role)
    if not site_name.strip():
        raise InvalidInput("site name must not be empty", field="site")
    site = get_or_create_site(session, site_name.strip())
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(site_id=site.id, role=role, prefix=plain[:10], key_hash=hash_key(plain), name=name)
    session.add(key)
    session.flush()
    return key, plain


def authenticate(session: Session, plain: str | None) -> ApiKey:
    if not plain:
        raise AuthError(
            "missing API key: send 'Authorization: Bearer <key>'", field="Authorization"
        )
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plain)))
    # A rotated key may stay valid for a grace period: revoked_at then lies in the future.
    revoked = key is not None and key.revoked_at is not None and key.revoked_at <= utcnow()
    if key is None or revoked:
        # One answer for both: a guesser learns nothing from a key that once existed.
        raise AuthError(UNKNOWN_KEY, field="Authorization")
    return key


def _by_prefix(session: Session, prefix: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFound(f"no key starts with {prefix!r}", field="prefix")
    return key


def managed_key(session: Session, prefix: str, *, by_role: str, by_site_id: int) -> ApiKey:
    """The key `prefix` if a `by_role` key of site `by_site_id` may revoke or rotate it: an
    operator any key, a site admin its own site's keys but operators'. Any other is answered
    as unknown, so a site admin learns nothing of other sites' keys."""
    key = _by_prefix(session, prefix)
    if by_role == Role.OPERATOR:
        return key
    if by_role != Role.SITE_ADMIN or key.site_id != by_site_id or key.role == Role.OPERATOR:
        raise NotFound(f"no key starts with {prefix!r}", field="prefix")
    return key


def revoke_key(session: Session, prefix: str) -> ApiKey:
    key = _by_prefix(session, prefix)
    if key.revoked_at is None or key.revoked_at > utcnow():
        key.revoked_at = utcnow()
    session.flush()
    return key


def rotate_key(session: Session, prefix: str, *, grace_seconds: int = 0) -> tuple[ApiKey, str]:
    """A new key for the same site, role and name; the old one stops working after the grace
    period, so a site backend can switch over without a failed request."""
    old = _by_prefix(session, prefix)
    now = utcnow()
    if old.revoked_at is not None and old.revoked_at <= now:
        raise InvalidInput(f"key {prefix!r} is revoked; create a new one", field="prefix")
    key, plain = create_key(session, site_name=old.site.name, role=old.role, name=old.name)
    old.revoked_at = now + timedelta(seconds=grace_seconds)
    session.flush()
    return key, plain


def key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "site": key.site.name,
        "role": key.role,
        "name": key.name,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def list_keys(
    session: Session, site_id: int | None = None, *, operators: bool = True
) -> list[dict[str, Any]]:
    """The keys of a site (None: every site), without operator keys unless `operators`: a
    site admin neither sees nor manages the deployment's keys, even on its own site."""
    query = select(ApiKey).order_by(ApiKey.id)
    if site_id is not None:
        query = query.where(ApiKey.site_id == site_id)
    if not operators:
        query = query.where(ApiKey.role != Role.OPERATOR)
    return [key_view(k) for k in session.scalars(query)]
