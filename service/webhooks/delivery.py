"""Webhook delivery: lease a due delivery, POST it signed, record the attempt, back off, list.

Delivery is at least once: a receiver may see one delivery twice (a worker died after the POST
but before recording it) and should de-duplicate on `X-Moderation-Delivery`. Each attempt runs
in two short transactions around the HTTP call (lease, then result), so no database
transaction stays open while a slow receiver thinks.

Every attempt resolves the URL's host again, refuses internal addresses and connects to the
very address it checked (outbound.py); the whole attempt ends within `timeout_seconds`,
however slowly the receiver answers.

Fairness: at most `site_concurrency` of one site's deliveries are in flight at once, counted
in the lease itself, so a slow receiver holds a few of the workers' threads, never all of
them. A due delivery of a site at its limit stays pending, unmarked, and is handed the slot
of the site's next attempt to end (`AttemptResult.handed_to`); retry_webhooks finds any that
nothing handed a slot to, at most `site_concurrency` per site a run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from service.core.db import rowcount, session_scope
from service.core.settings import Settings
from service.core.tables import Site, WebhookAttempt, WebhookDelivery, utcnow
from service.webhooks.config import WEBHOOK_REMOVED, DeliveryStatus, signed_headers
from service.webhooks.outbound import BLOCKED, post

__all__ = [
    "BLOCKED",
    "AttemptResult",
    "DeliveryRecord",
    "LeasedDelivery",
    "RetryPolicy",
    "attempt_delivery",
    "backoff_seconds",
    "due_deliveries",
    "lease_delivery",
    "list_deliveries",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 5.0
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    give_up_after: timedelta = timedelta(hours=24)
    # CIDRs a deployment lets webhooks reach although they are internal (outbound.py).
    allowed_networks: tuple[str, ...] = ()
    # At most this many of one site's deliveries in flight at once, across every worker.
    site_concurrency: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            timeout_seconds=settings.webhook_timeout_seconds,
            backoff_base_seconds=settings.webhook_backoff_base_seconds,
            backoff_max_seconds=settings.webhook_backoff_max_seconds,
            give_up_after=timedelta(hours=settings.webhook_give_up_hours),
            allowed_networks=tuple(settings.webhook_allowed_networks),
            site_concurrency=settings.webhook_site_concurrency,
        )

    @property
    def lease(self) -> timedelta:
        # An attempt ends within timeout_seconds, but a DNS lookup in progress cannot be cut
        # short: leave ample room before another worker may take the delivery over.
        return timedelta(seconds=2 * self.timeout_seconds + 30)


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    maximum: float,
    jitter: float = 0.1,
    rand: Callable[[], float] = random.random,
) -> float:
    """base, 2·base, 4·base ... capped at maximum, less up to `jitter` of it, so deliveries
    that failed together (a receiver was down) do not all come back in the same second."""
    delay: float = min(base * 2 ** min(max(attempt - 1, 0), 60), maximum)  # int ** int is Any
    return delay * (1 - jitter * rand())


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


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: str
    number: int
    status: str  # the delivery's status afterwards
    status_code: int | None
    error: str | None
    # The site's next delivery that waited for a slot, given this attempt's: the caller
    # enqueues it (marked as queued already).
    handed_to: str | None = None


def _lock_site(session: Session, site_id: int | ColumnElement[int]) -> None:
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
    _lock_site(
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


def _hand_over(
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


def _send(
    client: httpx.Client, out: LeasedDelivery, *, now: datetime, policy: RetryPolicy
) -> int | str:
    """The receiver's status code, or a description of why there was none."""
    assert out.url is not None and out.secret is not None
    body = orjson.dumps(out.payload)
    headers = signed_headers(
        out.secret,
        body,
        event=out.event,
        delivery_id=out.delivery_id,
        timestamp=int(now.timestamp()),
    )
    return post(
        client,
        out.url,
        body=body,
        headers=headers,
        timeout_seconds=policy.timeout_seconds,
        allowed_networks=policy.allowed_networks,
    )


def _next_state(
    out: LeasedDelivery, code: int | None, error: str | None, *, now: datetime, policy: RetryPolicy
) -> dict[str, Any]:
    """The delivery's columns after this attempt: delivered, failed for good, or retried later."""
    values: dict[str, Any] = {"lease_until": None, "last_status_code": code, "last_error": error}
    if code is not None and 200 <= code < 300:
        values |= {"status": DeliveryStatus.DELIVERED, "delivered_at": now}
    elif code == 410:  # Gone: the receiver says this endpoint will never accept it
        values |= {"status": DeliveryStatus.FAILED, "last_error": "the receiver answered 410 Gone"}
    elif error is not None and error.startswith(BLOCKED):
        # The deployment's address policy, not the receiver: trying again changes nothing.
        values |= {"status": DeliveryStatus.FAILED}
    elif error == WEBHOOK_REMOVED or now >= out.created_at + policy.give_up_after:
        values |= {"status": DeliveryStatus.FAILED}
    else:
        delay = backoff_seconds(
            out.number, base=policy.backoff_base_seconds, maximum=policy.backoff_max_seconds
        )
        values |= {
            "status": DeliveryStatus.PENDING,
            "next_attempt_at": now + timedelta(seconds=delay),
        }
    return values


def _finish(
    session: Session,
    out: LeasedDelivery,
    outcome: int | str,
    *,
    started: datetime,
    duration_ms: float,
    now: datetime,
    policy: RetryPolicy,
) -> AttemptResult:
    code = outcome if isinstance(outcome, int) else None
    error = outcome if isinstance(outcome, str) else None
    # Serialised with the site's leases (SQLite's one writer does that by itself): a lease
    # refused a moment ago, for want of the slot this attempt frees, is seen here unmarked and
    # handed that slot, not left for beat's next run.
    _lock_site(session, out.site_id)
    session.add(
        WebhookAttempt(
            delivery_id=out.delivery_id,
            number=out.number,
            started_at=started,
            duration_ms=round(duration_ms, 3),
            status_code=code,
            error=error,
        )
    )
    values = _next_state(out, code, error, now=now, policy=policy)
    # Only while the lease is still ours: if it expired and another worker took over, that
    # worker's attempt decides the state; ours is kept in the attempt list all the same.
    moved = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == out.delivery_id,
            WebhookDelivery.status == DeliveryStatus.SENDING,
            WebhookDelivery.attempts == out.number,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    ours = rowcount(moved) == 1
    status = values["status"] if ours else DeliveryStatus.SENDING
    handed_to = None
    if ours:
        handed_to = _hand_over(session, out.site_id, now=now, requeue_after=policy.lease)
    if status != DeliveryStatus.DELIVERED:
        log.info(
            "webhook_attempt_failed",
            delivery_id=out.delivery_id,
            number=out.number,
            status_code=code,
            error=error,
            status=status,
        )
    return AttemptResult(
        out.delivery_id, out.number, status, code, values["last_error"], handed_to=handed_to
    )


def attempt_delivery(
    sessions: sessionmaker[Session],
    delivery_id: str,
    *,
    client: httpx.Client,
    policy: RetryPolicy,
    clock: Callable[[], datetime] = utcnow,
) -> AttemptResult | None:
    """One attempt at a due delivery; None if it was not due, another worker holds it, or
    its site has `policy.site_concurrency` attempts in flight (it waits for a slot).

    Takes a session factory, not a session: the lease commits before the POST and the result
    after it, so the database is never held while the receiver answers.
    """
    with session_scope(sessions) as session:
        out = lease_delivery(
            session,
            delivery_id,
            now=clock(),
            lease=policy.lease,
            site_limit=policy.site_concurrency,
        )
    if out is None:
        return None
    started = clock()
    if out.url is None or out.secret is None:
        outcome: int | str = WEBHOOK_REMOVED
        duration_ms = 0.0
    else:
        t0 = time.perf_counter()
        outcome = _send(client, out, now=started, policy=policy)
        duration_ms = (time.perf_counter() - t0) * 1000
    with session_scope(sessions) as session:
        return _finish(
            session,
            out,
            outcome,
            started=started,
            duration_ms=duration_ms,
            now=clock(),
            policy=policy,
        )


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryRecord:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def list_deliveries(
    session: Session,
    site_id: int,
    *,
    comment_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[DeliveryRecord]:
    """A site's deliveries, newest first, each with its attempts in order."""
    query = select(WebhookDelivery).where(WebhookDelivery.site_id == site_id)
    if comment_id is not None:
        query = query.where(WebhookDelivery.comment_id == comment_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    deliveries = list(
        session.scalars(
            query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id).limit(limit)
        )
    )
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.number, WebhookAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [DeliveryRecord(d, attempts[d.id]) for d in deliveries]
