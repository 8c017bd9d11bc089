"""The API's side of the metrics: each request counted and timed, and what a scrape computes.

Requests are labelled with their route's template (`/v1/comments/{comment_id}`), never the
raw path, so the labels stay few whatever callers send; a path no route matched is
`unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.comments.sweeper import pending_summary
from service.core.broker import QUEUES, live_consumers, queue_depths
from service.core.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
from service.core.tables import utcnow

__all__ = ["BACKLOG_METRICS", "BacklogCollector", "RequestMetrics"]

# What a scrape computes (BacklogCollector), beside what processes record (core/metrics.py).
BACKLOG_METRICS = (
    "moderation_queue_messages",
    "moderation_queue_consumers",
    "moderation_pending_comments",
    "moderation_oldest_pending_seconds",
)


class RequestMetrics:
    """ASGI middleware: `moderation_http_requests_total` and its latency histogram."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # Routing put the matched route in the scope (a mounted app's mount point).
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
            HTTP_REQUEST_DURATION.labels(route=route, method=method).observe(
                time.perf_counter() - began
            )


class BacklogCollector(Collector):
    """Read at scrape time: messages waiting per queue, workers consuming each, and the
    pending comments with the age of the oldest (a stuck pipeline shows here first)."""

    def __init__(
        self, client: redis.Redis, sessions: sessionmaker[Session], *, silent_seconds: float
    ) -> None:
        self._client, self._sessions, self._silent = client, sessions, silent_seconds

    def close(self) -> None:
        self._client.close()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "moderation_queue_messages", "Messages waiting in each queue.", labels=["queue"]
        )
        consumers = GaugeMetricFamily(
            "moderation_queue_consumers",
            "Workers that said lately that they consume each queue.",
            labels=["queue"],
        )
        try:
            waiting = queue_depths(self._client)
            live = live_consumers(self._client, time.time(), within=self._silent)
        except redis.RedisError:
            waiting, live = {}, {}
        for queue in QUEUES:
            if queue in waiting:
                depth.add_metric([queue], waiting[queue])
                consumers.add_metric([queue], live[queue])
        yield depth
        yield consumers
        yield from self._pending()

    def _pending(self) -> Iterable[GaugeMetricFamily]:
        try:
            with self._sessions() as session:
                summary = pending_summary(session)
        except Exception:  # the database is away: say nothing rather than fail the scrape
            return
        yield GaugeMetricFamily(
            "moderation_pending_comments", "Comments stored and not yet decided.", summary.count
        )
        age = (utcnow() - summary.oldest).total_seconds() if summary.oldest else 0.0
        yield GaugeMetricFamily(
            "moderation_oldest_pending_seconds",
            "How long the longest-waiting pending comment has waited (0 when none waits).",
            max(age, 0.0),
        )
