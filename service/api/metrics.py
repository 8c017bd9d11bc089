"""GET /metrics: the Prometheus exposition of this machine's processes (service/core/metrics.py)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.core.errors import AuthError
from service.core.metrics import scrape_registry
from service.http.deps import State, bearer, state_of

__all__ = ["router"]

router = APIRouter(tags=["health"])


async def _scraper(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """The metrics token when one is set; else the per-address quota of routes without a key
    (a scrape reads the database and Redis)."""
    state = state_of(request)
    token = state.settings.metrics_token
    if not token:
        if request.client is not None:
            await state.quotas.charge_address(request.client.host)
        return
    given = bearer(authorization) or ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise AuthError(
            "missing or wrong metrics token (MODERATION_METRICS_TOKEN is set)",
            field="Authorization",
        )


@router.get(
    "/metrics",
    summary="Prometheus metrics of this machine's API and worker processes",
    response_class=Response,
    dependencies=[Depends(_scraper)],
)
def metrics(state: State) -> Response:
    registry = scrape_registry([state.backlog])
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
