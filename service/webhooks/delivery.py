"""Webhook delivery: lease a due delivery, POST it signed, record the attempt, back off, list.

Delivery is at least once: a receiver may see one delivery twice (a worker died after the POST
but before recording it) and should de-duplicate on `X-Moderation-Delivery`. Each attempt runs
in two short transactions around the HTTP call (lease, then result), so no database
transaction stays open while a slow receiver thinks.

Every attempt resolves the URL's host again, refuses internal addresses (outbound.py) and
connects to the very address it checked, so DNS cannot change between check and connect;
the whole attempt ends within `timeout_seconds`, however slowly the receiver answers.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import rowcount, session_scope
from service.core.settings import Settings
from service.core.tables import Site, WebhookAttempt, WebhookDelivery, utcnow
from service.webhooks.config import WEBHOOK_REMOVED, DeliveryStatus, signed_headers
from service.webhooks.outbound import Blocked, Unresolvable, check_host, parse_networks

__all__ = [
    "BLOCKED",
    "AttemptResult",
    "DeliveryRecord",
    "RetryPolicy",
    "attempt_delivery",
    "backoff_seconds",
    "due_deliveries",
    "list_deliveries",
]

log = structlog.get_logger(__name__)

# The start of an attempt's error when the address policy refused its destination.
BLOCKED = "blocked:"


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 5.0
    backoff_base_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    give_up_after: timedelta = timedelta(hours=24)
    # CIDRs a deployment lets webhooks reach although they are internal (outbound.py).
    allowed_networks: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            timeout_seconds=settings.webhook_timeout_seconds,
            backoff_base_seconds=settings.webhook_backoff_base_seconds,
            backoff_max_seconds=settings.webhook_backoff_max_seconds,
            give_up_after=timedelta(hours=settings.webhook_give_up_hours),
            allowed_networks=tuple(settings.webhook_allowed_networks),
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


def due_deliveries(
    session: Session, *, now: datetime, requeue_after: timedelta, limit: int = 500
) -> list[str]:
    """Ids of deliveries to enqueue: pending and due, or leased by a worker that died.

    Each is marked as queued until `requeue_after` (in `lease_until`, which a pending row
    does not otherwise use), so a backlog is not enqueued again on every run.
    """
    due = or_(
        and_(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
        ),
        and_(WebhookDelivery.status == DeliveryStatus.SENDING, WebhookDelivery.lease_until <= now),
    )
    ids = list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(due)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )
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
class _Outbound:
    delivery_id: str
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


def _lease(
    session: Session, delivery_id: str, *, now: datetime, lease: timedelta
) -> _Outbound | None:
    """Take the delivery for one attempt, or None if it is not due or another worker has it."""
    taken = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            or_(
                and_(
                    WebhookDelivery.status == DeliveryStatus.PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                ),
                and_(
                    WebhookDelivery.status == DeliveryStatus.SENDING,
                    WebhookDelivery.lease_until <= now,
                ),
            ),
        )
        .values(
            status=DeliveryStatus.SENDING,
            lease_until=now + lease,
            attempts=WebhookDelivery.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(taken) != 1:
        return None
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
    return _Outbound(
        delivery.id,
        delivery.attempts,
        delivery.event,
        url,
        secret,
        delivery.payload,
        delivery.created_at,
    )


class _Deadline:
    """Shuts the attempt's socket when its time is up.

    httpx's timeouts bound each phase (connect, each write, each read), not the whole call:
    a receiver sending one byte a second would hold a worker for as long as it liked.
    httpcore's trace hook hands over each stream it opens, and shutting the socket from a
    timer ends whatever read or write is waiting on it.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._at = time.monotonic() + seconds
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return self._at - time.monotonic()

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name.endswith(("connect_tcp.complete", "start_tls.complete")):
            with self._lock:
                self._streams.append(info["return_value"])
                if self.expired:
                    _shut(info["return_value"])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for stream in self._streams:
                _shut(stream)


def _shut(stream: Any) -> None:
    sock = stream.get_extra_info("socket")
    # Already closed, or detached when TLS wrapped it: nothing left to wake.
    with contextlib.suppress(OSError, TypeError):
        # The plain socket's shutdown, also for a TLS one: it only needs to wake the reader.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _pinned_request(
    client: httpx.Client,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    policy: RetryPolicy,
    deadline: _Deadline,
) -> httpx.Request:
    """The POST, addressed to the IP just checked, with the URL's Host header and TLS name.

    Raises Blocked or Unresolvable. `Connection: close`: a pooled connection is keyed by the
    IP, and must not carry another host's request over a TLS session verified for this one.
    """
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")
    port = target.port or (443 if target.scheme == "https" else 80)
    address = check_host(host, port, allowed=parse_networks(policy.allowed_networks))
    extensions: dict[str, Any] = {"trace": deadline.trace}
    if target.scheme == "https":
        extensions["sni_hostname"] = host
    headers = {**headers, "Host": target.netloc.decode("ascii"), "Connection": "close"}
    return client.build_request(
        "POST",
        target.copy_with(host=str(address)),
        content=body,
        headers=headers,
        timeout=max(deadline.remaining(), 0.001),
        extensions=extensions,
    )


def _post(client: httpx.Client, out: _Outbound, *, now: datetime, policy: RetryPolicy) -> int | str:
    """The receiver's status code, or a description of why there was none."""
    assert out.url is not None and out.secret is not None
    body = orjson.dumps(out.payload)
    timestamp = int(now.timestamp())
    headers = signed_headers(
        out.secret, body, event=out.event, delivery_id=out.delivery_id, timestamp=timestamp
    )
    with _Deadline(policy.timeout_seconds) as deadline:
        try:
            request = _pinned_request(
                client, out.url, body=body, headers=headers, policy=policy, deadline=deadline
            )
            # Streamed and closed unread: only the status matters, whatever the body's size.
            response = client.send(request, stream=True, follow_redirects=False)
            response.close()
        except Blocked as exc:
            # Never the address itself: the site's admins must not map the network with it.
            return f"{BLOCKED} the URL resolves to {exc.reason}"
        except Unresolvable:
            return "ConnectError: the URL's host does not resolve"
        except Exception as exc:  # whatever stopped the POST is this attempt's outcome: retried
            if deadline.expired:
                return f"Timeout: no complete answer within {deadline.seconds:g} s"
            return f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__
    return response.status_code


def _next_state(
    out: _Outbound, code: int | None, error: str | None, *, now: datetime, policy: RetryPolicy
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
    out: _Outbound,
    outcome: int | str,
    *,
    started: datetime,
    duration_ms: float,
    now: datetime,
    policy: RetryPolicy,
) -> AttemptResult:
    code = outcome if isinstance(outcome, int) else None
    error = outcome if isinstance(outcome, str) else None
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
    status = values["status"] if rowcount(moved) == 1 else DeliveryStatus.SENDING
    if status != DeliveryStatus.DELIVERED:
        log.info(
            "webhook_attempt_failed",
            delivery_id=out.delivery_id,
            number=out.number,
            status_code=code,
            error=error,
            status=status,
        )
    return AttemptResult(out.delivery_id, out.number, status, code, values["last_error"])


def attempt_delivery(
    sessions: sessionmaker[Session],
    delivery_id: str,
    *,
    client: httpx.Client,
    policy: RetryPolicy,
    clock: Callable[[], datetime] = utcnow,
) -> AttemptResult | None:
    """One attempt at a due delivery; None if it was not due or another worker holds it.

    Takes a session factory, not a session: the lease commits before the POST and the result
    after it, so the database is never held while the receiver answers.
    """
    with session_scope(sessions) as session:
        out = _lease(session, delivery_id, now=clock(), lease=policy.lease)
    if out is None:
        return None
    started = clock()
    if out.url is None or out.secret is None:
        outcome: int | str = WEBHOOK_REMOVED
        duration_ms = 0.0
    else:
        t0 = time.perf_counter()
        outcome = _post(client, out, now=started, policy=policy)
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
