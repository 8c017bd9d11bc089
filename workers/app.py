"""The Celery application of the workers, and the resources each worker process builds once."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import redis
import structlog
from celery import Celery, bootsteps, signals
from celery.worker import state as worker_state
from prometheus_client import start_http_server
from sqlalchemy.orm import Session, sessionmaker

from service.core.broker import (
    RETRY_WEBHOOKS,
    SCORING_QUEUE,
    SWEEP_PENDING,
    WEBHOOK_QUEUE,
    beat_consumer,
    celery_config,
    forget_consumer,
    redis_url,
)
from service.core.db import make_engine, make_session_factory
from service.core.logs import configure_logging
from service.core.metrics import TASK_DURATION, scrape_registry
from service.core.settings import Settings, get_settings
from service.models.holder import ModelHolder
from service.models.scoring import ModelScorer
from service.rules.floods import RedisActivity
from service.rules.language import load_detector, use_detector_files
from service.rules.links import load_suffix_list
from service.webhooks.outbound import webhook_client

__all__ = ["RecentIds", "Resources", "app", "resources"]

log = structlog.get_logger(__name__)

app = Celery("moderation", include=["workers.tasks", "workers.training"])
# A promise: settings are read when the worker configures itself, not when this is imported.
app.add_defaults(lambda: celery_config(get_settings()))


class ConsumerBeat(bootsteps.StartStopStep):
    """Say in Redis, every few seconds, that this worker consumes its queues (`/readyz` and
    `moderation status` count them).

    The beat runs on the worker's own timer, in the loop that takes messages: a worker that
    is dead, stuck or cut off from Redis stops beating. Timers run once that loop runs, after
    `worker_ready` (a scoring worker has loaded its model then): the first beat says the
    worker can decide.
    """

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._timer: Any = None
        self._client: redis.Redis | None = None

    def start(self, worker: Any) -> None:
        settings = get_settings()
        self._client = redis.Redis.from_url(
            redis_url(settings), socket_connect_timeout=1, socket_timeout=1
        )
        worker.timer.call_after(0.1, self._beat, (worker,))
        self._timer = worker.timer.call_repeatedly(
            settings.worker_beat_seconds, self._beat, (worker,), priority=10
        )

    def stop(self, worker: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._client is not None:
            # A worker that stops says so at once: readiness must not count it for 15 s.
            with contextlib.suppress(redis.RedisError):
                forget_consumer(self._client, self._node(worker), self._queues())
            self._client.close()

    @staticmethod
    def _node(worker: Any) -> str:
        return f"{worker.hostname}:{os.getpid()}"

    @staticmethod
    def _queues() -> list[str]:
        return sorted(app.amqp.queues.consume_from or app.amqp.queues)

    def _beat(self, worker: Any) -> None:
        if self._client is None:
            return
        try:
            beat_consumer(self._client, self._node(worker), self._queues(), time.time())
        except redis.RedisError as exc:  # Redis is away: so is consuming; nothing to say
            log.debug("consumer_beat_failed", error=str(exc))


app.steps["worker"].add(ConsumerBeat)

_started: dict[str, float] = {}  # task id -> when it began, in this process


@signals.task_prerun.connect
def _task_began(task_id: str = "", **_: Any) -> None:
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_ended(task_id: str = "", task: Any = None, state: str | None = None, **_: Any) -> None:
    began = _started.pop(task_id, None)
    if began is not None and task is not None:
        outcome = {"SUCCESS": "success", "RETRY": "retry"}.get(state or "", "failure")
        TASK_DURATION.labels(task=task.name, outcome=outcome).observe(time.perf_counter() - began)


class RecentIds:
    """A bounded set of the ids this process decided lately (oldest forgotten first).

    It only has to outlive the messages of comments that another task's batch decided, which
    wait seconds at most: 10,000 ids is 20 s at 500 decisions a second, in 2 MB (50,000 held
    10 MB of a worker that should stay under 300).
    """

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def update(self, ids: Iterable[str]) -> None:
        for item in ids:
            self._ids[item] = None
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)


@dataclass
class Resources:
    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis
    pid: int
    # Comments decided in another task's batch: their own task can end without a query.
    decided_here: RecentIds = field(default_factory=RecentIds)
    _models: ModelHolder | None = field(default=None, repr=False)
    _http: httpx.Client | None = field(default=None, repr=False)
    # The webhook worker runs tasks in threads: build each lazy resource once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def models(self) -> ModelHolder:
        """The registry's active model (and shadow), followed without a restart."""
        # Loaded on first use, so a worker that only delivers webhooks never holds the model.
        if self._models is None:
            with self._lock:
                if self._models is None:
                    holder = ModelHolder(
                        self.sessions,
                        cache_dir=self.settings.var_dir / "models",
                        bootstrap_dir=self.settings.model_dir,
                        poll_seconds=self.settings.model_poll_seconds,
                    ).start()
                    use_detector_files(self.settings.language_model_dir)
                    load_detector()  # the language model too: the first comment must not wait
                    load_suffix_list()
                    self._models = holder
        return self._models

    @property
    def activity(self) -> RedisActivity:
        """Each author's recent postings, counted where every worker and API sees them."""
        return RedisActivity(self.redis)

    @property
    def scorer(self) -> ModelScorer:
        return self.models.scorer

    @property
    def http(self) -> httpx.Client:
        """One client for webhook deliveries (thread-safe; redirects not followed), trusting
        `webhook_ca_file` when one is set."""
        if self._http is None:
            with self._lock:
                if self._http is None:
                    self._http = webhook_client(ca_file=self.settings.webhook_ca_file)
        return self._http


_resources: Resources | None = None
_resources_lock = threading.Lock()


def resources() -> Resources:
    """This process's engine and Redis client; rebuilt after a fork, never shared."""
    global _resources
    if _resources is None or _resources.pid != os.getpid():
        with _resources_lock:
            if _resources is None or _resources.pid != os.getpid():
                settings = get_settings()
                _resources = Resources(
                    settings=settings,
                    sessions=make_session_factory(make_engine(settings.resolved_database_url)),
                    redis=redis.Redis.from_url(redis_url(settings), socket_timeout=5),
                    pid=os.getpid(),
                )
    return _resources


def _scores_comments() -> bool:
    """Whether this worker consumes the scoring queue (every queue when none was chosen)."""
    queues = set(app.amqp.queues.consume_from or ())
    return not queues or SCORING_QUEUE in queues


@signals.worker_process_init.connect
def _warm_child(**_: Any) -> None:
    if _scores_comments():
        # Load the model now, not when the first comment arrives.
        log.info("worker_model_ready", model_version=resources().scorer.version)


# Celery's two lines per task ("received", "succeeded"): at hundreds of batches a second they
# are most of a worker's log and 8% of its CPU for one-comment batches (0.3 of 3.5 ms a task).
# Failures are still logged, as errors; MODERATION_LOG_LEVEL=DEBUG brings the lines back.
_PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")


def _quiet_per_task_lines(level: str) -> None:
    if level.upper() != "DEBUG":
        for name in _PER_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def _wait_at_gate() -> None:
    """A standby, started and warm, takes no message until its gate file is removed.

    This runs when the worker is ready but before its loop first asks Redis for messages, so
    while it waits it consumes nothing, and its first beat comes once it is through:
    `moderation up` removes the file the moment the active scoring worker exits, and the
    standby decides within milliseconds instead of a new worker's start of a second or more.
    """
    gate = os.environ.get("MODERATION_START_GATE")  # service/cli/supervisor.py START_GATE_ENV
    if not gate:
        return
    log.info("standby_waiting", gate=gate)
    parent = os.getppid()
    while os.path.exists(gate):
        # Celery's SIGTERM only sets a flag, and the parent-death signal is a SIGTERM: a
        # standby must notice both, or it outlives a runner that was killed. It has taken
        # nothing, so it leaves at once.
        if worker_state.should_stop is not None or worker_state.should_terminate is not None:
            os._exit(0)
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.05)
    log.info("standby_taking_over")


@signals.worker_ready.connect
def _warm_and_sweep(sender: Any = None, **_: Any) -> None:
    configure_logging(get_settings().log_level)
    _quiet_per_task_lines(get_settings().log_level)
    if get_settings().metrics_port:
        # A worker of its own container (docker-compose) is scraped here; on one machine
        # the API's /metrics holds every process's figures already.
        try:
            start_http_server(get_settings().metrics_port, registry=scrape_registry())
        except OSError as exc:  # another process of this host holds the port: work on
            log.warning(
                "metrics_port_unavailable", port=get_settings().metrics_port, error=str(exc)
            )
    if _scores_comments():
        # Load the model now, not when the first comment arrives.
        log.info("worker_model_ready", model_version=resources().scorer.version)
        _wait_at_gate()
        # Comments stranded by a previous crash are picked up as soon as a worker is back.
        app.send_task(SWEEP_PENDING)
    if WEBHOOK_QUEUE in set(app.amqp.queues.consume_from or ()):
        app.send_task(RETRY_WEBHOOKS)  # deliveries left due while no webhook worker ran
