"""Task entry points: ids in, one domain call, transient errors turned into retries."""

from __future__ import annotations

import redis
import structlog
from sqlalchemy.exc import OperationalError

from service.comments.decisions import Decided, decide_pending
from service.comments.notify import decided_message, publish_decided
from service.comments.sweeper import claim_stale_pending
from service.core.broker import (
    DELIVER_WEBHOOK,
    NOOP_DECIDE,
    RETRY_WEBHOOKS,
    SCORE_COMMENT,
    SCORE_COMMENTS,
    SWEEP_PENDING,
    enqueue_score,
    enqueue_webhooks,
)
from service.core.db import session_scope
from service.core.metrics import COMMENTS_DECIDED, DECISION_LATENCY, SCORING_BATCH_SIZE
from service.core.tables import utcnow
from service.webhooks.delivery import RetryPolicy, attempt_delivery
from service.webhooks.lease import due_deliveries
from workers.app import app, resources

__all__ = [
    "deliver_webhook",
    "noop_decide",
    "retry_webhooks",
    "score_comment",
    "score_comments",
    "sweep_pending",
]

log = structlog.get_logger(__name__)


_SCORING = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,  # 1, 2, 4 ... seconds
    "retry_backoff_max": 30,
    "max_retries": 8,
}


@app.task(name=SCORE_COMMENTS, **_SCORING)
def score_comments(comment_ids: list[str]) -> None:
    """Decide a batch the API committed together (and other pending comments with it)."""
    _decide(comment_ids)


@app.task(name=SCORE_COMMENT, **_SCORING)
def score_comment(comment_id: str) -> None:
    """One comment per message, as earlier versions sent them."""
    _decide([comment_id])


def _decide(comment_ids: list[str]) -> None:
    res = resources()
    # A decision never goes back to pending: a comment decided in another task's batch
    # costs no query.
    comment_ids = [i for i in comment_ids if i not in res.decided_here]
    if not comment_ids:
        return
    with session_scope(res.sessions) as session:
        decided = decide_pending(
            session,
            comment_ids,
            res.scorer,
            batch_size=res.settings.score_batch_size,
            default_thresholds=res.settings.thresholds,
            unsupported_language=res.settings.unsupported_language,
            shadow=res.models.shadow,
            activity=res.activity,
        )
    res.decided_here.update(d.comment_id for d in decided)
    _publish(res.redis, [decided_message(d) for d in decided])
    _observe(decided)
    # Only a message here: the webhook worker does the sending, so a dead receiver costs the
    # scoring path nothing. A lost message is found by retry_webhooks.
    enqueue_webhooks(app, [d.webhook_delivery_id for d in decided if d.webhook_delivery_id])


def _observe(decided: list[Decided]) -> None:
    if not decided:
        return
    SCORING_BATCH_SIZE.observe(len(decided))
    for d in decided:
        COMMENTS_DECIDED.labels(site=d.site_name, action=d.decision.action).inc()
        DECISION_LATENCY.observe(d.decision.latency_ms / 1000)


@app.task(name=SWEEP_PENDING, acks_late=True)
def sweep_pending() -> int:
    res = resources()
    with session_scope(res.sessions) as session:
        ids = claim_stale_pending(session, older_than_seconds=res.settings.stale_pending_seconds)
    size = res.settings.score_batch_size
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    sent = sum(len(chunk) for chunk in chunks if enqueue_score(app, chunk))
    if ids:
        log.info("swept_stale_pending", found=len(ids), enqueued=sent)
    return sent


@app.task(
    name=DELIVER_WEBHOOK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,  # then retry_webhooks finds it due
)
def deliver_webhook(delivery_id: str) -> None:
    res = resources()
    policy = RetryPolicy.from_settings(res.settings)
    result = attempt_delivery(res.sessions, delivery_id, client=res.http, policy=policy)
    if result is not None and result.handed_to is not None:
        # The slot this attempt freed goes to the site's next waiting delivery now, not at
        # beat's next run; a lost message is found by retry_webhooks.
        enqueue_webhooks(app, [result.handed_to])


@app.task(name=RETRY_WEBHOOKS, acks_late=True)
def retry_webhooks() -> int:
    res = resources()
    policy = RetryPolicy.from_settings(res.settings)
    with session_scope(res.sessions) as session:
        ids = due_deliveries(
            session, now=utcnow(), requeue_after=policy.lease, per_site=policy.site_concurrency
        )
    return enqueue_webhooks(app, ids)


@app.task(name=NOOP_DECIDE, acks_late=True)
def noop_decide(comment_ids: list[str]) -> None:
    decision = {
        "action": "approve",
        "scores": {},
        "reasons": [],
        "model_version": "noop",
        "decided_at": utcnow().isoformat(),
    }
    messages: list[dict[str, object]] = [
        {"id": i, "status": "approved", "decision": decision} for i in comment_ids
    ]
    _publish(resources().redis, messages)


def _publish(client: redis.Redis, messages: list[dict[str, object]]) -> None:
    # The decisions are committed; a lost wake-up only makes a waiting request read the DB.
    try:
        publish_decided(client, messages)
    except redis.RedisError as exc:
        log.warning("publish_failed", error=str(exc), count=len(messages))
