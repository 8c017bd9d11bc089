"""Webhooks to site backends: configure them, record events to send, sign and verify.

Sending is service/webhooks/delivery.py's job.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import InvalidInput
from service.core.tables import AuditEntry, Site, WebhookDelivery, new_id, utcnow
from service.sites.sites import get_site
from service.webhooks.outbound import Unresolvable, parse_networks, refusal, resolve

__all__ = [
    "COMMENT_DECIDED",
    "COMMENT_REVIEWED",
    "MIN_SECRET_LENGTH",
    "DeliveryStatus",
    "WebhookConfig",
    "check_webhook_url",
    "get_webhook",
    "record_event",
    "record_site_event",
    "remove_webhook",
    "set_webhook",
    "sign",
    "signed_headers",
    "verify",
]

log = structlog.get_logger(__name__)

COMMENT_DECIDED = "comment.decided"
COMMENT_REVIEWED = "comment.reviewed"
MIN_SECRET_LENGTH = 16
SIGNATURE_VERSION = "v1"
USER_AGENT = "moderation-webhooks/1"
WEBHOOK_REMOVED = "the site's webhook was removed"
OWN_SERVICE = (
    "the webhook URL points at this moderation service itself; give the site backend's URL"
)
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class DeliveryStatus:
    PENDING = "pending"
    SENDING = "sending"  # leased by one worker until `lease_until`
    DELIVERED = "delivered"
    FAILED = "failed"
    ALL = ("pending", "sending", "delivered", "failed")


# --- signing ---------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `"{timestamp}." + body`: the timestamp is signed too, so an
    old delivery cannot be replayed with a fresh one."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    signature: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance_seconds: float = 300,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is within tolerance."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_seconds:
        return False
    expected = sign(secret, sent_at, body)
    # Several comma-separated signatures are allowed, for a receiver rotating its secret.
    return any(hmac.compare_digest(expected, part.strip()) for part in signature.split(","))


def signed_headers(
    secret: str, body: bytes, *, event: str, delivery_id: str, timestamp: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Moderation-Event": event,
        "X-Moderation-Delivery": delivery_id,
        "X-Moderation-Timestamp": str(timestamp),
        "X-Moderation-Signature": sign(secret, timestamp, body),
    }


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookConfig:
    site: str
    url: str | None
    secret_set: bool
    secret: str | None = None  # only when this call generated it: shown once


def _is_local_host(host: str) -> bool:
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _check_destination(
    host: str, port: int, *, api_port: int, allowed_networks: Sequence[str]
) -> None:
    """Refuse a host that does not resolve, or resolves to an address webhooks may not reach."""
    try:
        addresses = resolve(host, port)
    except Unresolvable:
        raise InvalidInput(f"the webhook URL's host {host} does not resolve", field="url") from None
    allowed = parse_networks(allowed_networks)
    for address in addresses:
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        target = mapped or address
        if port == api_port and (target.is_loopback or target.is_unspecified):
            raise InvalidInput(OWN_SERVICE, field="url")
        reason = refusal(address, allowed=allowed)
        if reason is not None:
            raise InvalidInput(
                f"the webhook URL resolves to {address}, {reason}; set "
                "MODERATION_WEBHOOK_ALLOWED_NETWORKS to allow it",
                field="url",
            )


def check_webhook_url(
    url: str,
    *,
    service_origins: Collection[tuple[str, int]],
    api_port: int,
    allowed_networks: Sequence[str] = (),
) -> str:
    """The URL, stripped, if it is http(s) with a host, does not point at this service, and
    its host resolves only to addresses webhooks may reach (service/webhooks/outbound.py).

    `service_origins` are (host, port) pairs the service answers on (the request's own base
    URL, the configured API host); a loopback host on the API's port is this service too.
    Posting events to ourselves would only make a loop of failed deliveries. Delivery checks
    the address again at every attempt: a name may resolve elsewhere later.
    """
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("the webhook URL must start with http:// or https://", field="url")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise InvalidInput("the webhook URL has no host", field="url")
    if parts.username is not None or parts.password is not None:
        # Requests are signed, and the URL is shown to moderators with each delivery.
        raise InvalidInput("the webhook URL must not contain a user name or password", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("the webhook URL has an invalid port", field="url") from None
    own = {(h.lower().rstrip("."), p) for h, p in service_origins}
    if (host, port) in own or (_is_local_host(host) and port == api_port):
        raise InvalidInput(OWN_SERVICE, field="url")
    _check_destination(host, port, api_port=api_port, allowed_networks=allowed_networks)
    return url


def set_webhook(
    session: Session,
    site_name: str,
    *,
    url: str,
    secret: str | None,
    actor: str,
    service_origins: Collection[tuple[str, int]],
    api_port: int,
    allowed_networks: Sequence[str] = (),
) -> WebhookConfig:
    """Set a site's webhook. Without a secret the current one is kept, or one is generated
    (returned this once) if the site has none; a URL change must not break the receiver's
    verification."""
    site = get_site(session, site_name)
    checked = check_webhook_url(
        url, service_origins=service_origins, api_port=api_port, allowed_networks=allowed_networks
    )
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise InvalidInput(
            f"the secret must be at least {MIN_SECRET_LENGTH} characters", field="secret"
        )
    generated = None
    if secret is None and site.webhook_secret is None:
        generated = secret = secrets.token_urlsafe(32)
    secret_changed = secret is not None and secret != site.webhook_secret
    site.webhook_url = checked
    if secret is not None:
        site.webhook_secret = secret
    session.add(
        AuditEntry(
            site_id=site.id,
            actor=actor,
            event="webhook.updated",
            data={"url": checked, "secret_changed": secret_changed},
        )
    )
    session.flush()
    return WebhookConfig(site.name, checked, True, generated)


def get_webhook(session: Session, site_name: str) -> WebhookConfig:
    site = get_site(session, site_name)
    return WebhookConfig(site.name, site.webhook_url, site.webhook_secret is not None)


def remove_webhook(session: Session, site_name: str, *, actor: str) -> None:
    """Stop sending; deliveries still queued fail at their next attempt."""
    site = get_site(session, site_name)
    if site.webhook_url is None and site.webhook_secret is None:
        return
    session.add(
        AuditEntry(
            site_id=site.id, actor=actor, event="webhook.removed", data={"url": site.webhook_url}
        )
    )
    site.webhook_url = site.webhook_secret = None
    session.flush()


# --- recording events ------------------------------------------------------------------------


def record_event(
    session: Session,
    *,
    site_id: int,
    url: str,
    event: str,
    comment_id: str | None,
    data: dict[str, Any],
    site_name: str | None = None,
) -> str:
    """Store one delivery, due now, and return its id; the caller enqueues it after commit.

    `data` is the event's content, merged into the payload next to `id`, `event`,
    `created_at` and `site`: `{"comment": {...}}` for comment.decided, plus `"review"`
    (action, reason, note, actor, at) for comment.reviewed.
    """
    if site_name is None:
        site_name = session.scalar(select(Site.name).where(Site.id == site_id))
    delivery_id = new_id()
    now = utcnow()
    payload = {
        "id": delivery_id,
        "event": event,
        "created_at": now.isoformat(),
        "site": site_name,
        **data,
    }
    session.add(
        WebhookDelivery(
            id=delivery_id,
            site_id=site_id,
            comment_id=comment_id,
            event=event,
            payload=payload,
            url=url,
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return delivery_id


def record_site_event(
    session: Session, *, site_id: int, event: str, comment_id: str | None, data: dict[str, Any]
) -> str | None:
    """Record the event if the site has a webhook; the delivery id, or None."""
    row = session.execute(select(Site.webhook_url, Site.name).where(Site.id == site_id)).first()
    if row is None or row.webhook_url is None:
        return None
    return record_event(
        session,
        site_id=site_id,
        url=row.webhook_url,
        event=event,
        comment_id=comment_id,
        data=data,
        site_name=row.name,
    )
