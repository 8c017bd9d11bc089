"""What a route or page sends once its unit of work committed (the `after_commit` of
`service.http.units`), shared by the API and the moderator pages."""

from __future__ import annotations

from collections.abc import Callable

from service.core.broker import enqueue_webhooks
from service.http.state import AppState
from service.moderation.reviews import Reviewed

__all__ = ["send_review_webhooks"]


def send_review_webhooks(state: AppState) -> Callable[[list[Reviewed]], None]:
    """Queue the webhook deliveries recorded with the reviews."""

    def send(reviewed: list[Reviewed]) -> None:
        ids = [d for r in reviewed for d in r.delivery_ids]
        if ids:  # the beat task sends them later if the broker is away now
            enqueue_webhooks(state.enqueue.app, ids)

    return send
