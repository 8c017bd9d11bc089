"""Liveness and readiness probes."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import ORJSONResponse
from sqlalchemy import text

from service.core.broker import SCORING_QUEUE, consumers_key
from service.http.deps import Anonymous, State
from service.http.state import AppState

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database(state: AppState) -> str | None:
    def ping() -> None:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except Exception as exc:
        return f"the database cannot be reached ({exc.__class__.__name__})"
    return None


async def _scoring(state: AppState, checks: dict[str, Any]) -> list[str]:
    """Redis, this process's decisions subscription, and the scoring workers consuming."""
    try:
        await state.redis.ping()
        silent = state.settings.worker_silent_seconds
        key, since = consumers_key(SCORING_QUEUE), time.time() - silent
        workers = int(await state.redis.zcount(key, since, "+inf"))
    except Exception as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
        return [f"Redis cannot be reached ({exc.__class__.__name__})"]
    checks["redis"], checks["scoring_workers"] = "ok", workers
    reasons = []
    if not state.waiters.subscribed.is_set():
        reasons.append("this API process is not subscribed to decisions (waits will time out)")
    if workers == 0:
        reasons.append(
            f"no scoring worker has consumed from the queue in the last {silent:g} s: "
            "comments are stored but not decided"
        )
    return reasons


# Not /healthz: it costs less than the Redis call a quota would. /readyz reaches the database.
@router.get(
    "/readyz",
    summary="Decisions flow: database, Redis, model and a scoring worker consuming",
    description=(
        "503 with `reasons` when anything a decision needs is missing. `?scope=intake` asks only "
        "whether this process can accept and store comments (the database and its model): a load "
        "balancer's rotation probe, which must not take every API out of rotation when the "
        "workers are down, since stored comments are decided once they are back."
    ),
    dependencies=[Anonymous],
)
async def readyz(
    state: State, scope: Annotated[Literal["all", "intake"], Query()] = "all"
) -> ORJSONResponse:
    checks: dict[str, Any] = {}
    reasons: list[str] = []
    problem = await _database(state)
    checks["database"] = "ok" if problem is None else "error"
    reasons += [problem] if problem else []
    try:
        checks["model"] = state.models.scorer.version
    except RuntimeError:
        checks["model"] = None
        reasons.append("no model is loaded")
    if scope == "all":
        reasons += await _scoring(state, checks)
        checks["decisions_subscription"] = "ok" if state.waiters.subscribed.is_set() else "down"
    body = {"status": "not_ready" if reasons else "ready", "checks": checks, "reasons": reasons}
    return ORJSONResponse(body, status_code=503 if reasons else 200)
