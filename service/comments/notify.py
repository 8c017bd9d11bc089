"""Tell waiting API requests that comments were decided (one Redis channel for all)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import redis

from service.comments.decisions import Decided
from service.comments.views import status_view

__all__ = ["DECISIONS_CHANNEL", "decided_message", "publish_decided"]

DECISIONS_CHANNEL = "moderation:decisions"


def decided_message(decided: Decided) -> dict[str, Any]:
    return status_view(
        decided.comment_id, decided.external_id, status=decided.status, decision=decided.decision
    )


def publish_decided(client: redis.Redis, messages: Sequence[dict[str, Any]]) -> None:
    """Publish after the decisions committed, so a woken request never reads ahead of the DB."""
    if not messages:
        return
    pipe = client.pipeline(transaction=False)
    for message in messages:
        pipe.publish(DECISIONS_CHANNEL, orjson.dumps(message))
    pipe.execute()
