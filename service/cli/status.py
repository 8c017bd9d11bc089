"""`moderation status`: what runs on this machine, what waits, and what it runs against."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from service.cli.supervisor import read_state
from service.comments.sweeper import pending_summary
from service.core.broker import SCORING_QUEUE, live_consumers, queue_depths, redis_url
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.settings import Settings
from service.core.tables import utcnow
from service.models.registry import active_version

__all__ = ["Status", "gather", "show"]


@dataclass
class Status:
    """Each part is None where it could not be read; `problems` says why."""

    processes: list[dict[str, Any]] | None = None
    queues: dict[str, int] | None = None
    consumers: dict[str, int] | None = None  # workers consuming each queue lately
    pending: int | None = None
    oldest_pending_seconds: float | None = None
    active_model: str | None = None
    database: str = ""
    redis: str = ""
    problems: list[str] = field(default_factory=list)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _processes(settings: Settings, status: Status) -> None:
    state = read_state(settings.var_dir)
    if state is None:
        status.problems.append(f"no `moderation up` is running with var/ at {settings.var_dir}")
        return
    now = time.time()
    status.processes = [
        child | {"alive": _alive(child.get("pid")), "uptime": now - float(child["started_at"])}
        for child in state["children"]
    ]
    for child in status.processes:
        if not child["alive"]:
            status.problems.append(f"{child['name']} is not running (restarting)")


def _broker(settings: Settings, status: Status) -> None:
    client = redis.Redis.from_url(status.redis, socket_connect_timeout=2, socket_timeout=2)
    try:
        status.queues = queue_depths(client)
        within = settings.worker_silent_seconds
        status.consumers = live_consumers(client, time.time(), within=within)
        if status.consumers[SCORING_QUEUE] == 0:
            status.problems.append(
                f"no scoring worker has consumed in the last {within:g} s: nothing is decided"
            )
    except redis.RedisError as exc:
        status.problems.append(f"Redis at {status.redis} is unreachable: {exc}")
    finally:
        client.close()


def _database(settings: Settings, status: Status) -> None:
    engine = make_engine(settings.resolved_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            summary = pending_summary(session)
            status.active_model = active_version(session)
        status.pending = summary.count
        if summary.oldest is not None:
            status.oldest_pending_seconds = (utcnow() - summary.oldest).total_seconds()
    except Exception as exc:  # any driver's error: say it, do not stack-trace
        status.problems.append(f"the database is unreachable: {type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


def gather(settings: Settings) -> Status:
    status = Status(
        database=make_url(settings.resolved_database_url).render_as_string(hide_password=True),
        redis=redis_url(settings),
    )
    _processes(settings, status)
    _broker(settings, status)
    _database(settings, status)
    return status


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def show(status: Status, console: Console) -> None:
    if status.processes is not None:
        table = Table("process", "pid", "state", "up", "restarts", "log", box=None)
        for p in status.processes:
            state = ("standby" if p.get("standby") else "running") if p["alive"] else "restarting"
            up = _age(p["uptime"]) if p["alive"] else "-"
            table.add_row(p["name"], str(p["pid"]), state, up, str(p["restarts"]), p["log"])
        console.print(table)
    queues, consumers = status.queues or {}, status.consumers or {}
    waiting = ", ".join(
        f"{q} {n} waiting, {consumers.get(q, '?')} consuming" for q, n in queues.items()
    )
    console.print(f"queues: {waiting or '?'}")
    pending = "?" if status.pending is None else str(status.pending)
    console.print(f"pending comments: {pending} (oldest {_age(status.oldest_pending_seconds)})")
    console.print(f"active model: {status.active_model or '-'}")
    console.print(f"database: {status.database}\nredis: {status.redis}")
    for problem in status.problems:
        console.print(f"[yellow]![/yellow] {problem}")
