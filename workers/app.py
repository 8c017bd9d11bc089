"""The Celery application of the workers, and the resources each worker process builds once."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from celery import Celery, signals
from sqlalchemy.orm import Session, sessionmaker

from service.db import make_engine, make_session_factory
from service.language import load_detector
from service.logs import configure_logging
from service.queue import SWEEP_PENDING, celery_config, redis_url
from service.scoring import ModelScorer, load_scorer
from service.settings import Settings, get_settings

__all__ = ["RecentIds", "Resources", "app", "resources"]

log = structlog.get_logger(__name__)

app = Celery("moderation", include=["workers.tasks"])
# A promise: settings are read when the worker configures itself, not when this is imported.
app.add_defaults(lambda: celery_config(get_settings()))


class RecentIds:
    """A bounded set of the ids this process decided lately (oldest forgotten first)."""

    def __init__(self, size: int = 50_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def update(self, ids: Iterable[str]) -> None:
        for item in ids:
            self._ids[item] = None
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)


@dataclass(frozen=True)
class Resources:
    settings: Settings
    sessions: sessionmaker[Session]
    scorer: ModelScorer
    redis: redis.Redis
    pid: int
    # Comments decided in another task's batch: their own task can end without a query.
    decided_here: RecentIds = field(default_factory=RecentIds)


_resources: Resources | None = None


def resources() -> Resources:
    """This process's engine, model and Redis client; rebuilt after a fork, never shared."""
    global _resources
    if _resources is None or _resources.pid != os.getpid():
        settings = get_settings()
        _resources = Resources(
            settings=settings,
            sessions=make_session_factory(make_engine(settings.resolved_database_url)),
            scorer=load_scorer(settings.model_dir),
            redis=redis.Redis.from_url(redis_url(settings), socket_timeout=5),
            pid=os.getpid(),
        )
        load_detector()  # the language model too, so the first comment does not pay for it
        log.info("worker_resources_ready", model_version=_resources.scorer.version)
    return _resources


@signals.worker_process_init.connect
def _warm_child(**_: Any) -> None:
    resources()


@signals.worker_ready.connect
def _warm_and_sweep(sender: Any = None, **_: Any) -> None:
    configure_logging(get_settings().log_level)
    resources()
    # Comments stranded by a previous crash are picked up as soon as a worker is back.
    app.send_task(SWEEP_PENDING)
