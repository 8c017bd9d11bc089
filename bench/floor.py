"""The bare floor: the service's shape (FastAPI → Celery on Redis → worker → wake-up) doing no work.

`bench.pipeline` starts it beside the service and divides by it. One module holds all three
parts, so the processes it runs load nothing of `service`:

- the API (`uvicorn --factory bench.floor:create_app`): `POST /v1/comments?wait_ms=` takes the
  service's comment body, registers an asyncio future under a new id, sends one Celery task from
  a worker thread, and waits on the process's one Redis subscription; no database, auth or model;
- the worker (`celery -A bench.floor:celery_app worker`): its task only publishes
  `{id, status: "approved"}` on the decisions channel;
- `FloorStack`: its own embedded Redis, then that worker and API, started with the flags
  `moderation up` gives the service's scoring worker and API (taken from `service.cli.up`).

The **durable floor** (`FloorStack(..., durable=True)`, `bench.pipeline --systems durable`) adds
only what the service's promise costs at least: the API commits each comment to SQLite before
it sends the task, and the worker commits its status before it publishes, with the service's
pragmas (WAL, `synchronous=FULL`), one row and one transaction each, through the standard
library's `sqlite3` (no ORM, no batching). Whatever the service spends above it is auth,
quotas, the model, the policy and the decision's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import orjson
import redis
import redis.asyncio as aioredis
from celery import Celery
from fastapi import FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from service.core.embedded_redis import EmbeddedRedis

__all__ = ["FloorStack", "celery_app", "create_app"]

REDIS_URL_ENV = "FLOOR_REDIS_URL"
DATABASE_ENV = "FLOOR_DATABASE"  # set: the durable floor, committing to this SQLite file
QUEUE = "scoring"
DECIDE = "floor.decide"
CHANNEL = "floor:decisions"
ROOT = Path(__file__).resolve().parent.parent


def _redis_url() -> str:
    return os.environ[REDIS_URL_ENV]


def _celery_config() -> dict[str, Any]:
    # The settings of service/core/broker.py that act on every message (serialiser, late
    # acknowledgement, prefetch, no results), so both pay the same per-task Celery cost.
    return {
        "broker_url": _redis_url(),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": 300,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": QUEUE,
        "worker_prefetch_multiplier": 8,
    }


celery_app = Celery("floor", set_as_current=False)
# A promise, as in workers/app.py: the environment is read when Celery configures itself.
celery_app.add_defaults(_celery_config)


@functools.cache
def _publisher() -> redis.Redis:
    # Built on first use in the worker; the solo pool never forks, so one client is safe.
    return redis.Redis.from_url(_redis_url(), socket_timeout=5)


_connections = threading.local()  # one sqlite3 connection per thread, as the service's pool


def _database() -> sqlite3.Connection | None:
    """This thread's connection to the durable floor's database; None for the bare floor."""
    path = os.environ.get(DATABASE_ENV)
    if not path:
        return None
    connection: sqlite3.Connection | None = getattr(_connections, "connection", None)
    if connection is None:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000"):
            connection.execute(f"PRAGMA {pragma}")
        _connections.connection = connection
    return connection


def _create_table(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE comments (id TEXT PRIMARY KEY, text TEXT, status TEXT)")


def _commit(statement: str, values: tuple[str, ...]) -> None:
    connection = _database()
    if connection is not None:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(statement, values)
        connection.execute("COMMIT")


def _store_and_send(comment_id: str, text: str) -> None:
    _commit("INSERT INTO comments VALUES (?, ?, 'pending')", (comment_id, text))
    celery_app.send_task(DECIDE, args=[comment_id], queue=QUEUE)


@celery_app.task(name=DECIDE, acks_late=True)
def decide(comment_id: str) -> None:
    _commit("UPDATE comments SET status = 'approved' WHERE id = ?", (comment_id,))
    _publisher().publish(CHANNEL, orjson.dumps({"id": comment_id, "status": "approved"}))


class CommentIn(BaseModel):
    """The fields and types of the service's comment body, without its own validators."""

    model_config = ConfigDict(extra="forbid", str_max_length=200)

    external_id: str = Field(min_length=1)
    article_id: str = Field(min_length=1)
    author_id: str = Field(min_length=1)
    text: str = Field(min_length=1, max_length=1_000_000)
    parent_id: str | None = None
    section: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Waiters:
    """One subscription per API process wakes every waiting request (service/http/waiters.py)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.subscribed = asyncio.Event()

    def register(self, comment_id: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[comment_id] = future
        return future

    async def wait(
        self, comment_id: str, future: asyncio.Future[dict[str, Any]], timeout: float
    ) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(comment_id, None)

    async def listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)
        self.subscribed.set()
        async for message in pubsub.listen():
            decided = orjson.loads(message["data"])
            future = self._waiting.pop(decided["id"], None)
            if future is not None and not future.done():
                future.set_result(decided)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    client = aioredis.from_url(_redis_url(), socket_connect_timeout=2)
    app.state.waiters = waiters = Waiters(client)
    listener = asyncio.create_task(waiters.listen())
    await asyncio.wait_for(waiters.subscribed.wait(), timeout=5)
    try:
        yield
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await client.aclose()


def create_app() -> FastAPI:
    app = FastAPI(lifespan=_lifespan)

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/comments")
    async def post_comment(
        payload: CommentIn,
        request: Request,
        wait_ms: Annotated[int, Query(ge=0, le=5000)] = 0,
    ) -> Response:
        waiters: Waiters = request.app.state.waiters
        comment_id = os.urandom(16).hex()
        # Listen before the task exists, so even an instant decision cannot be missed.
        future = waiters.register(comment_id)
        # Celery's send blocks: on a thread, as the service does, never on the event loop.
        await run_in_threadpool(_store_and_send, comment_id, payload.text)
        decided = await waiters.wait(comment_id, future, wait_ms / 1000)
        if decided is None:
            decided, status = {"id": comment_id, "status": "pending"}, 202
        else:
            status = 200
        # The bytes directly: no response model to validate, the cheapest way FastAPI answers.
        return Response(orjson.dumps(decided), status_code=status, media_type="application/json")

    return app


@dataclass
class FloorStack:
    """Redis, one floor worker and one floor API, started and stopped like tests.stack.Stack."""

    directory: Path
    durable: bool = False
    port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FloorStack:
        # Imported here, not at the top: the floor's own processes import this module and must
        # not pay for the service's packages.
        from service.cli.up import api_command, worker_command
        from service.core.embedded_redis import EmbeddedRedis
        from service.core.settings import Settings
        from tests.stack import free_port

        self.directory.mkdir(parents=True, exist_ok=True)
        self.redis = EmbeddedRedis(self.directory, port=free_port()).start()
        self.port = free_port()
        env = {**os.environ, REDIS_URL_ENV: self.redis.url}
        env.pop(DATABASE_ENV, None)
        if self.durable:
            _create_table(self.directory / "floor.db")
            env[DATABASE_ENV] = str(self.directory / "floor.db")
        worker = worker_command(loglevel="INFO")
        worker[worker.index("workers.app")] = "bench.floor:celery_app"
        api = api_command(Settings(api_port=self.port))
        api[api.index("service.app:create_app")] = "bench.floor:create_app"
        self._spawn("worker", worker, env)
        self._spawn("api", api, env)
        self._wait_ready()
        return self

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.processes[name] = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        worker_log = self.directory / "worker.log"
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log = (self.directory / f"{name}.log").read_text(errors="replace")
                    raise RuntimeError(f"floor {name} exited:\n{log[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                api_up = httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200
                if api_up and "ready" in worker_log.read_text(errors="replace"):
                    return
            time.sleep(0.1)
        raise RuntimeError("the floor did not become ready")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.redis is not None:
            self.redis.stop()
