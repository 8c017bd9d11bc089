"""The queue client: Celery's configuration, the task names, and enqueueing by name."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis
import structlog
from celery import Celery
from kombu.exceptions import OperationalError

from service.core.settings import Settings

__all__ = [
    "DELIVER_WEBHOOK",
    "NOOP_DECIDE",
    "PURGE_EXPIRED",
    "QUEUES",
    "RETRAIN",
    "RETRAIN_IF_DUE",
    "RETRY_WEBHOOKS",
    "SCORE_COMMENT",
    "SCORE_COMMENTS",
    "SCORING_QUEUE",
    "SWEEP_PENDING",
    "TRAINING_QUEUE",
    "WEBHOOK_QUEUE",
    "Enqueuer",
    "beat_consumer",
    "broker_url",
    "celery_config",
    "consumers_key",
    "enqueue_retrain",
    "enqueue_score",
    "enqueue_webhooks",
    "forget_consumer",
    "live_consumers",
    "make_celery",
    "queue_depths",
    "redis_url",
]

log = structlog.get_logger(__name__)

SCORING_QUEUE = "scoring"
# One message per batch of comments an API process committed together (a list of ids).
SCORE_COMMENTS = "moderation.score_comments"
# One comment per message: what earlier versions sent. Still served, so that messages queued
# before an upgrade are decided.
SCORE_COMMENT = "moderation.score_comment"
SWEEP_PENDING = "moderation.sweep_pending"
# The framework's floor: publishes an approval without scoring or storing. For benchmarks.
NOOP_DECIDE = "moderation.noop_decide"
# A queue of their own, served by a thread-pool worker: a receiver that hangs holds a thread
# there, never the scoring worker.
WEBHOOK_QUEUE = "webhooks"
DELIVER_WEBHOOK = "moderation.deliver_webhook"
RETRY_WEBHOOKS = "moderation.retry_webhooks"
# Retraining runs for minutes on a worker of its own, so scoring never waits behind it.
TRAINING_QUEUE = "training"
RETRAIN = "moderation.retrain"
# Beat's check: fail dead training jobs, start one when a site has enough new labels. A few
# queries, so it runs on the scoring queue: a dead training worker must not stop the check
# that notices it.
RETRAIN_IF_DUE = "moderation.retrain_if_due"
# Beat's erasure of comment text past each site's retention, a chunk a transaction: on the
# training worker, which waits on nothing urgent.
PURGE_EXPIRED = "moderation.purge_expired"


QUEUES = (SCORING_QUEUE, WEBHOOK_QUEUE, TRAINING_QUEUE)


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting in each queue: Celery's Redis transport keeps a queue as a list under
    the queue's name (taken but unacknowledged messages are not counted)."""
    with client.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            pipe.llen(queue)
        return dict(zip(QUEUES, (int(n) for n in pipe.execute()), strict=True))


def consumers_key(queue: str) -> str:
    """The sorted set of the workers consuming `queue`, each scored with its last beat."""
    return f"moderation:consumers:{queue}"


def beat_consumer(client: redis.Redis, node: str, queues: Sequence[str], now: float) -> None:
    """Note that the worker `node` consumes `queues` now (and forget the long silent)."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            key = consumers_key(queue)
            pipe.zadd(key, {node: now})
            pipe.zremrangebyscore(key, "-inf", now - 86_400)
        pipe.execute()


def forget_consumer(client: redis.Redis, node: str, queues: Sequence[str]) -> None:
    """The worker `node` stops consuming `queues` (a clean stop)."""
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zrem(consumers_key(queue), node)
        pipe.execute()


def live_consumers(client: redis.Redis, now: float, *, within: float) -> dict[str, int]:
    """Workers that beat within the last `within` seconds, per queue."""
    with client.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            pipe.zcount(consumers_key(queue), now - within, "+inf")
        return dict(zip(QUEUES, (int(n) for n in pipe.execute()), strict=True))


def redis_url(settings: Settings) -> str:
    """The configured Redis, else the embedded server's socket under var/."""
    if settings.redis_url:
        return settings.redis_url
    return f"unix://{(settings.var_dir / 'redis.sock').resolve()}"


def broker_url(settings: Settings) -> str:
    url = redis_url(settings)
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


def _task_routes() -> dict[str, dict[str, str]]:
    return {
        SCORE_COMMENT: {"queue": SCORING_QUEUE},
        SCORE_COMMENTS: {"queue": SCORING_QUEUE},
        SWEEP_PENDING: {"queue": SCORING_QUEUE},
        NOOP_DECIDE: {"queue": SCORING_QUEUE},
        DELIVER_WEBHOOK: {"queue": WEBHOOK_QUEUE},
        RETRY_WEBHOOKS: {"queue": WEBHOOK_QUEUE},
        RETRAIN: {"queue": TRAINING_QUEUE},
        RETRAIN_IF_DUE: {"queue": SCORING_QUEUE},
        PURGE_EXPIRED: {"queue": TRAINING_QUEUE},
    }


def _beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    return {
        "sweep-stale-pending": {
            "task": SWEEP_PENDING,
            "schedule": settings.sweep_interval_seconds,
            "options": {"queue": SCORING_QUEUE, "expires": settings.sweep_interval_seconds},
        },
        # Retries are found by this, not by Celery countdowns: with Redis, a message whose
        # ETA lies beyond the visibility timeout is delivered again and again.
        "retry-webhooks": {
            "task": RETRY_WEBHOOKS,
            "schedule": settings.webhook_retry_interval_seconds,
            "options": {
                "queue": WEBHOOK_QUEUE,
                "expires": settings.webhook_retry_interval_seconds,
            },
        },
        "purge-expired": {
            "task": PURGE_EXPIRED,
            "schedule": settings.retention_check_seconds,
            "options": {"queue": TRAINING_QUEUE, "expires": settings.retention_check_seconds},
        },
        "retrain-if-due": {
            "task": RETRAIN_IF_DUE,
            "schedule": settings.retrain_check_seconds,
            "options": {"queue": SCORING_QUEUE, "expires": settings.retrain_check_seconds},
        },
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": broker_url(settings),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # An unacknowledged message goes back to the queue after this; the sweeper covers
            # the rest, so a killed worker delays a comment but never loses it.
            "visibility_timeout": settings.broker_visibility_timeout,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": SCORING_QUEUE,
        "task_routes": _task_routes(),
        "worker_prefetch_multiplier": 8,
        # Fail fast when Redis is away: the comment is already stored and the sweeper will
        # enqueue it later, so the request must not hang on retries.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.1,
        },
        "beat_schedule": _beat_schedule(settings),
    }


def make_celery(settings: Settings) -> Celery:
    app = Celery("moderation", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


class Enqueuer:
    """Sends scoring tasks from the API; after a failure it stops trying for a moment.

    An unreachable Redis can cost seconds per attempt (a dropped packet is not a refusal), and
    every such attempt would hold an API thread. Comments stored meanwhile stay pending, and
    the sweeper enqueues them once Redis answers again.
    """

    def __init__(
        self, app: Celery, *, task_name: str = SCORE_COMMENTS, pause_seconds: float = 1.0
    ) -> None:
        self.app = app
        self.task_name = task_name
        self.pause_seconds = pause_seconds
        self._paused_until = 0.0

    def __call__(self, comment_ids: Sequence[str]) -> bool:
        if time.monotonic() < self._paused_until:
            return False
        sent = enqueue_score(self.app, comment_ids, task_name=self.task_name)
        if not sent:
            self._paused_until = time.monotonic() + self.pause_seconds
        return sent


def enqueue_score(
    app: Celery, comment_ids: Sequence[str], *, task_name: str = SCORE_COMMENTS
) -> bool:
    """Send one scoring task for the comments; False when the broker is unreachable (the
    sweeper retries)."""
    try:
        app.send_task(task_name, args=[list(comment_ids)], queue=SCORING_QUEUE)
    except (OperationalError, OSError) as exc:
        log.warning("enqueue_failed", comment_ids=list(comment_ids), error=str(exc))
        return False
    return True


def enqueue_webhooks(app: Celery, delivery_ids: Sequence[str]) -> int:
    """Send a delivery task per id, after the commit that stored them; how many were sent.

    Never raises on broker errors: the deliveries are stored as due, and the beat task
    `RETRY_WEBHOOKS` enqueues them once Redis answers. It stops at the first failure, so an
    unreachable broker costs one attempt, not one per id.
    """
    sent = 0
    for delivery_id in delivery_ids:
        try:
            app.send_task(DELIVER_WEBHOOK, args=[delivery_id], queue=WEBHOOK_QUEUE)
        except (OperationalError, OSError) as exc:
            log.warning("enqueue_webhooks_failed", pending=len(delivery_ids) - sent, error=str(exc))
            break
        sent += 1
    return sent


def enqueue_retrain(app: Celery, job_id: str) -> bool:
    """Send a stored training job to the training queue; False when the broker is away."""
    try:
        app.send_task(RETRAIN, args=[job_id], queue=TRAINING_QUEUE)
    except (OperationalError, OSError) as exc:
        log.warning("enqueue_retrain_failed", job_id=job_id, error=str(exc))
        return False
    return True
