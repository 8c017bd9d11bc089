"""What one API process holds for its lifetime: settings, database, queue, waiters, model."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis
from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.core.broker import Enqueuer
from service.core.settings import Settings
from service.http.caller import Caller
from service.http.intake import IntakeBatcher
from service.http.key_cache import KeyCache
from service.http.metrics import BacklogCollector
from service.http.quotas import Quotas
from service.http.waiters import DecisionWaiters
from service.models.holder import ModelHolder

__all__ = ["AppState", "state_of"]


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    enqueue: Enqueuer
    redis: aioredis.Redis
    waiters: DecisionWaiters
    models: ModelHolder
    quotas: Quotas
    intake: IntakeBatcher
    # What a /metrics scrape reads at scrape time (queue depths, pending comments).
    backlog: BacklogCollector
    # Unused (always asks the database) until the waiters' subscription says it is live.
    keys: KeyCache[Caller] = field(default_factory=KeyCache)


def state_of(request: Request) -> AppState:
    """The process's state, which the app's lifespan put on `app.state`."""
    state: AppState = request.app.state.moderation
    return state
