"""POST /v1/webhooks/deliveries/{id}/retry through the running API: a site admin sends a failed
delivery again, a moderator may not, and only a failed delivery of the key's own site goes."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from service.core.db import session_scope
from service.core.tables import Site, WebhookDelivery
from service.webhooks.config import COMMENT_DECIDED, DeliveryStatus, record_event
from tests.stack import Stack, StackSpec

pytestmark = pytest.mark.integration
STACK = StackSpec(env={"MODERATION_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]'})

URL = "http://127.0.0.1:9/hooks/moderation"


def _delivery(stack: Stack, status: str) -> str:
    with stack.client("news-site_admin") as admin:  # the secret is sealed with the API's key
        assert admin.put("/v1/sites/news/webhook", json={"url": URL}).is_success
    with session_scope(stack.sessions) as session:
        site = session.scalars(select(Site).where(Site.name == "news")).one()
        delivery_id = record_event(
            session, site_id=site.id, url=URL, event=COMMENT_DECIDED, comment_id="c1", data={}
        )
        session.flush()
        session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(status=status)
        )
    return delivery_id


def test_a_site_admin_sends_a_failed_delivery_again(stack: Stack) -> None:
    failed = _delivery(stack, DeliveryStatus.FAILED)
    path = f"/v1/webhooks/deliveries/{failed}/retry"
    with stack.client("news-moderator") as moderator:
        assert moderator.post(path).status_code == 403
    with stack.client("news-site_admin") as admin:
        sent = admin.post(path)
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"delivery_id": failed, "status": "pending"}
        again = admin.post(path)
        assert (again.status_code, again.json()["field"]) == (409, "delivery_id")
        unknown = admin.post("/v1/webhooks/deliveries/nope/retry")
        assert (unknown.status_code, unknown.json()["field"]) == (404, "delivery_id")
    with stack.client("other-submitter") as other:
        assert other.post(path).status_code == 403
