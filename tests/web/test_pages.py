"""The moderator pages without a browser: sign-in, CSRF, escaping, reviews, the other pages."""

from __future__ import annotations

import re
import stat
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from service.core.broker import DELIVER_WEBHOOK
from service.core.db import session_scope
from service.core.settings import Settings
from service.core.tables import WebhookDelivery
from service.sites.keys import get_or_create_site, revoke_key
from service.web.auth import COOKIE_NAME, load_secret
from service.web.deps import safe_next
from service.web.render import highlight
from tests.web.conftest import SentTasks, Site, csrf_of, sign_in


def _order(html: str) -> list[str]:
    return re.findall(r'<li class="item" id="c-([0-9a-f]+)"', html)


def test_pages_redirect_to_sign_in_without_a_session(browser: TestClient) -> None:
    response = browser.get("/moderate?article=x")
    assert response.status_code == 303
    assert response.headers["location"] == "/moderate/login?next=%2Fmoderate%3Farticle%3Dx"


def test_sign_in_with_an_unknown_key_shows_an_error(browser: TestClient) -> None:
    token = csrf_of(browser.get("/moderate/login").text)
    response = browser.post("/moderate/login", data={"key": "mk_nope", "csrf_token": token})
    assert response.status_code == 401
    assert "unknown or revoked API key" in response.text
    assert browser.get("/moderate").status_code == 303


def test_sign_in_is_throttled_after_repeated_failures_even_for_a_good_key(
    site: Site, browser: TestClient
) -> None:
    token = csrf_of(browser.get("/moderate/login").text)
    for _ in range(30):  # the default: 30 failures a minute from one address
        wrong = browser.post("/moderate/login", data={"key": "mk_guess", "csrf_token": token})
        assert wrong.status_code == 401
    good = {"key": site.keys["news-moderator"], "csrf_token": token}
    throttled = browser.post("/moderate/login", data=good)
    assert throttled.status_code == 429
    assert "too many failed authentications" in throttled.text
    assert browser.get("/moderate").status_code == 303, "not signed in"


def test_the_session_cookie_is_secure_when_the_public_url_is_https(
    site: Site, app: FastAPI, browser: TestClient
) -> None:
    plain = browser.get("/moderate/login").headers["set-cookie"]
    assert "secure" not in plain.lower(), "plain http, no public URL: a local test setup"
    # Behind a TLS proxy the request arrives as http; the public URL says what the browser sees.
    behind_proxy = site.settings.model_copy(update={"public_url": "https://moderation.example"})
    app.state.moderation.settings = behind_proxy
    browser.cookies.clear()
    assert "secure" in browser.get("/moderate/login").headers["set-cookie"].lower()


def test_a_submitter_key_may_not_sign_in(site: Site, browser: TestClient) -> None:
    token = csrf_of(browser.get("/moderate/login").text)
    response = browser.post(
        "/moderate/login", data={"key": site.keys["news-submitter"], "csrf_token": token}
    )
    assert response.status_code == 403
    assert "a submitter key may not moderate" in response.text
    assert browser.get("/moderate").status_code == 303


def test_sign_in_form_without_its_csrf_token_is_refused(site: Site, browser: TestClient) -> None:
    browser.get("/moderate/login")
    response = browser.post("/moderate/login", data={"key": site.keys["news-moderator"]})
    assert response.status_code == 403
    assert browser.get("/moderate").status_code == 303


def test_session_cookie_holds_no_key_and_is_http_only(site: Site, browser: TestClient) -> None:
    token = csrf_of(browser.get("/moderate/login").text)
    response = browser.post(
        "/moderate/login",
        data={"key": site.keys["news-moderator"], "csrf_token": token, "next": "/moderate/stats"},
    )
    assert response.headers["location"] == "/moderate/stats"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/moderate" in cookie
    assert site.keys["news-moderator"] not in cookie
    assert site.keys["news-moderator"][:10] not in cookie
    new_token = csrf_of(browser.get("/moderate").text)
    assert new_token != token, "signing in issues a fresh CSRF token"


def test_queue_is_sorted_by_score_with_spans_marked_and_reasons_shown(
    site: Site, browser: TestClient
) -> None:
    low = site.held("low", "Rather silly.", score=0.4)
    high = site.held(
        "high",
        "You are a stupid idiot.",
        score=0.97,
        spans=[{"text": "stupid", "start": 10, "end": 16, "weight": 2.0},
               {"text": "idiot", "start": 17, "end": 22, "weight": 3.1}],
    )  # fmt: skip
    site.held("elsewhere", "Not ours.", score=0.99, site="other")
    sign_in(browser, site.keys["news-moderator"])
    page = browser.get("/moderate").text
    assert _order(page) == [high, low]
    assert '<mark title="toxic">stupid</mark> <mark title="toxic">idiot</mark>' in page
    assert "toxic 97% ≥ 20%" in page
    assert "Not ours." not in page


def test_queue_filters_by_author_and_sorts_by_age(site: Site, browser: TestClient) -> None:
    older = site.held("c1", "You idiot.", author="a-1", score=0.5)
    newer = site.held("c2", "You fool.", author="a-1", score=0.9)
    site.held("c3", "Someone else.", author="a-2")
    sign_in(browser, site.keys["news-moderator"])
    assert _order(browser.get("/moderate?author=a-1").text) == [newer, older]
    assert _order(browser.get("/moderate?author=a-1&sort=age").text) == [older, newer]
    assert _order(browser.get("/moderate?attribute=threat").text) == []
    broken = browser.get("/moderate?cursor=garbage")
    assert broken.status_code == 422
    assert "cursor is not one this API returned" in broken.text


def test_comment_text_with_markup_is_shown_as_text(site: Site, browser: TestClient) -> None:
    text = "<script>alert('x')</script><img src=x onerror=alert(1)> you idiot"
    site.held("xss", text, spans=[{"text": "<script>", "start": 0, "end": 8, "weight": 1.0}])
    sign_in(browser, site.keys["news-moderator"])
    page = browser.get("/moderate").text
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;img src=x" in page.replace(
        '<mark title="toxic">&lt;script&gt;</mark>', "&lt;script&gt;"
    )
    assert "script-src 'self'" in browser.get("/moderate").headers["content-security-policy"]


def test_review_without_csrf_token_is_forbidden_and_changes_nothing(
    site: Site, browser: TestClient
) -> None:
    comment_id = site.held("c1", "You idiot.")
    sign_in(browser, site.keys["news-moderator"])
    for headers, data in (
        ({}, {"action": "reject"}),
        ({}, {"action": "reject", "csrf_token": "forged" * 8}),
        ({"x-csrf-token": ""}, {"action": "reject"}),
    ):
        response = browser.post(
            f"/moderate/comments/{comment_id}/review", data=data, headers=headers
        )
        assert response.status_code == 403
        assert "Nothing was changed" in response.text
    bulk = browser.post("/moderate/review", data={"action": "reject", "ids": [comment_id]})
    assert bulk.status_code == 403
    assert site.status(comment_id) == "held"


def test_review_by_form_returns_to_the_queue_and_is_in_the_audit_trail(
    site: Site, browser: TestClient
) -> None:
    comment_id = site.held("c1", "You idiot.")
    token = sign_in(browser, site.keys["news-moderator"])
    response = browser.post(
        f"/moderate/comments/{comment_id}/review",
        data={
            "csrf_token": token,
            "action": "reject",
            "reason": "ABUSIVE",
            "version": "2",
            "next": "/moderate?sort=age",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/moderate?sort=age&done=reject&n=1"
    assert site.status(comment_id) == "rejected"
    assert "Rejected 1 comment." in browser.get(response.headers["location"]).text
    trail = browser.get(f"/moderate/comments/{comment_id}").text
    assert "reviewed" in trail
    assert "ABUSIVE" in trail
    assert "moderator of news (moderator key mk_" in trail


def test_a_review_on_the_page_sends_the_sites_webhook_after_the_commit(
    site: Site, browser: TestClient, sent: SentTasks
) -> None:
    first = site.held("c1", "You idiot.")
    second = site.held("c2", "You fool.")
    with session_scope(site.sessions) as session:
        news = get_or_create_site(session, "news")
        news.webhook_url = "https://news.example/hooks/moderation"
        news.webhook_secret = "s" * 32
    token = sign_in(browser, site.keys["news-moderator"])
    browser.post(
        f"/moderate/comments/{first}/review", data={"csrf_token": token, "action": "approve"}
    )
    browser.post(
        "/moderate/review", data={"csrf_token": token, "action": "reject", "ids": [second]}
    )
    assert [name for name, _ in sent] == [DELIVER_WEBHOOK, DELIVER_WEBHOOK]
    with site.sessions() as session:
        deliveries = session.scalars(select(WebhookDelivery.id)).all()
    assert sorted(args[0] for _, args in sent) == sorted(deliveries)


def test_review_of_a_stale_version_is_refused(site: Site, browser: TestClient) -> None:
    comment_id = site.held("c1", "You idiot.")
    token = sign_in(browser, site.keys["news-moderator"])
    response = browser.post(
        f"/moderate/comments/{comment_id}/review",
        data={"csrf_token": token, "action": "approve", "version": "1"},
    )
    assert response.status_code == 409
    assert "changed since it was read" in response.text
    assert site.status(comment_id) == "held"


def test_a_note_over_the_apis_limit_is_refused_on_the_page_too(
    site: Site, browser: TestClient
) -> None:
    comment_id = site.held("c1", "You idiot.")
    token = sign_in(browser, site.keys["news-moderator"])
    response = browser.post(
        f"/moderate/comments/{comment_id}/review",
        data={"csrf_token": token, "action": "reject", "note": "x" * 2001},
    )
    assert response.status_code == 422
    assert "note must be at most 2000 characters" in response.text
    assert site.status(comment_id) == "held"


def test_script_review_gets_json(site: Site, browser: TestClient) -> None:
    comment_id = site.held("c1", "You idiot.")
    token = sign_in(browser, site.keys["news-moderator"])
    response = browser.post(
        f"/moderate/comments/{comment_id}/review",
        data={"action": "approve"},
        headers={"accept": "application/json", "x-csrf-token": token},
    )
    assert response.status_code == 200
    assert response.json()["reviewed"][0]["status"] == "approved"


def test_bulk_review_is_all_or_nothing(site: Site, browser: TestClient) -> None:
    first = site.held("c1", "You idiot.")
    second = site.held("c2", "You fool.")
    theirs = site.held("c3", "Other site.", site="other")
    token = sign_in(browser, site.keys["news-moderator"])
    refused = browser.post(
        "/moderate/review",
        data={"csrf_token": token, "action": "reject", "ids": [first, theirs]},
    )
    assert refused.status_code == 404
    assert site.status(first) == site.status(theirs) == "held"
    done = browser.post(
        "/moderate/review", data={"csrf_token": token, "action": "reject", "ids": [first, second]}
    )
    assert done.status_code == 303
    assert site.status(first) == site.status(second) == "rejected"


def test_a_revoked_key_loses_its_session(site: Site, browser: TestClient) -> None:
    sign_in(browser, site.keys["news-moderator"])
    assert browser.get("/moderate").status_code == 200
    with session_scope(site.sessions) as session:
        revoke_key(session, site.keys["news-moderator"][:10])
    response = browser.get("/moderate")
    assert response.status_code == 303
    assert "ended=1" in response.headers["location"]


def test_a_tampered_cookie_is_no_session(site: Site, browser: TestClient) -> None:
    sign_in(browser, site.keys["news-moderator"])
    cookie = browser.cookies.get(COOKIE_NAME)
    assert cookie
    # itsdangerous' format: payload.timestamp.signature; change the payload, keep the rest.
    payload, rest = cookie.split(".", 1)
    browser.cookies.clear()
    browser.cookies.set(COOKIE_NAME, f"{payload}x.{rest}", path="/moderate")
    assert browser.get("/moderate").status_code == 303


def test_sign_out_ends_the_session(site: Site, browser: TestClient) -> None:
    token = sign_in(browser, site.keys["news-moderator"])
    assert browser.post("/moderate/logout", data={}).status_code == 403
    response = browser.post("/moderate/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert browser.get("/moderate").status_code == 303


def test_a_cookie_copied_before_sign_out_is_worth_nothing_after(
    site: Site, app: FastAPI, browser: TestClient
) -> None:
    comment_id = site.held("c1", "You idiot.")
    token = sign_in(browser, site.keys["news-moderator"])
    copied = browser.cookies.get(COOKIE_NAME)
    assert copied
    assert browser.post("/moderate/logout", data={"csrf_token": token}).status_code == 303
    with TestClient(app, follow_redirects=False) as thief:
        thief.cookies.set(COOKIE_NAME, copied)
        assert thief.get("/moderate").status_code == 303, "off to sign in"
        review = thief.post(
            f"/moderate/comments/{comment_id}/review",
            data={"csrf_token": token, "action": "approve"},
        )
        assert review.status_code == 303 and "/moderate/login" in review.headers["location"]
    assert site.status(comment_id) == "held"


def test_another_sites_comment_is_not_found(site: Site, browser: TestClient) -> None:
    theirs = site.held("c3", "Other site.", site="other")
    sign_in(browser, site.keys["news-moderator"])
    response = browser.get(f"/moderate/comments/{theirs}")
    assert response.status_code == 404
    assert "Other site." not in response.text


def test_live_updates_return_comments_held_since(site: Site, browser: TestClient) -> None:
    sign_in(browser, site.keys["news-moderator"])
    page = browser.get("/moderate?article=peace-talks").text
    since = re.search(r'data-since="([^"]+)"', page)
    live = re.search(r'data-live-url="([^"]+)"', page)
    assert since and live
    comment_id = site.held("late", "Late idiot.")
    site.held("elsewhere", "Another article.", article="sports")
    url = live.group(1).replace("&amp;", "&")
    fragment = browser.get(f"{url}&{urlencode({'since': since.group(1)})}").text
    assert _order(fragment) == [comment_id]
    assert "<html" not in fragment


def test_author_page_and_inline_fragment(site: Site, browser: TestClient) -> None:
    site.held("c1", "You idiot.", author="reader/7")
    sign_in(browser, site.keys["news-moderator"])
    page = browser.get("/moderate/authors/reader/7")
    assert page.status_code == 200
    assert "1 comments" in page.text
    fragment = browser.get("/moderate/authors/reader/7?fragment=1").text
    assert "You idiot." in fragment
    assert "<html" not in fragment
    assert browser.get("/moderate/authors/nobody").status_code == 404


def test_stats_page_draws_the_chart_server_side(site: Site, browser: TestClient) -> None:
    site.held("c1", "You idiot.")
    sign_in(browser, site.keys["news-moderator"])
    page = browser.get("/moderate/stats?hours=48").text
    assert '<svg class="chart"' in page
    assert "Hold rate and queue size per hour" in page
    assert page.count('<rect class="bar"') == 48
    assert '<dd id="queue-size">1</dd>' in page


def test_static_files_are_served_and_nothing_else(browser: TestClient) -> None:
    script = browser.get("/moderate/static/moderate.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert browser.get("/moderate/static/../auth.py").status_code == 404
    assert browser.get("/moderate/static/secret_key").status_code == 404


def test_secret_is_made_once_and_private(tmp_path: object) -> None:
    settings = Settings(var_dir=tmp_path)  # type: ignore[arg-type]
    first = load_secret(settings)
    assert load_secret(Settings(var_dir=tmp_path)) == first  # type: ignore[arg-type]
    path = settings.var_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(Settings(var_dir=tmp_path, secret_key="s" * 40)) == b"s" * 40  # type: ignore[arg-type]


def test_return_addresses_stay_on_these_pages() -> None:
    assert safe_next("/moderate?sort=age") == "/moderate?sort=age"
    assert safe_next("/moderate/comments/x") == "/moderate/comments/x"
    for hostile in ("https://evil.example/", "//evil.example", "/moderate\\@evil", "/v1/x", None):
        assert safe_next(hostile) == "/moderate"


def test_highlight_merges_overlapping_spans_and_drops_bad_offsets() -> None:
    text = "a <b>stupid idiot</b>"
    reasons: list[dict[str, Any]] = [
        {"attribute": "toxic", "spans": [{"start": 5, "end": 11}, {"start": 100, "end": 105}]},
        {"attribute": "insult", "spans": [{"start": 8, "end": 17}, {"start": "x", "end": 2}]},
    ]
    assert str(highlight(text, reasons)) == (
        'a &lt;b&gt;<mark title="insult, toxic">stupid idiot</mark>&lt;/b&gt;'
    )


def test_a_short_secret_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(secret_key="changeme")
