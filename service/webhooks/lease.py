"""Webhook leases: find the due deliveries, take one for an attempt, hand a freed slot on.

A lease is one worker's hold on one delivery for one attempt: the row is marked as sending
until `lease_until`, in a short transaction of its own before the POST, and no other worker
takes the delivery over until that lease has expired (the worker holding it died). A pending
row's `lease_until` marks it as queued instead: a message is on its way.

Fairness: at most `site_concurrency` of one site's deliveries are in flight at once, counted
in the lease itself, so a slow receiver holds a few of the workers' threads, never all of
them. The limit lives here because only the lease can keep it: the count and the taking of the
slot are one statement, serialised per site, so two workers never both see the last free slot.
A due delivery of a site at its limit stays pending, unmarked, and is handed the slot of the
site's next attempt to end (`AttemptResult.handed_to`, through `hand_over`); retry_webhooks
finds any that nothing handed a slot to, at most `site_concurrency` per site a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from service.core.db import rowcount
from service.core.tables import Site, WebhookDelivery
from service.webhooks.config import DeliveryStatus

__all__ = ["LeasedDelivery", "due_deliveries", "hand_over", "lease_delivery", "lock_site"]

log = structlog.get_logger(__name__)


def _due_pending(now: datetime) -> ColumnElement[bool]:
    return and_(
        WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now
    )


def _not_queued(now: datetime) -> ColumnElement[bool]:
    # A pending row's `lease_until` marks it as queued until then: a message is on its way.
    return or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now)


def due_deliveries(
    session: Session,
    *,
    now: datetime,
    requeue_after: timedelta,
    limit: int = 500,
    per_site: int | None = None,
) -> list[str]:
    """Ids of deliveries to enqueue: pending and due, or leased by a worker that died.

    Each is marked as queued until `requeue_after` (in `lease_until`, which a pending row
    does not otherwise use), so a backlog is not enqueued again on every run. At most
    `per_site` of one site's, oldest first: a site at its concurrency limit would refuse
    the rest, and a stuck receiver's backlog must not cost a refused task each per run.
    """
    due = or_(
        and_(_due_pending(now), _not_queued(now)),
        and_(WebhookDelivery.status == DeliveryStatus.SENDING, WebhookDelivery.lease_until <= now),
    )
    ranked = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.next_attempt_at,
            func.row_number()
            .over(
                partition_by=WebhookDelivery.site_id,
                order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
            )
            .label("place"),
        )
        .where(due)
        .subquery()
    )
    query = select(ranked.c.id).order_by(ranked.c.next_attempt_at).limit(limit)
    if per_site is not None:
        query = query.where(ranked.c.place <= per_site)
    ids = list(session.scalars(query))
    if ids:
        # The same condition again: a row a worker leased meanwhile keeps its lease.
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), due)
            .values(status=DeliveryStatus.PENDING, lease_until=now + requeue_after)
            .execution_options(synchronize_session=False)
        )
    return ids


@dataclass(frozen=True)
class LeasedDelivery:
    """A delivery as one attempt sends it: the site's current URL and secret."""

    delivery_id: str
    site_id: int
    number: int
    event: str
    url: str | None
    secret: str | None
    payload: dict[str, Any]
    created_at: datetime


def lock_site(session: Session, site_id: int | ColumnElement[int]) -> None:
    """On PostgreSQL, hold the site's row until commit: its leases are taken one at a time.

    Under READ COMMITTED two leases counting at once would both see a free slot; the second
    waits here, and its next statement sees the first's lease. FOR NO KEY UPDATE, so inserts
    that reference the site (comments, deliveries) do not wait. SQLite needs none of this:
    its one writer runs the lease's count and write as one statement.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Site.id).where(Site.id == site_id).with_for_update(key_share=True))


def _site_has_room(now: datetime, site_limit: int) -> ColumnElement[bool]:
    """Whether the updated row's site has fewer than `site_limit` live leases (an expired
    lease is a worker that died: its slot is free)."""
    other = aliased(WebhookDelivery)
    live = (
        select(func.count())
        .select_from(other)
        .where(
            # `+ 0` keeps the planner off the (site, created) index, which would read the
            # site's whole history (SQLite has no statistics to know better): the few rows
            # in flight are found through the (status, next_attempt_at) index instead.
            other.site_id + 0 == WebhookDelivery.site_id,
            other.status == DeliveryStatus.SENDING,
            other.lease_until > now,
        )
        .scalar_subquery()
    )
    return live < site_limit


def lease_delivery(
    session: Session, delivery_id: str, *, now: datetime, lease: timedelta, site_limit: int
) -> LeasedDelivery | None:
    """Take the delivery for one attempt, or None: it is not due, another worker has it, or
    its site already has `site_limit` attempts in flight.

    In the last case it stays pending, due and no longer marked as queued, so the next of its
    site's attempts to end hands it the slot; no attempt is counted.
    """
    lock_site(
        session,
        select(WebhookDelivery.site_id).where(WebhookDelivery.id == delivery_id).scalar_subquery(),
    )
    expired = and_(
        WebhookDelivery.status == DeliveryStatus.SENDING, WebhookDelivery.lease_until <= now
    )
    taken = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            or_(_due_pending(now), expired),
            _site_has_room(now, site_limit),
        )
        .values(
            status=DeliveryStatus.SENDING,
            lease_until=now + lease,
            attempts=WebhookDelivery.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(taken) != 1:
        waiting = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, _due_pending(now))
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )
        if rowcount(waiting) == 1:
            log.debug("webhook_site_at_limit", delivery_id=delivery_id, limit=site_limit)
        return None
    return _leased(session, delivery_id)


def _leased(session: Session, delivery_id: str) -> LeasedDelivery:
    row = session.execute(
        select(WebhookDelivery, Site.webhook_url, Site.webhook_secret)
        .join(Site, Site.id == WebhookDelivery.site_id)
        .where(WebhookDelivery.id == delivery_id)
        .execution_options(populate_existing=True)
    ).one()
    delivery, url, secret = row
    # The site's current URL and secret: a fixed URL or a rotated secret applies to retries.
    if url is not None:
        delivery.url = url
    return LeasedDelivery(
        delivery.id,
        delivery.site_id,
        delivery.attempts,
        delivery.event,
        url,
        secret,
        delivery.payload,
        delivery.created_at,
    )


def hand_over(
    session: Session, site_id: int, *, now: datetime, requeue_after: timedelta
) -> str | None:
    """The site's oldest due delivery no message is on its way to, marked as queued."""
    waiting = and_(WebhookDelivery.site_id == site_id, _due_pending(now), _not_queued(now))
    next_id = session.scalar(
        select(WebhookDelivery.id)
        .where(waiting)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
    )
    if next_id is None:
        return None
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == next_id, waiting)
        .values(lease_until=now + requeue_after)
        .execution_options(synchronize_session=False)
    )
    return next_id
