"""Webhook delivery: POST a leased delivery signed, record the attempt, back off, list.

Delivery is at least once: a receiver may see one delivery twice (a worker died after the POST
but before recording it) and should de-duplicate on `X-Moderation-Delivery`. Each attempt runs
in two short transactions around the HTTP call (lease, then result), so no database
transaction stays open while a slow receiver thinks.

Every attempt resolves the URL's host again, refuses internal addresses and connects to the
very address it checked (outbound.py); the whole attempt ends within `timeout_seconds`,
however slowly the receiver answers.

Taking the lease, and the per-site limit on deliveries in flight that it keeps, are lease.py's.
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
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import rowcount, session_scope
from service.core.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_DELIVERY_LAG
from service.core.settings import Settings
from service.core.tables import WebhookAttempt, WebhookDelivery, utcnow
from service.webhooks.config import WEBHOOK_REMOVED, DeliveryStatus, signed_headers
from service.webhooks.lease import LeasedDelivery, hand_over, lease_delivery, lock_site
from service.webhooks.outbound import BLOCKED, post

__all__ = [
    "BLOCKED",
    "AttemptResult",
    "DeliveryRecord",
    "RetryPolicy",
    "attempt_delivery",
    "backoff_seconds",
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
    lock_site(session, out.site_id)
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
        handed_to = hand_over(session, out.site_id, now=now, requeue_after=policy.lease)
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
        result = _finish(
            session,
            out,
            outcome,
            started=started,
            duration_ms=duration_ms,
            now=clock(),
            policy=policy,
        )
    _observe(result, out, now=clock())
    return result


def _observe(result: AttemptResult, out: LeasedDelivery, *, now: datetime) -> None:
    """The attempt in the metrics, once its outcome is committed."""
    if result.status == DeliveryStatus.DELIVERED:
        WEBHOOK_ATTEMPTS.labels(outcome="delivered").inc()
        WEBHOOK_DELIVERY_LAG.observe(max((now - out.created_at).total_seconds(), 0.0))
    elif result.error is not None and result.error.startswith(BLOCKED):
        WEBHOOK_ATTEMPTS.labels(outcome="blocked").inc()
    elif result.status == DeliveryStatus.FAILED:
        WEBHOOK_ATTEMPTS.labels(outcome="gave_up").inc()
    else:  # pending again, or another worker's lease decides
        WEBHOOK_ATTEMPTS.labels(outcome="retry").inc()


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
