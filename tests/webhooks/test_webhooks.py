"""Webhooks: signing, URL checks, configuration, recording, leasing, backoff and giving up.

The receiver is an httpx mock transport (the true edge); the database is real (SQLite and
PostgreSQL) and the clock is passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.comments.decisions import decide_comments
from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.broker import enqueue_webhooks, make_celery
from service.core.db import session_scope
from service.core.errors import InvalidInput, SiteNotFound
from service.core.settings import Settings
from service.core.tables import AuditEntry, Site, WebhookDelivery, utcnow
from service.sites.keys import get_or_create_site
from service.webhooks.config import (
    COMMENT_DECIDED,
    COMMENT_REVIEWED,
    DeliveryStatus,
    check_webhook_url,
    get_webhook,
    record_event,
    record_site_event,
    remove_webhook,
    set_webhook,
    sign,
    verify,
)
from service.webhooks.delivery import (
    RetryPolicy,
    attempt_delivery,
    backoff_seconds,
    list_deliveries,
)
from service.webhooks.lease import due_deliveries
from tests.factories import THRESHOLDS, WordModel
from tests.stack import free_port

SECRET = "s3cret-s3cret-s3cret"
# On loopback, allowed below: the mock transport answers, but the address policy still runs.
URL = "http://127.0.0.1:9/hooks/moderation"
ALLOWED = ("127.0.0.0/8",)
POLICY = RetryPolicy(
    timeout_seconds=1, backoff_base_seconds=30, backoff_max_seconds=3600, allowed_networks=ALLOWED
)
OWN = [("moderation.example", 443)]

Handler = Callable[[httpx.Request], httpx.Response]


def _receiver(handler: Handler, seen: list[httpx.Request] | None = None) -> httpx.Client:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return handler(request)

    return httpx.Client(transport=httpx.MockTransport(record))


def _answer(status: int) -> Handler:
    return lambda _request: httpx.Response(status)


def _site_with_webhook(sessions: sessionmaker[Session], name: str = "news") -> int:
    with session_scope(sessions) as session:
        site = get_or_create_site(session, name)
        site.webhook_url, site.webhook_secret = URL, SECRET
        return site.id


def _delivery(sessions: sessionmaker[Session], site_id: int, comment_id: str = "c1") -> str:
    with session_scope(sessions) as session:
        return record_event(
            session,
            site_id=site_id,
            url=URL,
            event=COMMENT_DECIDED,
            comment_id=comment_id,
            data={"comment": {"id": comment_id, "status": "approved"}},
        )


def _row(sessions: sessionmaker[Session], delivery_id: str) -> WebhookDelivery:
    with session_scope(sessions) as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


def _at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


# --- signing and backoff (no database) ---------------------------------------------------------


def test_a_signature_verifies_and_tampering_or_a_stale_timestamp_fails() -> None:
    body = b'{"event":"comment.decided"}'
    now = int(time.time())
    signature = sign(SECRET, now, body)
    assert signature.startswith("v1=") and len(signature) == 3 + 64
    assert verify(SECRET, str(now), signature, body, now=now + 299)
    assert verify(SECRET, str(now), f"v1=deadbeef, {signature}", body, now=now), "rotation"
    assert not verify(SECRET, str(now), signature, body + b" ", now=now), "body changed"
    assert not verify("another-secret-16", str(now), signature, body, now=now), "wrong secret"
    assert not verify(SECRET, str(now + 1), signature, body, now=now), "timestamp is signed"
    assert not verify(SECRET, str(now), signature, body, now=now + 301), "a replay, too old"
    assert not verify(SECRET, str(now), signature, body, now=now - 301), "from the future"
    assert not verify(SECRET, "yesterday", signature, body, now=now)


def test_backoff_doubles_from_the_base_up_to_the_cap_less_a_little_jitter() -> None:
    exact = [backoff_seconds(n, base=30, maximum=3600, jitter=0) for n in range(1, 10)]
    assert exact == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_seconds(500, base=30, maximum=3600, jitter=0) == 3600
    jittered = backoff_seconds(3, base=30, maximum=3600, rand=lambda: 1.0)
    assert jittered == pytest.approx(108)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://news.example/hook",
        "javascript:alert(1)",
        "news.example/hook",
        "http:///path-only",
        "https://user:password@news.example/hook",
        "https://news.example:99999/hook",
        "https://moderation.example/v1/hook",  # the address the admin called us on
        "https://MODERATION.example:443/x",
        "http://127.0.0.1:8000/hook",  # loopback on the API's own port
        "http://localhost:8000/",
        "http://0.0.0.0:8000/",
        "http://[::1]:8000/",
        "http://127.0.0.2:8000/",
    ],
)
def test_a_webhook_url_that_is_not_http_or_points_at_the_service_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as error:
        check_webhook_url(url, service_origins=OWN, api_port=8000)
    assert error.value.field == "url"


def test_a_receiver_on_another_port_or_an_allowed_network_is_accepted() -> None:
    allowed = ["127.0.0.0/8", "10.0.0.0/8"]
    for url in ("http://127.0.0.1:9000/hook", "https://93.184.215.14/hook", " http://10.0.0.5/ "):
        checked = check_webhook_url(
            url, service_origins=OWN, api_port=8000, allowed_networks=allowed
        )
        assert checked == url.strip()


# --- configuration -----------------------------------------------------------------------------


def test_a_generated_secret_is_shown_once_and_kept_when_only_the_url_changes(
    sessions: sessionmaker[Session],
) -> None:
    with session_scope(sessions) as session:
        get_or_create_site(session, "news")
    with session_scope(sessions) as session:
        first = set_webhook(
            session,
            "news",
            url=URL,
            secret=None,
            actor="admin key mk_1",
            service_origins=OWN,
            api_port=8000,
            allowed_networks=ALLOWED,
        )
    assert first.secret is not None and len(first.secret) >= 32
    with session_scope(sessions) as session:
        moved = set_webhook(
            session,
            "news",
            url=URL + "/v2",
            secret=None,
            actor="admin key mk_1",
            service_origins=OWN,
            api_port=8000,
            allowed_networks=ALLOWED,
        )
        assert moved.secret is None, "the secret is shown only when it is made"
        assert get_webhook(session, "news").url == URL + "/v2"
        site = session.scalar(select(Site).where(Site.name == "news"))
        assert site is not None and site.webhook_secret == first.secret
        remove_webhook(session, "news", actor="admin key mk_1")
    with session_scope(sessions) as session:
        config = get_webhook(session, "news")
        assert (config.url, config.secret_set) == (None, False)
        audit = session.execute(select(AuditEntry.event, AuditEntry.actor, AuditEntry.data)).all()
    assert [a.event for a in audit] == ["webhook.updated", "webhook.updated", "webhook.removed"]
    assert {a.actor for a in audit} == {"admin key mk_1"}
    assert all(first.secret not in str(a.data) for a in audit), "the audit never holds a secret"


def test_a_refused_url_or_short_secret_changes_nothing(sessions: sessionmaker[Session]) -> None:
    _site_with_webhook(sessions)
    for url, secret, field in (("ftp://x.example", None, "url"), (URL + "/2", "short", "secret")):
        with pytest.raises(InvalidInput) as error, session_scope(sessions) as session:
            set_webhook(
                session,
                "news",
                url=url,
                secret=secret,
                actor="a",
                service_origins=OWN,
                api_port=8000,
                allowed_networks=ALLOWED,
            )
        assert error.value.field == field
    with pytest.raises(SiteNotFound), session_scope(sessions) as session:
        set_webhook(
            session, "nowhere", url=URL, secret=None, actor="a", service_origins=OWN, api_port=8000
        )
    with session_scope(sessions) as session:
        site = session.scalar(select(Site).where(Site.name == "news"))
        assert site is not None and (site.webhook_url, site.webhook_secret) == (URL, SECRET)
        assert session.scalar(select(AuditEntry.id)) is None


# --- recording ---------------------------------------------------------------------------------


def test_deciding_a_comment_records_one_delivery_only_for_sites_with_a_webhook(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site_with_webhook(sessions, "news")
    with session_scope(sessions) as session:
        other_id = get_or_create_site(session, "other").id
        ids = [
            submit_comment(
                session,
                sid,
                CommentIn(external_id=ext, article_id="a", author_id="u", text=text),
                max_text_chars=100,
            ).comment.id
            for sid, ext, text in ((site_id, "n1", "you idiot"), (other_id, "o1", "thanks"))
        ]
    with session_scope(sessions) as session:
        decided = decide_comments(session, ids, WordModel(), default_thresholds=THRESHOLDS)
    by_comment = {d.comment_id: d for d in decided}
    assert by_comment[ids[1]].webhook_delivery_id is None
    delivery_id = by_comment[ids[0]].webhook_delivery_id
    assert delivery_id is not None
    delivery = _row(sessions, delivery_id)
    assert (delivery.status, delivery.url, delivery.comment_id) == ("pending", URL, ids[0])
    payload = delivery.payload
    assert payload["id"] == delivery_id
    assert (payload["event"], payload["site"]) == (COMMENT_DECIDED, "news")
    assert payload["comment"]["id"] == ids[0]
    assert payload["comment"]["external_id"] == "n1"
    assert payload["comment"]["status"] == "held"
    assert payload["comment"]["decision"]["action"] == "hold"
    assert payload["comment"]["decision"]["reasons"]
    with session_scope(sessions) as session:
        assert session.scalars(select(WebhookDelivery.id)).all() == [delivery_id]


def test_a_site_event_is_recorded_only_when_the_site_has_a_webhook(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site_with_webhook(sessions)
    with session_scope(sessions) as session:
        bare_id = get_or_create_site(session, "bare").id
        review = {"action": "reject", "reason": "SPAM", "note": "", "actor": "m", "at": "t"}
        data = {"comment": {"id": "c9", "status": "rejected"}, "review": review}
        assert (
            record_site_event(
                session, site_id=bare_id, event=COMMENT_REVIEWED, comment_id="c9", data=data
            )
            is None
        )
        delivery_id = record_site_event(
            session, site_id=site_id, event=COMMENT_REVIEWED, comment_id="c9", data=data
        )
    assert delivery_id is not None
    payload = _row(sessions, delivery_id).payload
    assert (payload["event"], payload["site"], payload["review"]) == (
        COMMENT_REVIEWED,
        "news",
        review,
    )


# --- delivering --------------------------------------------------------------------------------


def _counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_delivery_is_posted_signed_and_marked_delivered(sessions: sessionmaker[Session]) -> None:
    delivery_id = _delivery(sessions, _site_with_webhook(sessions))
    seen: list[httpx.Request] = []
    delivered = _counted("moderation_webhook_attempts_total", outcome="delivered")
    lags = _counted("moderation_webhook_delivery_lag_seconds_count")
    result = attempt_delivery(
        sessions, delivery_id, client=_receiver(_answer(204), seen), policy=POLICY
    )
    assert result is not None and (result.status, result.status_code) == ("delivered", 204)
    assert _counted("moderation_webhook_attempts_total", outcome="delivered") == delivered + 1
    assert _counted("moderation_webhook_delivery_lag_seconds_count") == lags + 1
    [request] = seen
    assert str(request.url) == URL
    headers = request.headers
    assert headers["X-Moderation-Event"] == COMMENT_DECIDED
    assert headers["X-Moderation-Delivery"] == delivery_id
    assert headers["Content-Type"] == "application/json"
    assert verify(
        SECRET,
        headers["X-Moderation-Timestamp"],
        headers["X-Moderation-Signature"],
        request.content,
    )
    assert orjson.loads(request.content)["id"] == delivery_id
    row = _row(sessions, delivery_id)
    assert (row.status, row.attempts, row.last_status_code, row.lease_until) == (
        "delivered",
        1,
        204,
        None,
    )
    assert row.delivered_at is not None
    assert (
        attempt_delivery(sessions, delivery_id, client=_receiver(_answer(200)), policy=POLICY)
        is None
    ), "a delivered one is never sent again"


def test_a_failed_attempt_is_retried_after_the_backoff_and_not_before(
    sessions: sessionmaker[Session],
) -> None:
    delivery_id = _delivery(sessions, _site_with_webhook(sessions))
    now = utcnow()
    failing = _receiver(_answer(503))
    retries = _counted("moderation_webhook_attempts_total", outcome="retry")
    result = attempt_delivery(sessions, delivery_id, client=failing, policy=POLICY, clock=_at(now))
    assert result is not None and (result.status, result.status_code) == ("pending", 503)
    assert _counted("moderation_webhook_attempts_total", outcome="retry") == retries + 1
    row = _row(sessions, delivery_id)
    wait = (row.next_attempt_at - now).total_seconds()
    assert 27 <= wait <= 30, "the base backoff, less at most 10% jitter"
    assert (
        attempt_delivery(
            sessions,
            delivery_id,
            client=failing,
            policy=POLICY,
            clock=_at(now + timedelta(seconds=10)),
        )
        is None
    )
    later = now + timedelta(seconds=31)
    attempt_delivery(sessions, delivery_id, client=failing, policy=POLICY, clock=_at(later))
    wait = (_row(sessions, delivery_id).next_attempt_at - later).total_seconds()
    assert 54 <= wait <= 60, "doubled"
    seen: list[httpx.Request] = []
    result = attempt_delivery(
        sessions,
        delivery_id,
        client=_receiver(_answer(200), seen),
        policy=POLICY,
        clock=_at(later + timedelta(minutes=2)),
    )
    assert result is not None and result.status == "delivered"
    assert seen[0].headers["X-Moderation-Delivery"] == delivery_id, "the same id each time"
    with session_scope(sessions) as session:
        [record] = list_deliveries(session, _row(sessions, delivery_id).site_id)
    assert [(a.number, a.status_code) for a in record.attempts] == [(1, 503), (2, 503), (3, 200)]


def test_redirects_and_errors_are_retried_but_gone_is_final(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site_with_webhook(sessions)
    outcomes = {}
    for code in (302, 404, 410):  # a redirect is not followed, and is no success
        delivery_id = _delivery(sessions, site_id)
        result = attempt_delivery(
            sessions, delivery_id, client=_receiver(_answer(code)), policy=POLICY
        )
        assert result is not None
        outcomes[code] = (result.status, result.error)
    assert outcomes == {
        302: ("pending", None),
        404: ("pending", None),
        410: ("failed", "the receiver answered 410 Gone"),
    }


def test_an_unreachable_receiver_is_recorded_as_an_error_and_retried(
    sessions: sessionmaker[Session],
) -> None:
    delivery_id = _delivery(sessions, _site_with_webhook(sessions))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result = attempt_delivery(sessions, delivery_id, client=_receiver(refuse), policy=POLICY)
    assert result is not None and result.status == "pending"
    row = _row(sessions, delivery_id)
    assert row.last_status_code is None
    assert row.last_error == "ConnectError: connection refused"


def test_a_delivery_older_than_the_give_up_age_fails_for_good(
    sessions: sessionmaker[Session],
) -> None:
    delivery_id = _delivery(sessions, _site_with_webhook(sessions))
    a_day_later = utcnow() + timedelta(hours=24, seconds=1)
    result = attempt_delivery(
        sessions, delivery_id, client=_receiver(_answer(500)), policy=POLICY, clock=_at(a_day_later)
    )
    assert result is not None and result.status == "failed"
    with session_scope(sessions) as session:
        assert (
            due_deliveries(session, now=a_day_later + timedelta(days=1), requeue_after=POLICY.lease)
            == []
        )


def test_a_removed_webhook_fails_its_queued_deliveries_without_sending(
    sessions: sessionmaker[Session],
) -> None:
    delivery_id = _delivery(sessions, _site_with_webhook(sessions))
    with session_scope(sessions) as session:
        remove_webhook(session, "news", actor="a")
    seen: list[httpx.Request] = []
    result = attempt_delivery(
        sessions, delivery_id, client=_receiver(_answer(200), seen), policy=POLICY
    )
    assert result is not None and result.status == "failed"
    assert seen == []


def test_a_changed_url_and_secret_apply_to_the_next_retry(sessions: sessionmaker[Session]) -> None:
    delivery_id = _delivery(sessions, _site_with_webhook(sessions))
    with session_scope(sessions) as session:
        set_webhook(
            session,
            "news",
            url="http://127.0.0.2:9/fixed",
            secret="n" * 20,
            actor="a",
            service_origins=OWN,
            api_port=8000,
            allowed_networks=ALLOWED,
        )
    seen: list[httpx.Request] = []
    attempt_delivery(sessions, delivery_id, client=_receiver(_answer(200), seen), policy=POLICY)
    [request] = seen
    assert str(request.url) == "http://127.0.0.2:9/fixed"
    assert verify(
        "n" * 20,
        request.headers["X-Moderation-Timestamp"],
        request.headers["X-Moderation-Signature"],
        request.content,
    )
    assert _row(sessions, delivery_id).url == "http://127.0.0.2:9/fixed"


def test_while_one_worker_sends_another_cannot_take_the_same_delivery(
    sessions: sessionmaker[Session],
) -> None:
    delivery_id = _delivery(sessions, _site_with_webhook(sessions))
    inner: list[object] = []

    def slow_receiver(request: httpx.Request) -> httpx.Response:
        # A second worker tries the same delivery while the first one's POST is in flight:
        # the lease is committed, so the database is free, and it is refused.
        inner.append(
            attempt_delivery(sessions, delivery_id, client=_receiver(_answer(200)), policy=POLICY)
        )
        return httpx.Response(200)

    result = attempt_delivery(sessions, delivery_id, client=_receiver(slow_receiver), policy=POLICY)
    assert inner == [None]
    assert result is not None and result.status == "delivered"
    assert _row(sessions, delivery_id).attempts == 1


def test_a_delivery_whose_worker_died_is_found_again_once_its_lease_expires(
    sessions: sessionmaker[Session],
) -> None:
    delivery_id = _delivery(sessions, _site_with_webhook(sessions))
    now = utcnow()

    def die(request: httpx.Request) -> httpx.Response:
        raise SystemExit("worker killed mid-attempt")

    with pytest.raises(SystemExit):
        attempt_delivery(
            sessions, delivery_id, client=_receiver(die), policy=POLICY, clock=_at(now)
        )
    assert _row(sessions, delivery_id).status == "sending"
    with session_scope(sessions) as session:
        assert (
            due_deliveries(session, now=now + timedelta(seconds=5), requeue_after=POLICY.lease)
            == []
        ), "the lease still holds"
    after = now + POLICY.lease + timedelta(seconds=1)
    with session_scope(sessions) as session:
        assert due_deliveries(session, now=after, requeue_after=POLICY.lease) == [delivery_id]
    result = attempt_delivery(
        sessions, delivery_id, client=_receiver(_answer(200)), policy=POLICY, clock=_at(after)
    )
    assert result is not None and (result.number, result.status) == (2, "delivered")


def test_due_deliveries_are_handed_out_once_until_they_are_due_again(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site_with_webhook(sessions)
    first, second = _delivery(sessions, site_id, "c1"), _delivery(sessions, site_id, "c2")
    now = utcnow() + timedelta(seconds=1)
    with session_scope(sessions) as session:
        assert sorted(due_deliveries(session, now=now, requeue_after=POLICY.lease)) == sorted(
            [first, second]
        )
    with session_scope(sessions) as session:
        assert due_deliveries(session, now=now, requeue_after=POLICY.lease) == [], "queued"
    # Queued is no obstacle to the worker that picks the message up.
    result = attempt_delivery(
        sessions, first, client=_receiver(_answer(200)), policy=POLICY, clock=_at(now)
    )
    assert result is not None and result.status == "delivered"
    with session_scope(sessions) as session:
        # The message for the other one was lost: it comes back once the mark runs out.
        later = now + POLICY.lease + timedelta(seconds=1)
        assert due_deliveries(session, now=later, requeue_after=POLICY.lease) == [second]


def test_deliveries_are_listed_newest_first_filtered_by_comment_and_status(
    sessions: sessionmaker[Session],
) -> None:
    site_id = _site_with_webhook(sessions)
    first = _delivery(sessions, site_id, "c1")
    time.sleep(0.01)
    second = _delivery(sessions, site_id, "c2")
    attempt_delivery(sessions, first, client=_receiver(_answer(200)), policy=POLICY)
    other_site = _site_with_webhook(sessions, "other")
    _delivery(sessions, other_site, "c3")
    with session_scope(sessions) as session:
        assert [r.delivery.id for r in list_deliveries(session, site_id)] == [second, first]
        [record] = list_deliveries(session, site_id, comment_id="c1")
        assert record.delivery.id == first and len(record.attempts) == 1
        pending = list_deliveries(session, site_id, status=DeliveryStatus.PENDING)
        assert [r.delivery.id for r in pending] == [second]
        assert len(list_deliveries(session, site_id, limit=1)) == 1


def test_enqueueing_deliveries_with_redis_down_returns_instead_of_raising() -> None:
    app = make_celery(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    assert enqueue_webhooks(app, ["a", "b", "c"]) == 0
    assert time.monotonic() - started < 5, "one failed try, not one per delivery"
