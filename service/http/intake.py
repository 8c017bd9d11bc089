"""Group commit for submitted comments: the requests that arrive together are stored together.

Each comment costs a transaction, a commit (an fsync on SQLite and PostgreSQL alike) and a
Celery message. An API process under load has many requests waiting on those at once, so it
writes them as one: while one batch is being stored, the requests arriving meanwhile queue up,
and the next batch takes them all (up to `max_batch`), in one transaction and one message to
the scoring queue. Nothing waits to fill a batch: a lone comment is stored at once, as before,
and batches grow only when comments would otherwise queue behind each other's commits.

The promise is unchanged: a request is answered only after its comment committed, and the
scoring message is sent only after that commit (a worker must never look for a row it cannot
see yet). A comment refused for itself is refused alone (see `submit_batch`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from service.comments.intake import Submission, Submitted, submit_batch
from service.comments.schemas import CommentIn
from service.comments.views import comment_status_view
from service.core.errors import Unavailable

__all__ = ["IntakeBatcher", "Stored"]

log = structlog.get_logger(__name__)


@dataclass
class Stored:
    view: dict[str, Any]
    created: bool  # False: the same external id was submitted before
    enqueued: bool = False  # a worker will hear of it now (not only from the sweeper)


@dataclass
class _Waiting:
    item: Submission
    future: asyncio.Future[Stored]


class IntakeBatcher:
    """Stores comments in batches of whatever arrived while the previous batch was stored.

    One batch is written at a time per process: SQLite has one writer anyway, and on
    PostgreSQL a larger batch costs the same commit as a small one. A committed batch's
    scoring message is sent beside the next batch's write, not before it: a slow or
    unreachable Redis then holds only the requests of the batches it is sending, as it held
    only their own requests before batching, and never the commits of the others.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        enqueue: Callable[[Sequence[str]], bool],
        *,
        max_text_chars: int,
        max_batch: int,
    ) -> None:
        self._sessions, self._enqueue = sessions, enqueue
        self._max_text_chars, self._max_batch = max_text_chars, max_batch
        self._queue: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()  # referenced, so none is collected

    async def submit(self, site_id: int, payload: CommentIn, comment_id: str) -> Stored:
        """Store the comment (or find the one stored under its external id) and enqueue it."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(Submission(site_id, payload, comment_id), future))
        if self._writer is None or self._writer.done():
            self._start_writer()
        # A request that goes away still has its comment stored: the writer owns the batch.
        return await asyncio.shield(future)

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Waiting] = []
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                # One trip to a worker thread stores the batch and then sends its message; the
                # thread says when the commit is done, and the next batch is written while
                # this one is being sent.
                committed: asyncio.Future[None] = loop.create_future()
                job = asyncio.ensure_future(
                    run_in_threadpool(self._store_and_send, [w.item for w in batch], committed)
                )
                either: set[asyncio.Future[Any]] = {committed, job}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                if not committed.done():  # the job ended before committing: it raised
                    job.result()
                finishing = asyncio.create_task(self._answer(batch, job), name="intake-answer")
                self._answering.add(finishing)
                finishing.add_done_callback(self._answering.discard)
                batch = []
        except BaseException as exc:
            # Cancelled (the process is stopping) or broken: no request may wait forever.
            for waiting in batch:
                _settle(waiting.future, _stopped())
            if not isinstance(exc, Exception):
                raise
            log.exception("intake_writer_failed")

    def _start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write(), name="intake-writer")
        self._writer.add_done_callback(self._after_writer)

    def _after_writer(self, writer: asyncio.Task[None]) -> None:
        """No request may wait forever: a writer cancelled with requests still queued (even
        before it ran) answers them; one that broke leaves them to a new writer."""
        if not self._queue:
            return
        if writer.cancelled():
            for waiting in self._queue:
                _settle(waiting.future, _stopped())
            self._queue.clear()
        else:
            self._start_writer()

    def _store_and_send(
        self, batch: list[Submission], committed: asyncio.Future[None]
    ) -> list[Stored | Exception]:
        """On a worker thread: commit the batch, say so, then send its new comments in one
        message; each comment's answer or its error."""
        answers = submit_batch(self._sessions, batch, max_text_chars=self._max_text_chars)
        committed.get_loop().call_soon_threadsafe(_settle_done, committed)
        stored = [_stored(a) if isinstance(a, Submitted) else a for a in answers]
        created = [a for a in stored if isinstance(a, Stored) and a.created]
        try:
            sent = bool(created) and self._enqueue([a.view["id"] for a in created])
        except Exception:  # committed all the same: the sweeper will enqueue them
            log.exception("intake_enqueue_failed", count=len(created))
            sent = False
        for a in created:
            a.enqueued = sent
        return stored

    async def _answer(
        self, batch: list[_Waiting], job: asyncio.Future[list[Stored | Exception]]
    ) -> None:
        """Answer the batch's requests once its message is sent (or could not be)."""
        try:
            answers = await job
        except BaseException as exc:  # the views could not be built; the comments are stored
            for waiting in batch:
                _settle(waiting.future, _stopped())
            if not isinstance(exc, Exception):
                raise
            log.exception("intake_answer_failed")
            return
        for waiting, answer in zip(batch, answers, strict=True):
            _settle(waiting.future, answer)


def _settle_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _stopped() -> Unavailable:
    return Unavailable("intake stopped before storing this comment; retry")


def _stored(submitted: Submitted) -> Stored:
    return Stored(comment_status_view(submitted.comment), submitted.created)


def _settle(future: asyncio.Future[Stored], answer: Stored | Exception) -> None:
    if future.done():
        return
    if isinstance(answer, Exception):
        future.set_exception(answer)
    else:
        future.set_result(answer)
