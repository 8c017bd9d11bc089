"""The registry's versions as one key may see them, newest first, the artifacts left unread."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from service.core.tables import ModelVersion
from service.models.registry import active_version, version_view, version_view_for_site

__all__ = ["list_versions"]


def list_versions(session: Session, *, site_name: str | None, limit: int = 100) -> dict[str, Any]:
    """`{"active": version, "versions": [view, ...]}`, newest first. With `site_name` (a key
    of one site) each view is what that site may see of it; None is an operator's view."""
    active = active_version(session)
    # An artifact is megabytes: a listing never reads one.
    rows = session.scalars(
        select(ModelVersion)
        .options(defer(ModelVersion.archive))
        .order_by(ModelVersion.created_at.desc())
        .limit(limit)
    )
    if site_name is None:
        views = [version_view(row, active=active) for row in rows]
    else:
        views = [version_view_for_site(row, active=active, site_name=site_name) for row in rows]
    return {"active": active, "versions": views}
