"""What a route or page sends once its unit of work committed (the `after_commit` of
`service.http.units`), shared by the API and the moderator pages."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from service.core.broker import enqueue_webhooks
from service.http.state import AppState
from service.moderation.reviews import Reviewed
from service.sites.keys import KEYS_CHANGED

__all__ = ["announce_keys_changed", "send_review_webhooks"]

log = structlog.get_logger(__name__)


async def announce_keys_changed(state: AppState) -> None:
    """Tell every API process to forget the keys it remembered: one was revoked or rotated,
    or a site's quota changed. If Redis is away, so are the subscriptions that make the
    caches usable: every process asks the database until it hears Redis again."""
    state.keys.forget()  # this process at once, before its answer goes out
    try:
        await state.redis.publish(KEYS_CHANGED, b"")
    except Exception as exc:
        log.warning("keys_changed_not_announced", error=str(exc)[:200])


def send_review_webhooks(state: AppState) -> Callable[[list[Reviewed]], None]:
    """Queue the webhook deliveries recorded with the reviews."""

    def send(reviewed: list[Reviewed]) -> None:
        ids = [d for r in reviewed for d in r.delivery_ids]
        if ids:  # the beat task sends them later if the broker is away now
            enqueue_webhooks(state.enqueue.app, ids)

    return send
