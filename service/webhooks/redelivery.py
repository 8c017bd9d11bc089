"""Sending a failed webhook delivery again when a site admin asks, under the same delivery id."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.core.audit import audit_site
from service.core.errors import Conflict, NotFound
from service.core.tables import Site, WebhookDelivery, utcnow
from service.webhooks.config import DeliveryStatus

__all__ = ["retry_delivery"]


def retry_delivery(session: Session, site_id: int, delivery_id: str, *, actor: str) -> str:
    """Make a failed delivery of the site due now, and return its id for the caller to enqueue
    once committed.

    The id stays the same, so a receiver that did process an attempt we saw time out drops
    the copy (it de-duplicates on `X-Moderation-Delivery`). The attempt sends to the site's
    current URL with its current secret, as every attempt does. The 24-hour limit on
    retries still counts from the delivery's creation: an older one gets this one attempt.
    """
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    # Another site's delivery is answered as unknown: a site learns nothing of others' ids.
    if delivery is None or delivery.site_id != site_id:
        raise NotFound(f"no webhook delivery {delivery_id!r}", field="delivery_id")
    if delivery.status != DeliveryStatus.FAILED:
        raise Conflict(
            f"delivery {delivery_id} is {delivery.status}: only a failed delivery is sent again",
            field="delivery_id",
        )
    site = session.get_one(Site, site_id)
    if site.webhook_url is None or site.webhook_secret is None:
        raise Conflict(
            "the site has no webhook any more: set its URL before sending a delivery again",
            field="url",
        )
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = utcnow()
    delivery.lease_until = None  # not queued yet: the caller enqueues it after the commit
    audit_site(session, site_id, actor, "webhook.retried", {"delivery_id": delivery_id})
    session.flush()
    return delivery.id
