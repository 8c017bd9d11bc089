"""Record a site-level event (no comment) in the audit log: who, what, when, with what data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.core.tables import AuditEntry, utcnow

__all__ = ["audit_site"]


def audit_site(
    session: Session,
    site_id: int,
    actor: str,
    event: str,
    data: dict[str, Any],
    *,
    at: datetime | None = None,
) -> None:
    session.add(
        AuditEntry(
            site_id=site_id,
            comment_id=None,
            actor=actor,
            event=event,
            data=data,
            created_at=at or utcnow(),
        )
    )
