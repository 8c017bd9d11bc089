"""Routes for a site's webhook (admins) and the record of its deliveries (moderators)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.orm import Session

from service.api.schemas import DeliveriesOut, WebhookIn, WebhookOut
from service.core.broker import enqueue_webhooks
from service.http.deps import AdminKey, ModeratorKey, SiteId, State, require_site
from service.http.units import in_session
from service.webhooks.config import (
    WebhookConfig,
    get_webhook,
    remove_webhook,
    set_webhook,
)
from service.webhooks.delivery import DeliveryRecord, list_deliveries
from service.webhooks.redelivery import retry_delivery

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["webhooks"])

SiteName = Annotated[str, Path(min_length=1, max_length=100, description="The site's name.")]


def _config_view(config: WebhookConfig) -> dict[str, Any]:
    return {
        "site": config.site,
        "url": config.url,
        "secret_set": config.secret_set,
        "secret": config.secret,
    }


def _delivery_view(record: DeliveryRecord) -> dict[str, Any]:
    d = record.delivery
    return {
        "id": d.id,
        "event": d.event,
        "comment_id": d.comment_id,
        "url": d.url,
        "status": d.status,
        "next_attempt_at": d.next_attempt_at,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
        "payload": d.payload,
        "attempts": [
            {
                "number": a.number,
                "started_at": a.started_at,
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "error": a.error,
            }
            for a in record.attempts
        ],
    }


def _service_origins(request: Request, state: State) -> list[tuple[str, int]]:
    """Where this service answers: the address the caller used, and the configured one."""
    url = request.base_url
    default_port = 443 if url.scheme == "https" else 80
    origins = [(state.settings.api_host, state.settings.api_port)]
    if url.hostname:
        origins.append((url.hostname, url.port or default_port))
    return origins


@router.put(
    "/sites/{site}/webhook",
    response_model=WebhookOut,
    summary="Set a site's webhook URL and signing secret (site admin)",
)
async def put_webhook(
    site: SiteName,
    payload: WebhookIn,
    caller: AdminKey,
    state: State,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    require_site(caller, site)
    response.headers["Cache-Control"] = "no-store"  # the answer carries the signing secret
    origins = _service_origins(request, state)

    def write(session: Session) -> dict[str, Any]:
        config = set_webhook(
            session,
            site,
            url=payload.url,
            secret=payload.secret,
            actor=caller.actor,
            service_origins=origins,
            api_port=state.settings.api_port,
            allowed_networks=state.settings.webhook_allowed_networks,
        )
        return _config_view(config)

    return await in_session(state, write)


@router.get(
    "/sites/{site}/webhook",
    response_model=WebhookOut,
    summary="A site's webhook URL and whether a secret is set (site admin)",
)
async def read_webhook(site: SiteName, caller: AdminKey, state: State) -> dict[str, Any]:
    require_site(caller, site)

    def read(session: Session) -> dict[str, Any]:
        return _config_view(get_webhook(session, site))

    return await in_session(state, read)


@router.delete(
    "/sites/{site}/webhook", status_code=204, summary="Stop sending a site's events (site admin)"
)
async def delete_webhook(site: SiteName, caller: AdminKey, state: State) -> Response:
    require_site(caller, site)

    def write(session: Session) -> None:
        remove_webhook(session, site, actor=caller.actor)

    await in_session(state, write)
    return Response(status_code=204)


@router.get(
    "/webhooks/deliveries",
    response_model=DeliveriesOut,
    summary="The key's site's webhook deliveries, newest first, with every attempt",
)
async def get_deliveries(
    caller: ModeratorKey,
    site_id: SiteId,
    state: State,
    comment_id: Annotated[str | None, Query(max_length=32)] = None,
    status: Literal["pending", "sending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        records = list_deliveries(
            session, site_id, comment_id=comment_id, status=status, limit=limit
        )
        return {"deliveries": [_delivery_view(r) for r in records]}

    return await in_session(state, read)


@router.post(
    "/webhooks/deliveries/{delivery_id}/retry",
    summary="Send a failed delivery again, now, under the same delivery id (site admins)",
)
async def retry_failed_delivery(
    delivery_id: Annotated[str, Path(min_length=1, max_length=32)],
    caller: AdminKey,
    site_id: SiteId,
    state: State,
) -> dict[str, Any]:
    def write(session: Session) -> str:
        return retry_delivery(session, site_id, delivery_id, actor=caller.actor)

    # Beat's retry_webhooks sends it later should the broker be away now.
    sent = await in_session(
        state, write, after_commit=lambda d: enqueue_webhooks(state.enqueue.app, [d])
    )
    return {"delivery_id": sent, "status": "pending"}
