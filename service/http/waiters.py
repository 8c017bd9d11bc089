"""Hand decisions published by workers to the API requests waiting for them.

One Redis subscription per API process serves every waiting request: a request registers a
future under its comment id before the comment is enqueued, and the listener resolves it. The
same subscription hears that a key changed (`KEYS_CHANGED`), for the process's key cache.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog

from service.comments.notify import DECISIONS_CHANNEL
from service.sites.keys import KEYS_CHANGED

__all__ = ["DecisionWaiters"]

log = structlog.get_logger(__name__)


class DecisionWaiters:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        on_keys_changed: Callable[[], None] = lambda: None,
        on_subscribed: Callable[[bool], None] = lambda live: None,
    ) -> None:
        self._client = client
        self._on_keys_changed, self._on_subscribed = on_keys_changed, on_subscribed
        self._waiting: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="decision-waiters")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, comment_id: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(comment_id, []).append(future)
        return future

    def discard(self, comment_id: str, future: asyncio.Future[dict[str, Any]]) -> None:
        futures = self._waiting.get(comment_id)
        if futures and future in futures:
            futures.remove(future)
            if not futures:
                del self._waiting[comment_id]

    async def wait(
        self, comment_id: str, future: asyncio.Future[dict[str, Any]], timeout: float
    ) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return None
        finally:
            self.discard(comment_id, future)

    def _deliver(self, raw: bytes) -> None:
        message = orjson.loads(raw)
        for future in self._waiting.pop(message["id"], ()):
            if not future.done():
                future.set_result(message)

    async def _listen(self) -> None:
        # Reconnect forever: while Redis is away requests simply time out and read the DB.
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(DECISIONS_CHANNEL, KEYS_CHANGED)
                self.subscribed.set()
                self._on_subscribed(True)
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    if message["channel"] == KEYS_CHANGED.encode():
                        self._on_keys_changed()
                    else:
                        self._deliver(message["data"])
            except asyncio.CancelledError:
                self._on_subscribed(False)
                raise
            except Exception as exc:
                self.subscribed.clear()
                self._on_subscribed(False)
                log.warning("decision_listener_lost", error=str(exc))
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
