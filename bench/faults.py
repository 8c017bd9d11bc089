"""Faults under load: no comment that got a 2xx is lost or decided twice, whatever fails.

    python -m bench.faults [--comments 2000] [--rate 40] [--rounds 3]

A stack on a PostgreSQL server of its own (initdb'd in a temporary folder, so that it can be
stopped and started without touching the machine's) and a Redis with its append-only file on,
as docker-compose runs it. A client submits a bounded stream of real news comments at `rate`
a second (`wait_ms=0`), retrying each one that did not get a 2xx with the same external id
(idempotent), while the faults run in turn, `rounds` times each: the scoring worker SIGKILLed
and started again, Redis SIGKILLed and started again, PostgreSQL stopped (`-m immediate`, as
a crash) and started again, the API SIGKILLed and started again. Afterwards it waits for every
accepted comment to be decided and prints how many were accepted, lost (no row), left
pending, decided more than once, and the time from the last fault's recovery to the last
decision. `tests/comments/test_fault_stream.py` runs a short version and asserts the promise.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text

from bench.pipeline import DATA, load_texts
from service.core.tables import Comment, CommentStatus, Decision
from tests.stack import Stack, free_port

__all__ = ["Outcome", "PrivatePostgres", "main", "run"]

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), Path("/usr/bin"))


class PrivatePostgres:
    """A PostgreSQL server of this run's own, in a temporary folder, on a free port.

    The folder is its own (not inside the caller's, which may be private to this user): run
    as root, the server runs as the `postgres` user, who must be able to reach it.
    """

    def __init__(self) -> None:
        self.directory, self.port = Path(tempfile.mkdtemp(prefix="moderation-pg-")), free_port()
        self.data = self.directory / "data"

    def _as_owner(self, *args: str) -> list[str]:
        # PostgreSQL refuses to run as root: run it as its own system user then.
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(self._as_owner(*initdb), check=True, capture_output=True)
        return self.start()

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "start"]
        command += ["-l", str(self.directory / "server.log")]
        subprocess.run(self._as_owner(*command), check=True, capture_output=True)
        return self

    def stop(self, mode: str = "fast") -> None:
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
        subprocess.run(self._as_owner(*command), check=False, capture_output=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Outcome:
    submitted: int = 0
    accepted: set[str] = field(default_factory=set)  # external ids that got a 2xx
    retried: int = 0
    faults: list[str] = field(default_factory=list)
    lost: int = 0
    pending: int = 0
    decided_twice: int = 0
    last_fault_at: float = 0.0
    last_decision_after_s: float | None = None


def _submit(stack: Stack, texts: list[str], n: int, rate: float, outcome: Outcome) -> None:
    """The client: one comment every 1/rate s, each retried until it gets a 2xx."""
    headers = {"Authorization": f"Bearer {stack.keys['news-submitter']}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=10) as client:
        began = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, began + i / rate - time.monotonic()))
            body = {
                "external_id": f"f-{i}",
                "article_id": "peace-talks",
                "author_id": f"reader-{i % 53}",
                "text": texts[i % len(texts)],
            }
            outcome.submitted += 1
            for _ in range(600):
                try:
                    if client.post("/v1/comments", json=body).status_code in (200, 202):
                        outcome.accepted.add(body["external_id"])
                        break
                except httpx.HTTPError:
                    pass
                outcome.retried += 1
                time.sleep(0.1)


def _faults(stack: Stack, postgres: PrivatePostgres) -> list[tuple[str, Callable[[], None]]]:
    def worker() -> None:
        stack.kill("worker", signal.SIGKILL)
        stack.start_worker()

    def redis_server() -> None:
        assert stack.redis is not None and stack.redis.process is not None
        stack.redis.process.kill()
        stack.redis.process.wait()
        time.sleep(1)
        stack.redis.start()

    def database() -> None:
        postgres.stop("immediate")
        time.sleep(2)
        postgres.start()

    def api() -> None:
        stack.kill("api", signal.SIGKILL)
        stack.start_api()

    return [("worker", worker), ("redis", redis_server), ("postgresql", database), ("api", api)]


def _settle(stack: Stack, database_url: str, outcome: Outcome, timeout: float) -> None:
    """Wait for every accepted comment to be decided; count what the promise forbids."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                rows = {
                    external_id: status
                    for external_id, status in connection.execute(
                        select(Comment.external_id, Comment.status)
                    )
                }
                last = connection.scalar(
                    text("SELECT extract(epoch FROM max(decided_at)) FROM decisions")
                )
                twice = connection.scalar(
                    select(func.count()).select_from(
                        select(Decision.comment_id)
                        .group_by(Decision.comment_id)
                        .having(func.count() > 1)
                        .subquery()
                    )
                )
            outcome.lost = len(outcome.accepted - set(rows))
            outcome.pending = sum(
                1 for e in outcome.accepted if rows.get(e) == CommentStatus.PENDING
            )
            outcome.decided_twice = int(twice or 0)
            if outcome.pending == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if last is not None:
            outcome.last_decision_after_s = max(0.0, float(last) - outcome.last_fault_at)
    finally:
        engine.dispose()


@contextmanager
def _stack(directory: Path, env: dict[str, str]) -> Iterator[tuple[Stack, PrivatePostgres]]:
    postgres = PrivatePostgres().create()
    # The append-only file on, as docker-compose runs Redis: a restart keeps the queues.
    stack = Stack(directory / "stack", postgres.url, env, redis_appendonly=True)
    try:
        stack.start(beat=True)
        yield stack, postgres
    finally:
        stack.stop()
        postgres.remove()


def run(
    directory: Path,
    *,
    comments: int,
    rate: float,
    rounds: int,
    pause: float = 2.0,
    env: dict[str, str] | None = None,
    texts: list[str] | None = None,
) -> Outcome:
    """The stream and the faults; what became of every accepted comment. `texts`: the
    comments to send (default: the Civil Comments sample in ../shared/data)."""
    outcome = Outcome()
    texts = texts or load_texts(DATA)
    # A quick sweep: comments whose message was lost with Redis are queued again in seconds.
    settings = {
        "MODERATION_STALE_PENDING_SECONDS": "3",
        "MODERATION_SWEEP_INTERVAL_SECONDS": "1",
        "MODERATION_WORKER_BEAT_SECONDS": "1",
        **(env or {}),
    }
    with _stack(directory, settings) as (stack, postgres):
        client = threading.Thread(target=_submit, args=(stack, texts, comments, rate, outcome))
        client.start()
        for _ in range(rounds):
            for name, fault in _faults(stack, postgres):
                if not client.is_alive():
                    break
                time.sleep(pause)
                fault()
                outcome.faults.append(name)
                outcome.last_fault_at = time.time()
        client.join()
        _settle(stack, postgres.url, outcome, timeout=120)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--comments", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=40.0, help="comments a second")
    parser.add_argument("--rounds", type=int, default=3, help="times each fault runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        began = time.monotonic()
        outcome = run(Path(tmp), comments=args.comments, rate=args.rate, rounds=args.rounds)
        took = time.monotonic() - began
    after = outcome.last_decision_after_s
    print(
        f"{outcome.submitted} comments at {args.rate:g}/s, {len(outcome.faults)} faults "
        f"({', '.join(outcome.faults)}), {took:.0f} s in all\n"
        f"accepted {len(outcome.accepted)}, submissions retried {outcome.retried}\n"
        f"lost {outcome.lost}, still pending {outcome.pending}, decided twice "
        f"{outcome.decided_twice}"
    )
    if after is not None:
        print(f"last decision {after:.1f} s after the last fault was over")


if __name__ == "__main__":
    main()
