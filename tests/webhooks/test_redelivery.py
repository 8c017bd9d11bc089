"""Sending a failed delivery again: due now under the same id, then delivered by a worker."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.errors import Conflict, NotFound
from service.core.tables import AuditEntry, Site, WebhookDelivery
from service.sites.keys import get_or_create_site
from service.webhooks.config import COMMENT_DECIDED, DeliveryStatus, record_event
from service.webhooks.delivery import RetryPolicy, attempt_delivery
from service.webhooks.redelivery import retry_delivery

URL = "http://127.0.0.1:9/hooks/moderation"
POLICY = RetryPolicy(timeout_seconds=1, allowed_networks=("127.0.0.0/8",))


def _failed_delivery(sessions: sessionmaker[Session], site: str = "news") -> tuple[int, str]:
    with session_scope(sessions) as session:
        row = get_or_create_site(session, site)
        row.webhook_url, row.webhook_secret = URL, "s3cret-s3cret-s3cret"
        site_id = row.id
        delivery_id = record_event(
            session, site_id=site_id, url=URL, event=COMMENT_DECIDED, comment_id="c1", data={}
        )
        session.flush()
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(status=DeliveryStatus.FAILED, attempts=3, last_error="connection refused")
        )
    return site_id, delivery_id


def test_a_failed_delivery_is_due_again_and_a_worker_delivers_it(
    sessions: sessionmaker[Session],
) -> None:
    site_id, delivery_id = _failed_delivery(sessions)
    with session_scope(sessions) as session:
        assert retry_delivery(session, site_id, delivery_id, actor="admin") == delivery_id
    seen: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(receive))
    result = attempt_delivery(sessions, delivery_id, client=client, policy=POLICY)
    assert result is not None and (result.status, result.number) == ("delivered", 4)
    assert [r.headers["X-Moderation-Delivery"] for r in seen] == [delivery_id]
    with session_scope(sessions) as session:
        (entry,) = session.scalars(select(AuditEntry)).all()
    assert (entry.event, entry.actor, entry.data) == (
        "webhook.retried",
        "admin",
        {"delivery_id": delivery_id},
    )


def test_only_a_failed_delivery_of_the_sites_own_with_a_webhook_is_sent_again(
    sessions: sessionmaker[Session],
) -> None:
    site_id, delivery_id = _failed_delivery(sessions)
    with session_scope(sessions) as session:
        other_id = get_or_create_site(session, "other").id
    with pytest.raises(NotFound), session_scope(sessions) as session:
        retry_delivery(session, other_id, delivery_id, actor="admin")
    with pytest.raises(NotFound), session_scope(sessions) as session:
        retry_delivery(session, site_id, "nope", actor="admin")
    with session_scope(sessions) as session:
        retry_delivery(session, site_id, delivery_id, actor="admin")
    with pytest.raises(Conflict) as pending, session_scope(sessions) as session:
        retry_delivery(session, site_id, delivery_id, actor="admin")
    assert "is pending" in pending.value.detail
    _, removed_id = _failed_delivery(sessions)
    with session_scope(sessions) as session:
        session.execute(update(Site).values(webhook_url=None, webhook_secret=None))
    with pytest.raises(Conflict) as removed, session_scope(sessions) as session:
        retry_delivery(session, site_id, removed_id, actor="admin")
    assert removed.value.field == "url"
    with session_scope(sessions) as session:
        status = session.scalar(
            select(WebhookDelivery.status).where(WebhookDelivery.id == removed_id)
        )
    assert status == DeliveryStatus.FAILED
