"""Sites (tenants): listing, creation, policy and quota; the routes check who may do which."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.audit import audit_site
from service.core.errors import Conflict
from service.core.lookup import site_named
from service.core.tables import Site

__all__ = ["create_site", "get_site", "list_sites", "set_quota", "site_view"]


def site_view(site: Site) -> dict[str, Any]:
    return {
        "name": site.name,
        "policy": site.policy,
        "webhook_url": site.webhook_url,
        "quota": {"requests_per_second": site.key_requests_per_second, "burst": site.key_burst},
        "retention_days": site.retention_days,
        "created_at": site.created_at,
    }


def get_site(session: Session, name: str) -> Site:
    return site_named(session, name)


def list_sites(session: Session) -> list[dict[str, Any]]:
    return [site_view(s) for s in session.scalars(select(Site).order_by(Site.name))]


def create_site(session: Session, name: str, *, actor: str) -> dict[str, Any]:
    if session.scalar(select(Site.id).where(Site.name == name)) is not None:
        raise Conflict(f"a site named {name!r} exists", field="name")
    site = Site(name=name, policy={})
    session.add(site)
    session.flush()
    audit_site(session, site.id, actor, "site.created", {"name": name})
    return site_view(site)


def set_quota(
    session: Session, name: str, *, per_second: float | None, burst: int | None, actor: str
) -> dict[str, Any]:
    """Set the quota of the site's keys (None: the deployment's default), logged."""
    site = get_site(session, name)
    previous = {"requests_per_second": site.key_requests_per_second, "burst": site.key_burst}
    site.key_requests_per_second, site.key_burst = per_second, burst
    current = {"requests_per_second": per_second, "burst": burst}
    audit_site(session, site.id, actor, "quota.updated", {"from": previous, "to": current})
    session.flush()
    return site_view(site)
