"""A real deployment in miniature for tests: Redis, Celery workers, beat and the API.

Tests take it from the shared `stack` fixture (tests/conftest.py); a module that needs more
than one SQLite stack with a scoring worker says so with `STACK = StackSpec(...)`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.cli.up import api_command, beat_command, worker_command
from service.core.broker import SCORING_QUEUE
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.embedded_redis import EmbeddedRedis
from service.core.migrate import upgrade_database
from service.core.settings import Settings
from service.sites.keys import create_key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Settings for a stack one client drives as fast as it can (the benchmarks): quotas too high to
# reach, while the quota's cost, one Redis call a request, is still paid.
NO_QUOTA = {
    "MODERATION_KEY_BURST": "1000000",
    "MODERATION_KEY_REQUESTS_PER_SECOND": "100000",
    "MODERATION_FAILED_AUTH_PER_MINUTE": "1000000",
    "MODERATION_ANONYMOUS_REQUESTS_PER_MINUTE": "1000000",
}


@dataclass
class Stack:
    directory: Path
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None
    port: int = 0
    keys: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    engine: Engine | None = None
    # Redis with its append-only file on, as docker-compose runs it (bench/faults.py).
    redis_appendonly: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        assert self.redis is not None
        return {
            **os.environ,
            "MODERATION_DATABASE_URL": self.database_url,
            "MODERATION_REDIS_URL": self.redis.url,
            "MODERATION_VAR_DIR": str(self.directory),
            "MODERATION_API_PORT": str(self.port),
            "MODERATION_LOG_LEVEL": "WARNING",
            # As `moderation up` runs them: every process's metrics in one folder.
            "PROMETHEUS_MULTIPROC_DIR": str(self.directory / "metrics"),
            **self.extra_env,
        }

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self.engine is None:
            self.engine = make_engine(self.database_url)
        return make_session_factory(self.engine)

    def start(
        self, *, beat: bool = False, workers: tuple[str, ...] = (), scoring_workers: int = 1
    ) -> Stack:
        """Redis, the schema, the test keys, `scoring_workers` scoring workers (named
        "worker", then "worker-2", ...), then beat, the workers of the other `workers` queues
        (e.g. "webhooks", "training") and the API."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "metrics").mkdir(exist_ok=True)
        self.redis = EmbeddedRedis(
            self.directory, port=free_port(), appendonly=self.redis_appendonly
        ).start()
        self.port = free_port()
        upgrade_database(self.database_url)
        with session_scope(self.sessions) as session:
            for site, role in (
                ("news", "submitter"),
                ("news", "moderator"),
                ("news", "site_admin"),
                ("news", "operator"),
                ("other", "submitter"),
            ):
                self.keys[f"{site}-{role}"] = create_key(session, site_name=site, role=role)[1]
        self.start_worker()
        for number in range(2, scoring_workers + 1):
            self.start_worker(f"worker-{number}", node=f"scoring{number}")
        if beat:
            self._spawn("beat", beat_command(Settings(var_dir=self.directory)))
        # Spawned before the API and awaited after it, so that the start-ups overlap.
        for queue in workers:
            self._spawn(queue, worker_command(queue=queue, loglevel="INFO"))
        self.start_api()
        for queue in workers:
            self._wait_for_log(queue, "ready", timeout=60)
        return self

    def start_worker(
        self,
        name: str = "worker",
        *,
        queue: str = SCORING_QUEUE,
        log_each_task: bool = False,
        node: str | None = None,
    ) -> None:
        """`log_each_task`: keep Celery's per-task lines in its log (MODERATION_LOG_LEVEL=DEBUG)."""
        env = {"MODERATION_LOG_LEVEL": "DEBUG"} if log_each_task else {}
        self._spawn(name, worker_command(queue=queue, loglevel="INFO", node=node), env)
        self._wait_for_log(name, "ready", timeout=60)

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.processes[name] = subprocess.Popen(
            args,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path.cwd(),
        )

    def start_api(self, name: str = "api", port: int | None = None) -> int:
        """An API process (another replica, given another name), ready; its port."""
        port = port or self.port
        env = {"MODERATION_API_PORT": str(port)}
        self._spawn(name, api_command(Settings(api_port=port)), env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self._check_alive(name)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return port
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"API did not become ready:\n{self.log(name)}")

    def _check_alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)}")

    def _wait_for_log(self, name: str, needle: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(name)
            if needle in self.log(name):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not log {needle!r}:\n{self.log(name)}")

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(timeout=30)

    def client(self, key: str = "news-submitter", *, port: int | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        base_url = f"http://127.0.0.1:{port}" if port else self.base_url
        return httpx.Client(base_url=base_url, headers=headers, timeout=30)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.redis is not None:
            self.redis.stop()
        if self.engine is not None:
            self.engine.dispose()


@dataclass(frozen=True)
class StackSpec:
    """How a module's `stack` starts: on which databases (one stack each, shared by the
    module's tests), with which settings, processes and extra keys."""

    databases: tuple[str, ...] = ("sqlite",)
    env: Mapping[str, str] = field(default_factory=dict)
    beat: bool = False
    workers: tuple[str, ...] = ()  # queues beside scoring that get a worker: webhooks, training
    keys: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (site, role)
    # More settings made in the stack's folder before it starts (a model trained for it, say).
    prepare: Callable[[Path], Mapping[str, str]] | None = None


@contextmanager
def start_stack(spec: StackSpec, directory: Path, database_url: str) -> Iterator[Stack]:
    """A running stack as `spec` says, stopped afterwards (also when it fails to start)."""
    env = {**spec.env, **(spec.prepare(directory) if spec.prepare else {})}
    with Stack(directory, database_url, env) as running:
        running.start(beat=spec.beat, workers=spec.workers)
        with session_scope(running.sessions) as session:
            for name, (site, role) in spec.keys.items():
                running.keys[name] = create_key(session, site_name=site, role=role)[1]
        yield running


def database_for(request: pytest.FixtureRequest, directory: Path) -> str:
    """The database of a fixture parametrized "sqlite" / "postgresql": a file in `directory`,
    or the test session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{directory / 'moderation.db'}"
    return str(request.getfixturevalue("postgres_url"))


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


__all__ = [
    "NO_QUOTA",
    "Stack",
    "StackSpec",
    "database_for",
    "free_port",
    "start_stack",
    "wait_until",
]
