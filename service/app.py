"""The FastAPI application: lifespan resources, middleware, error handlers, routers, /docs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

from service import web
from service.api import (
    admin,
    comments,
    health,
    metrics,
    models,
    moderation,
    score,
    shadow,
    webhooks,
)
from service.api.docs import install_docs
from service.api.schemas import ErrorOut
from service.compat import coral, openai_moderation, perspective
from service.compat.errors import too_large_body
from service.core.broker import NOOP_DECIDE, SCORE_COMMENTS, Enqueuer, make_celery, redis_url
from service.core.db import make_engine, make_session_factory
from service.core.logs import configure_logging
from service.core.settings import Settings, get_settings
from service.http.caller import Caller
from service.http.errors import install_error_handlers
from service.http.intake import IntakeBatcher
from service.http.key_cache import KeyCache
from service.http.limits import ADMIN_BODY_PATHS, BodySizeLimit
from service.http.metrics import BacklogCollector, RequestMetrics
from service.http.quotas import QuotaRules, Quotas
from service.http.state import AppState
from service.http.waiters import DecisionWaiters
from service.models.holder import ModelHolder
from service.rules.language import use_detector_files

__all__ = ["ERROR_RESPONSES", "create_app"]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "Malformed JSON or a body that is not UTF-8.",
        401: "Missing, unknown or revoked API key.",
        403: "The key's role may not do this.",
        404: "No such resource for the key's site.",
        413: "The body is over the size limit.",
        422: "A field is missing, unknown, of the wrong type or out of range.",
        503: "A dependency is down; retry after `Retry-After` seconds.",
    }.items()
}


async def _open_state(settings: Settings) -> AppState:
    """What the process holds while it serves: engine, Redis, waiters, the model, the queue."""
    configure_logging(settings.log_level)
    use_detector_files(settings.language_model_dir)  # the Perspective-style routes detect inline
    engine = make_engine(settings.resolved_database_url)
    # The health check pings an idle subscription, so a half-open connection is noticed.
    client = aioredis.from_url(
        redis_url(settings), socket_connect_timeout=2, health_check_interval=15
    )
    keys: KeyCache[Caller] = KeyCache()
    waiters = DecisionWaiters(client, on_keys_changed=keys.forget, on_subscribed=keys.set_live)
    await waiters.start()
    with contextlib.suppress(TimeoutError):  # Redis may be down; requests still work
        await asyncio.wait_for(waiters.subscribed.wait(), timeout=5)
    sessions = make_session_factory(engine)
    models = ModelHolder(
        sessions,
        cache_dir=settings.var_dir / "models",
        bootstrap_dir=settings.model_dir,
        poll_seconds=settings.model_poll_seconds,
        shadow=False,  # only scoring workers score with the shadow model
    )
    await asyncio.to_thread(models.start)
    enqueue = Enqueuer(
        make_celery(settings),
        task_name=NOOP_DECIDE if settings.pipeline_task == "noop" else SCORE_COMMENTS,
    )
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        enqueue=enqueue,
        redis=client,
        waiters=waiters,
        models=models,
        quotas=Quotas.on_redis(
            redis_url(settings),
            QuotaRules(
                per_second=settings.key_requests_per_second,
                burst=settings.key_burst,
                failures_per_minute=settings.failed_auth_per_minute,
                anonymous_per_minute=settings.anonymous_requests_per_minute,
            ),
        ),
        keys=keys,
        intake=IntakeBatcher(
            sessions,
            enqueue,
            max_text_chars=settings.max_text_chars,
            max_batch=settings.score_batch_size,
        ),
        backlog=BacklogCollector(
            redis.Redis.from_url(redis_url(settings), socket_connect_timeout=2, socket_timeout=2),
            sessions,
            silent_seconds=settings.worker_silent_seconds,
        ),
    )


async def _close_state(state: AppState) -> None:
    state.models.stop()
    await state.waiters.stop()
    await state.redis.aclose()
    state.backlog.close()
    state.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.moderation = state = await _open_state(settings)
        try:
            yield
        finally:
            await _close_state(state)

    app = FastAPI(
        title="Comment moderation service",
        version="1",
        default_response_class=ORJSONResponse,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # FastAPI's pages load Swagger UI and ReDoc from a CDN; /docs is served from the
        # package instead (service/api/docs.py), and ReDoc, which no package ships, is dropped.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        error_body=too_large_body,
        larger=[(ADMIN_BODY_PATHS, settings.max_admin_body_bytes)],
    )
    app.add_middleware(RequestMetrics)  # outermost: a refused body is counted too
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(comments.router)
    app.include_router(score.router)
    app.include_router(webhooks.router)
    app.include_router(moderation.router)
    app.include_router(admin.router)
    app.include_router(models.router)
    app.include_router(web.router)
    app.include_router(shadow.router)
    app.include_router(perspective.router)
    app.include_router(coral.router)
    app.include_router(openai_moderation.router)
    install_docs(app)
    return app
