"""The admin console's keys, webhook and models pages without a browser: who may see them, that
each change goes through the API's functions (and their refusals), and that secrets show once."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from classifier import save_model
from classifier.artifact import artifact_identity
from service.core.broker import DELIVER_WEBHOOK, RETRAIN
from service.core.db import session_scope
from service.core.tables import ApiKey, Label, Site, TrainingJob, WebhookDelivery, utcnow
from service.models.registry import active_version, ensure_registered, register_version
from service.sites.coral import coral_signing_secret_set
from service.sites.keys import authenticate, create_key
from service.webhooks.config import COMMENT_DECIDED, DeliveryStatus, get_webhook, record_event
from tests.factories import tiny_model
from tests.web.conftest import SentTasks, csrf_of, sign_in
from tests.web.conftest import Site as SiteFixture

KEYS = "/moderate/admin/keys"
WEBHOOK = "/moderate/admin/webhook"
MODELS = "/moderate/admin/models"
# A literal public address: accepted by the outbound checks without a DNS look-up, never sent to.
PUBLIC_URL = "https://93.184.215.14/hooks/moderation"


def _admin(site: SiteFixture, browser: TestClient) -> str:
    return sign_in(browser, site.keys["news-site_admin"])


def _shown_secret(html: str) -> str:
    found = re.search(r'id="new-secret" class="secret" value="([^"]+)"', html)
    assert found, "the page shows the new secret"
    return found.group(1)


def _key(site: SiteFixture, prefix: str) -> ApiKey:
    with site.sessions() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        assert key is not None
        return key


def _works(site: SiteFixture, plain: str) -> bool:
    with site.sessions() as session:
        try:
            authenticate(session, plain)
        except Exception:
            return False
    return True


def _new_key(site: SiteFixture, site_name: str, role: str) -> str:
    with session_scope(site.sessions) as session:
        return create_key(session, site_name=site_name, role=role, name=f"extra {role}")[1]


def test_each_page_is_for_site_admins_and_a_moderator_is_refused(
    site: SiteFixture, browser: TestClient
) -> None:
    token = sign_in(browser, site.keys["news-moderator"])
    for path in (KEYS, WEBHOOK, MODELS):
        refused = browser.get(path)
        assert refused.status_code == 403, path
        assert "for site admin and operator keys" in refused.text
    for path, data in (
        (KEYS, {"name": "x", "role": "moderator"}),
        (WEBHOOK, {"url": PUBLIC_URL}),
        (f"{MODELS}/retrain", {}),
    ):
        assert browser.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    with site.sessions() as session:
        assert session.scalar(select(ApiKey).where(ApiKey.name == "x")) is None
        assert get_webhook(session, "news").url is None

    _admin(site, browser)
    home = browser.get("/moderate/admin").text
    for path in (KEYS, WEBHOOK, MODELS):
        assert f'href="{path}"' in home
        assert browser.get(path).status_code == 200, path


def test_a_created_key_is_shown_once_and_works(
    site: SiteFixture, browser: TestClient, app: FastAPI
) -> None:
    token = _admin(site, browser)
    created = browser.post(
        KEYS, data={"csrf_token": token, "name": "night shift", "role": "moderator"}
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    plain = _shown_secret(created.text)
    assert "shown on this page only" in created.text and "Ctrl</kbd>+<kbd>C" in created.text
    listing = browser.get(KEYS).text
    assert f'data-prefix="{plain[:10]}"' in listing and "night shift" in listing
    assert plain not in listing, "only the prefix is ever listed"
    key = _key(site, plain[:10])
    assert (key.role, key.name, key.site.name) == ("moderator", "night shift", "news")
    with TestClient(app, follow_redirects=False) as other:
        sign_in(other, plain)  # the new key signs in: it is a real key of the site
        assert other.get("/moderate").status_code == 200


def test_a_key_the_console_may_not_issue_is_refused_by_name(
    site: SiteFixture, browser: TestClient
) -> None:
    token = _admin(site, browser)
    before = len(browser.get(KEYS).text)
    for data, field in (
        ({"name": "root", "role": "operator"}, "role"),
        ({"name": "x" * 101, "role": "submitter"}, "name"),
    ):
        refused = browser.post(KEYS, data={"csrf_token": token, **data})
        assert refused.status_code == 422, data
        assert f'<a href="#f-{field}"><code>{field}</code></a>' in refused.text
        assert 'aria-invalid="true"' in refused.text
    with site.sessions() as session:
        assert session.scalar(select(ApiKey).where(ApiKey.name == "root")) is None
    assert len(browser.get(KEYS).text) == before


def test_revoking_asks_first_then_the_key_stops_working(
    site: SiteFixture, browser: TestClient, app: FastAPI
) -> None:
    plain = site.keys["news-submitter"]
    token = _admin(site, browser)
    url = f"{KEYS}/{plain[:10]}/revoke"
    asked = browser.post(url, data={"csrf_token": token})
    assert asked.status_code == 200
    assert f"Revoke key {plain[:10]}?" in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert _works(site, plain), "asking changes nothing"
    done = browser.post(url, data={"csrf_token": csrf_of(asked.text), "confirmed": "yes"})
    assert done.status_code == 303 and done.headers["location"] == f"{KEYS}?done=revoked"
    assert not _works(site, plain)
    listing = browser.get(done.headers["location"]).text
    assert "Revoked: the key no longer works." in listing
    row = re.search(rf'<tr data-prefix="{plain[:10]}" class="revoked">.*?</tr>', listing, re.S)
    assert row and "/rotate" not in row.group(0), "a revoked key has nothing left to change"


def test_rotating_shows_the_new_key_and_keeps_the_old_one_for_the_grace_period(
    site: SiteFixture, browser: TestClient
) -> None:
    old = site.keys["news-submitter"]
    token = _admin(site, browser)
    url = f"{KEYS}/{old[:10]}/rotate"
    refused = browser.post(url, data={"csrf_token": token, "grace_seconds": "soon"})
    assert refused.status_code == 422
    assert "grace seconds must be a whole number from 0 to 604,800" in refused.text
    assert _key(site, old[:10]).revoked_at is None

    rotated = browser.post(url, data={"csrf_token": token, "grace_seconds": "600"})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new = _shown_secret(rotated.text)
    assert new != old and "keeps working for 600 seconds more" in rotated.text
    assert _works(site, old) and _works(site, new)
    revoked_at = _key(site, old[:10]).revoked_at
    assert revoked_at is not None
    left = revoked_at.replace(tzinfo=utcnow().tzinfo) - utcnow()
    assert timedelta(seconds=590) < left <= timedelta(seconds=600)
    assert (_key(site, new[:10]).role, _key(site, new[:10]).name) == (
        "submitter",
        "submitter of news",
    )
    assert "works until" in browser.get(KEYS).text


def test_another_sites_key_or_an_operator_key_is_refused_and_nothing_changes(
    site: SiteFixture, browser: TestClient
) -> None:
    operator = _new_key(site, "news", "operator")
    foreign = site.keys["other-moderator"]
    token = _admin(site, browser)
    listing = browser.get(KEYS).text
    assert operator[:10] not in listing and foreign[:10] not in listing
    for plain in (operator, foreign):
        for action in ("revoke", "rotate"):
            data = {"csrf_token": token, "confirmed": "yes"}
            refused = browser.post(f"{KEYS}/{plain[:10]}/{action}", data=data)
            assert refused.status_code == 404, (plain, action)
            assert "Nothing was changed" in refused.text
            assert f"no key starts with &#39;{plain[:10]}&#39;" in refused.text
        assert _works(site, plain) and _key(site, plain[:10]).revoked_at is None


def test_a_loopback_webhook_is_refused_with_the_reason_and_a_public_one_saved(
    site: SiteFixture, browser: TestClient
) -> None:
    token = _admin(site, browser)
    refused = browser.post(WEBHOOK, data={"csrf_token": token, "url": "http://127.0.0.1:9000/x"})
    assert refused.status_code == 422
    assert "resolves to 127.0.0.1" in refused.text
    assert "MODERATION_WEBHOOK_ALLOWED_NETWORKS" in refused.text
    assert 'value="http://127.0.0.1:9000/x"' in refused.text, "what was typed stays"
    assert 'id="f-url"' in refused.text and 'aria-invalid="true"' in refused.text
    with site.sessions() as session:
        assert get_webhook(session, "news").url is None

    saved = browser.post(WEBHOOK, data={"csrf_token": token, "url": PUBLIC_URL})
    assert saved.status_code == 200, "the first URL comes with a secret, shown once"
    assert saved.headers["cache-control"] == "no-store"
    secret = _shown_secret(saved.text)
    with site.sessions() as session:
        config = get_webhook(session, "news")
        stored = session.scalar(select(Site.webhook_secret).where(Site.name == "news"))
    assert (config.url, stored) == (PUBLIC_URL, secret)
    moved = browser.post(WEBHOOK, data={"csrf_token": token, "url": PUBLIC_URL + "/v2"})
    assert moved.status_code == 303 and moved.headers["location"] == f"{WEBHOOK}?done=saved#webhook"
    page = browser.get(WEBHOOK).text
    assert f"<code>{PUBLIC_URL}/v2</code>" in page and secret not in page


def test_the_webhook_secret_rotates_after_a_confirmation_and_the_webhook_is_removed(
    site: SiteFixture, browser: TestClient
) -> None:
    token = _admin(site, browser)
    first = _shown_secret(browser.post(WEBHOOK, data={"csrf_token": token, "url": PUBLIC_URL}).text)
    asked = browser.post(f"{WEBHOOK}/secret", data={"csrf_token": token})
    assert asked.status_code == 200 and "Rotate the webhook" in asked.text
    rotated = browser.post(f"{WEBHOOK}/secret", data={"csrf_token": token, "confirmed": "yes"})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    second = _shown_secret(rotated.text)
    with site.sessions() as session:
        stored = session.scalar(select(Site.webhook_secret).where(Site.name == "news"))
    assert second != first and stored == second

    removed = browser.post(f"{WEBHOOK}/remove", data={"csrf_token": token, "confirmed": "yes"})
    assert removed.status_code == 303
    with site.sessions() as session:
        assert get_webhook(session, "news").url is None
    again = browser.post(f"{WEBHOOK}/secret", data={"csrf_token": token, "confirmed": "yes"})
    assert again.status_code == 422 and "no webhook URL yet" in again.text


def test_corals_signing_secret_is_checked_saved_and_removed(
    site: SiteFixture, browser: TestClient
) -> None:
    token = _admin(site, browser)
    short = browser.post(f"{WEBHOOK}/coral", data={"csrf_token": token, "signing_secret": "abc"})
    assert short.status_code == 422 and "16 to 200 characters" in short.text
    assert 'id="f-signing_secret"' in short.text and 'aria-invalid="true"' in short.text
    secret = "coral-signing-secret-0123"
    saved = browser.post(f"{WEBHOOK}/coral", data={"csrf_token": token, "signing_secret": secret})
    assert saved.status_code == 303
    page = browser.get(WEBHOOK).text
    assert "set (never shown again)" in page and secret not in page
    removed = browser.post(
        f"{WEBHOOK}/coral/remove", data={"csrf_token": token, "confirmed": "yes"}
    )
    assert removed.status_code == 303
    with site.sessions() as session:
        assert not coral_signing_secret_set(session, "news")


def _failed_delivery(site: SiteFixture, site_name: str) -> str:
    with session_scope(site.sessions) as session:
        row = session.scalar(select(Site).where(Site.name == site_name))
        assert row is not None
        row.webhook_url, row.webhook_secret = PUBLIC_URL, "s3cret-s3cret-s3cret"
        delivery_id = record_event(
            session, site_id=row.id, url=PUBLIC_URL, event=COMMENT_DECIDED, comment_id=None, data={}
        )
        session.flush()
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(status=DeliveryStatus.FAILED, attempts=7, last_status_code=503, last_error=None)
        )
    return delivery_id


def test_the_delivery_log_lists_deliveries_and_sends_a_failed_one_again(
    site: SiteFixture, browser: TestClient, sent: SentTasks
) -> None:
    ours = _failed_delivery(site, "news")
    theirs = _failed_delivery(site, "other")
    token = _admin(site, browser)
    page = browser.get(WEBHOOK).text
    row = re.search(rf'<tr data-delivery="{ours}" class="delivery-failed">.*?</tr>', page, re.S)
    assert row, "the site's delivery is listed"
    assert "HTTP 503" in row.group(0) and "<td>7</td>" in row.group(0)
    assert "Send again" in row.group(0)
    assert theirs not in page, "another site's deliveries are not"

    retried = browser.post(f"{WEBHOOK}/deliveries/{ours}/retry", data={"csrf_token": token})
    assert retried.status_code == 303
    assert sent == [(DELIVER_WEBHOOK, [ours])], "enqueued after the commit"
    with site.sessions() as session:
        assert session.get(WebhookDelivery, ours).status == DeliveryStatus.PENDING  # type: ignore[union-attr]
    refused = browser.post(f"{WEBHOOK}/deliveries/{theirs}/retry", data={"csrf_token": token})
    assert refused.status_code == 404 and "no webhook delivery" in refused.text
    again = browser.post(f"{WEBHOOK}/deliveries/{ours}/retry", data={"csrf_token": token})
    assert again.status_code == 409 and "only a failed delivery is sent again" in again.text
    assert len(sent) == 1


@pytest.fixture
def registry(site: SiteFixture, model_dir: Path, tmp_path: Path) -> tuple[str, str]:
    """The active model and a candidate beside it."""
    candidate_dir = save_model(tiny_model(1), tmp_path / "candidate")
    with session_scope(site.sessions) as session:
        active = ensure_registered(session, model_dir)
        register_version(session, candidate_dir, created_by="retrain job j1", parent=active)
    return active, artifact_identity(candidate_dir)[0]


def _add_label(site: SiteFixture) -> None:
    with session_scope(site.sessions) as session:
        site_id = session.scalar(select(Site.id).where(Site.name == "news"))
        assert site_id is not None
        session.add(Label(site_id=site_id, source="import", text="you idiot", labels={"toxic": 1}))


def test_the_models_page_lists_versions_and_retraining_starts_as_the_functions_decide(
    site: SiteFixture, browser: TestClient, sent: SentTasks, registry: tuple[str, str]
) -> None:
    active, candidate = registry
    token = _admin(site, browser)
    page = browser.get(MODELS).text
    assert f'<code id="active-version">{active}</code>' in page
    assert f'data-version="{candidate}"' in page
    assert "take an operator key" in page and "/promote" not in page

    refused = browser.post(f"{MODELS}/retrain", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "has no labels" in refused.text and "Nothing was changed" in refused.text
    assert sent == []

    _add_label(site)
    started = browser.post(f"{MODELS}/retrain", data={"csrf_token": token})
    assert started.status_code == 303
    assert started.headers["location"] == f"{MODELS}?done=started#jobs"
    ((name, (job_id,)),) = sent
    assert name == RETRAIN
    page = browser.get(started.headers["location"]).text
    assert f'data-job-url="/moderate/admin/models/jobs/{job_id}"' in page
    assert 'id="job-refresh"' in page, "without the script, a link refreshes the bar"
    status = browser.get(f"{MODELS}/jobs/{job_id}", headers={"Accept": "application/json"})
    assert status.status_code == 200
    assert (status.json()["status"], status.json()["percent"]) == ("queued", 0)

    busy = browser.post(f"{MODELS}/retrain", data={"csrf_token": token})
    assert busy.status_code == 409 and "one job runs at a time" in busy.text
    with site.sessions() as session:
        assert len(session.scalars(select(TrainingJob)).all()) == 1


def test_promotion_and_rollback_take_an_operator_key_and_a_reason(
    site: SiteFixture, browser: TestClient, app: FastAPI, registry: tuple[str, str]
) -> None:
    active, candidate = registry
    token = _admin(site, browser)
    url = f"{MODELS}/{candidate}/promote"
    denied = browser.post(url, data={"csrf_token": token, "reason": "better"})
    assert denied.status_code == 403 and "take an operator key" in denied.text

    with TestClient(app, follow_redirects=False) as operator:
        token = sign_in(operator, _new_key(site, "news", "operator"))
        assert f'action="{url}"' in operator.get(MODELS).text
        blank = operator.post(url, data={"csrf_token": token, "reason": " "})
        assert blank.status_code == 422 and "give a reason" in blank.text
        promoted = operator.post(url, data={"csrf_token": token, "reason": "better on news"})
        assert promoted.status_code == 303
        twice = operator.post(url, data={"csrf_token": token, "reason": "again"})
        assert twice.status_code == 409 and "is already active" in twice.text
        with site.sessions() as session:
            assert active_version(session) == candidate
        back = operator.post(f"{MODELS}/rollback", data={"csrf_token": token, "reason": "worse"})
        assert back.status_code == 303
        page = operator.get(MODELS).text
        assert "better on news" in page and "worse" in page, "the moves say who and why"
    with site.sessions() as session:
        assert active_version(session) == active


def test_posts_without_the_csrf_token_change_nothing(
    site: SiteFixture, browser: TestClient
) -> None:
    _admin(site, browser)
    plain = site.keys["news-submitter"]
    for path, data in (
        (KEYS, {"name": "x", "role": "moderator"}),
        (f"{KEYS}/{plain[:10]}/revoke", {"confirmed": "yes"}),
        (WEBHOOK, {"url": PUBLIC_URL}),
        (f"{WEBHOOK}/coral", {"signing_secret": "coral-signing-secret-0123"}),
        (f"{MODELS}/retrain", {}),
    ):
        assert browser.post(path, data=data).status_code == 403, path
    assert _works(site, plain)
    with site.sessions() as session:
        assert get_webhook(session, "news").url is None
        assert not coral_signing_secret_set(session, "news")
