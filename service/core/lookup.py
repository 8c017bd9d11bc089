"""Look a site up by its name, as every feature that takes a site's name from a route does."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import SiteNotFound
from service.core.tables import Site

__all__ = ["site_named"]


def site_named(session: Session, name: str) -> Site:
    site = session.scalar(select(Site).where(Site.name == name))
    if site is None:
        raise SiteNotFound(f"no site named {name!r}", field="site")
    return site
