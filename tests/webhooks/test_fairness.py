"""One site's slow receiver must not hold up another site's deliveries.

First the lease on its own (a real SQLite and PostgreSQL database, the clock passed in): at
most `webhook_site_concurrency` of a site's deliveries in flight, also when many workers lease
at once. Then end to end: a receiver trickling one byte a second, with a backlog of its site's
deliveries, while another site's receiver waits for its POST (real Redis, worker, beat, API).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, update
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session, sessionmaker

from service.core.broker import WEBHOOK_QUEUE
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.tables import WebhookAttempt, WebhookDelivery, utcnow
from service.sites.keys import get_or_create_site
from service.webhooks.config import COMMENT_DECIDED, DeliveryStatus, record_event
from service.webhooks.delivery import RetryPolicy, attempt_delivery
from service.webhooks.lease import due_deliveries, lease_delivery
from tests.factories import comment
from tests.stack import Stack, StackSpec, wait_until

LIMIT = 2
LEASE = timedelta(seconds=40)
LOOPBACK = ("127.0.0.0/8", "::1/128")
URL = "http://127.0.0.1:9/hook"


def _site(sessions: sessionmaker[Session], name: str) -> int:
    with session_scope(sessions) as session:
        site = get_or_create_site(session, name)
        site.webhook_url, site.webhook_secret = URL, "s" * 20
        return site.id


def _deliveries(sessions: sessionmaker[Session], site_id: int, count: int) -> list[str]:
    ids = []
    for number in range(count):
        # One transaction each: distinct `next_attempt_at`, so "oldest first" is well defined.
        with session_scope(sessions) as session:
            ids.append(
                record_event(
                    session,
                    site_id=site_id,
                    url=URL,
                    event=COMMENT_DECIDED,
                    comment_id=f"c{number}",
                    data={},
                )
            )
    return ids


def _lease(sessions: sessionmaker[Session], delivery_id: str, *, at: datetime) -> bool:
    with session_scope(sessions) as session:
        leased = lease_delivery(session, delivery_id, now=at, lease=LEASE, site_limit=LIMIT)
    return leased is not None


def _row(sessions: sessionmaker[Session], delivery_id: str) -> WebhookDelivery:
    with session_scope(sessions) as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


# --- the lease -----------------------------------------------------------------------------------


def test_a_site_at_its_limit_is_refused_a_lease_while_another_site_is_not(
    sessions: sessionmaker[Session],
) -> None:
    news, other = _site(sessions, "news"), _site(sessions, "other")
    first, second, third = _deliveries(sessions, news, 3)
    [elsewhere] = _deliveries(sessions, other, 1)
    now = utcnow() + timedelta(seconds=1)
    assert _lease(sessions, first, at=now) and _lease(sessions, second, at=now)
    assert not _lease(sessions, third, at=now), "two of news's deliveries are in flight"
    waiting = _row(sessions, third)
    # Not an attempt: still pending and due, and not marked as queued, so it is found again.
    assert (waiting.status, waiting.attempts, waiting.lease_until) == ("pending", 0, None)
    assert _lease(sessions, elsewhere, at=now), "another site's delivery is not held up"
    with session_scope(sessions) as session:
        assert session.scalar(sql_select(func.count()).select_from(WebhookAttempt)) == 0
        # One of news's attempts ends: its slot is free again.
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == first)
            .values(status=DeliveryStatus.DELIVERED, lease_until=None)
        )
    assert _lease(sessions, third, at=now)
    assert _row(sessions, third).attempts == 1


def test_a_lease_that_ran_out_frees_its_sites_slot(sessions: sessionmaker[Session]) -> None:
    news = _site(sessions, "news")
    first, second, third = _deliveries(sessions, news, 3)
    now = utcnow() + timedelta(seconds=1)
    assert _lease(sessions, first, at=now) and _lease(sessions, second, at=now)
    assert not _lease(sessions, third, at=now)
    # Both workers died mid-attempt: once their leases run out, their slots are free.
    later = now + LEASE + timedelta(seconds=1)
    assert _lease(sessions, third, at=later)
    assert _lease(sessions, first, at=later), "the dead worker's delivery is taken over"
    assert not _lease(sessions, second, at=later), "and that is the limit again"


def _race(factories: list[sessionmaker[Session]], ids: list[str], *, at: datetime) -> list[str]:
    """Each worker leases its own delivery, all at the same moment; the ones that got one."""
    start = threading.Barrier(len(ids))
    leased: list[str] = []

    def lease(factory: sessionmaker[Session], delivery_id: str) -> None:
        start.wait()
        if _lease(factory, delivery_id, at=at):
            leased.append(delivery_id)

    threads = [
        threading.Thread(target=lease, args=pair) for pair in zip(factories, ids, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return leased


def test_workers_leasing_one_sites_deliveries_at_once_never_exceed_its_limit(
    migrated_url: str, sessions: sessionmaker[Session]
) -> None:
    news = _site(sessions, "news")
    # An engine each, as separate worker processes have: the race is the database's to settle.
    engines = [make_engine(migrated_url) for _ in range(10)]
    factories = [make_session_factory(engine) for engine in engines]
    try:
        for _round in range(5):
            ids = _deliveries(sessions, news, len(factories))
            leased = _race(factories, ids, at=utcnow() + timedelta(seconds=1))
            assert len(leased) == LIMIT, leased
            with session_scope(sessions) as session:
                sending = session.scalars(
                    sql_select(WebhookDelivery.id).where(
                        WebhookDelivery.status == DeliveryStatus.SENDING
                    )
                ).all()
                assert sorted(sending) == sorted(leased)
                # Those attempts end, for the next round to race for the slots again.
                session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.site_id == news)
                    .values(status=DeliveryStatus.DELIVERED, lease_until=None)
                )
    finally:
        for engine in engines:
            engine.dispose()


def test_an_ending_attempt_hands_its_slot_to_the_sites_oldest_waiting_delivery(
    sessions: sessionmaker[Session],
) -> None:
    news = _site(sessions, "news")
    first, second, third = _deliveries(sessions, news, 3)
    policy = RetryPolicy(timeout_seconds=1, allowed_networks=LOOPBACK, site_concurrency=1)
    ok = httpx.Client(transport=httpx.MockTransport(lambda _request: httpx.Response(200)))
    refused: list[object] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        # While the first POST is in flight its site is at its limit of one.
        refused.append(attempt_delivery(sessions, second, client=ok, policy=policy))
        return httpx.Response(200)

    slow = httpx.Client(transport=httpx.MockTransport(receiver))
    result = attempt_delivery(sessions, first, client=slow, policy=policy)
    assert refused == [None]
    assert result is not None and result.status == "delivered"
    assert result.handed_to == second, "the oldest waiting delivery gets the freed slot"
    with session_scope(sessions) as session:
        # Handed over means queued: beat enqueues the third, not the second again.
        now = utcnow()
        assert due_deliveries(session, now=now, requeue_after=LEASE, per_site=1) == [third]
    handed = attempt_delivery(sessions, second, client=ok, policy=policy)
    assert handed is not None and (handed.number, handed.status) == (1, "delivered")
    assert handed.handed_to is None, "the third is queued already"


def test_beat_enqueues_at_most_the_limit_of_one_sites_due_deliveries(
    sessions: sessionmaker[Session],
) -> None:
    news, other = _site(sessions, "news"), _site(sessions, "other")
    oldest = _deliveries(sessions, news, 5)[:LIMIT]
    elsewhere = _deliveries(sessions, other, 1)
    now = utcnow() + timedelta(seconds=1)
    with session_scope(sessions) as session:
        found = due_deliveries(session, now=now, requeue_after=LEASE, per_site=LIMIT)
    assert sorted(found) == sorted(oldest + elsewhere)


# --- end to end: a trickling receiver ------------------------------------------------------------

TIMEOUT_SECONDS = 5.0
STACK = StackSpec(
    env={
        "MODERATION_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "MODERATION_WEBHOOK_SITE_CONCURRENCY": str(LIMIT),
        "MODERATION_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
        "MODERATION_WEBHOOK_BACKOFF_MAX_SECONDS": "0.5",
        "MODERATION_WEBHOOK_RETRY_INTERVAL_SECONDS": "0.5",
        # The receivers are on 127.0.0.1: the deployment opts in to loopback.
        "MODERATION_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
    },
    beat=True,
    workers=(WEBHOOK_QUEUE,),
    keys={"news-hooks": ("news", "site_admin"), "other-hooks": ("other", "site_admin")},
)


@dataclass
class Trickler:
    """Accepts every connection and answers one byte a second for a minute; counts how many
    connections are open at once (one closes when the service hangs up)."""

    server: socket.socket
    open: int = 0
    most: int = 0
    opened: int = 0
    closed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: set[socket.socket] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed: the test is over
            with self.lock:
                self.open += 1
                self.opened += 1
                self.most = max(self.most, self.open)
                self.connections.add(conn)
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Slow: " + b"." * 60
        try:
            for byte in answer:
                # Wait out the second watching the socket: a hang-up is seen the moment it
                # comes, so a slot the service freed is never counted as still open.
                deadline = time.monotonic() + 1
                while (left := deadline - time.monotonic()) > 0:
                    if select.select([conn], [], [], left)[0] and not conn.recv(65536):
                        return
                conn.sendall(bytes([byte]))
        except OSError:
            return  # reset by the service
        finally:
            with self.lock:
                self.open -= 1
                self.closed += 1
                self.connections.discard(conn)
            conn.close()

    def stop(self) -> None:
        self.server.close()
        with self.lock:
            for conn in self.connections:
                conn.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    running = Trickler(socket.create_server(("127.0.0.1", 0)))
    threading.Thread(target=running.serve, daemon=True).start()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Arrival:
    at: float
    trickler_open: int
    trickler_closed: int


@pytest.fixture
def prompt_receiver(trickler: Trickler) -> Iterator[tuple[str, list[Arrival]]]:
    """Another site's backend: answers 200 at once, noting what the trickler was doing."""
    arrivals: list[Arrival] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            with trickler.lock:
                arrivals.append(Arrival(time.monotonic(), trickler.open, trickler.closed))
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", arrivals
    finally:
        server.shutdown()
        server.server_close()


def _set_webhook(stack: Stack, site: str, url: str | None) -> None:
    with stack.client(f"{site}-hooks") as admin:
        if url is None:
            response = admin.delete(f"/v1/sites/{site}/webhook")
        else:
            response = admin.put(f"/v1/sites/{site}/webhook", json={"url": url})
    assert response.is_success, response.text


def _post(stack: Stack, key: str, external_id: str, text: str) -> None:
    with stack.client(key) as client:
        response = client.post("/v1/comments?wait_ms=5000", json=comment(external_id, text))
    assert response.status_code == 200, response.text


@pytest.mark.integration
def test_a_trickling_receiver_does_not_delay_another_sites_delivery(
    stack: Stack, trickler: Trickler, prompt_receiver: tuple[str, list[Arrival]]
) -> None:
    url, arrivals = prompt_receiver
    _set_webhook(stack, "news", trickler.url)
    _set_webhook(stack, "other", url)
    try:
        # More of news's deliveries than the webhook worker has threads (8).
        for number in range(12):
            _post(stack, "news-submitter", f"slow-{number}", f"Letter number {number}.")
        assert wait_until(lambda: trickler.opened >= LIMIT, timeout=10), "news is being sent"
        _post(stack, "other-submitter", "prompt-1", "A reply about the bus timetable.")
        posted = time.monotonic()
        [arrival] = wait_until(lambda: list(arrivals), timeout=3 * TIMEOUT_SECONDS)
        # A correctness bound: without the limit, the eight threads are news's until its
        # first attempts time out.
        assert arrival.at - posted < TIMEOUT_SECONDS / 2, arrival.at - posted
        assert arrival.trickler_closed == 0, "before any of news's attempts ended"
        assert arrival.trickler_open == LIMIT
        # news's backlog keeps going, LIMIT at a time, as its attempts time out.
        assert wait_until(lambda: trickler.opened >= 2 * LIMIT, timeout=3 * TIMEOUT_SECONDS)
        assert trickler.most == LIMIT, trickler.most
    finally:
        _set_webhook(stack, "news", None)
