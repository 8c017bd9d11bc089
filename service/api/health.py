"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import ORJSONResponse
from sqlalchemy import text

from service.http.deps import Anonymous, State

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


# Not /healthz: it costs less than the Redis call a quota would. /readyz reaches the database.
@router.get("/readyz", summary="Database, Redis and model are usable", dependencies=[Anonymous])
async def readyz(state: State) -> ORJSONResponse:
    checks: dict[str, Any] = {}

    def database() -> None:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(database)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        await state.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    checks["decisions_subscription"] = "ok" if state.waiters.subscribed.is_set() else "down"
    checks["model"] = state.models.scorer.version
    ready = all(checks[name] == "ok" for name in ("database", "redis", "decisions_subscription"))
    return ORJSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
