"""A moderator's session ends after `web_session_idle_minutes` without a request: an active one
slides (its cookie is re-issued), and the absolute `web_session_hours` limit still applies."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from fastapi.testclient import TestClient

from service.sites.keys import authenticate
from service.web.auth import COOKIE_NAME, WebSession, load_secret, read_session, seal_session
from tests.stack import Stack, StackSpec
from tests.web.conftest import Site, csrf_of, sign_in

# The real stack's sessions idle out after 6 s, so the tests can wait that out.
IDLE_SECONDS = 6.0
STACK = StackSpec(env={"MODERATION_WEB_SESSION_IDLE_MINUTES": str(IDLE_SECONDS / 60)})
MINUTE = 60
HOUR = 3600


def _cookie(site: Site, *, key: str | None, started_ago: float, seen_ago: float) -> tuple[str, str]:
    """A cookie as this service would have issued it: started and last seen so long ago.
    Returns it with its CSRF token."""
    key_id = None
    if key is not None:
        with site.sessions() as session:
            key_id = authenticate(session, site.keys[key]).id
    now = time.time()
    csrf = secrets.token_urlsafe(32)
    web = WebSession(key_id, csrf, int(now - started_ago), int(now - seen_ago))
    return seal_session(load_secret(site.settings), web), csrf


def _with_cookie(browser: TestClient, cookie: str) -> TestClient:
    browser.cookies.clear()
    browser.cookies.set(COOKIE_NAME, cookie, path="/moderate")
    return browser


def _issued(site: Site, set_cookie: str) -> WebSession:
    found = re.search(rf"{COOKIE_NAME}=([^;]+)", set_cookie)
    assert found, set_cookie
    web = read_session(
        load_secret(site.settings), found.group(1), lifetime_seconds=12 * HOUR, idle_seconds=HOUR
    )
    assert web is not None
    return web


def test_a_session_idle_past_the_limit_is_sent_to_sign_in_and_changes_nothing(
    site: Site, browser: TestClient
) -> None:
    comment_id = site.held("idle-1", "You idiot.")
    cookie, csrf = _cookie(site, key="news-moderator", started_ago=HOUR, seen_ago=31 * MINUTE)
    response = _with_cookie(browser, cookie).get("/moderate?article=peace-talks")
    assert response.status_code == 303
    assert (
        response.headers["location"] == "/moderate/login?next=%2Fmoderate%3Farticle%3Dpeace-talks"
    )
    review = browser.post(
        f"/moderate/comments/{comment_id}/review", data={"csrf_token": csrf, "action": "approve"}
    )
    assert review.status_code == 303 and "/moderate/login" in review.headers["location"]
    assert site.status(comment_id) == "held"


def test_an_active_session_is_reissued_with_a_new_last_seen_and_the_same_start(
    site: Site, browser: TestClient
) -> None:
    cookie, csrf = _cookie(site, key="news-moderator", started_ago=2 * HOUR, seen_ago=29 * MINUTE)
    response = _with_cookie(browser, cookie).get("/moderate")
    assert response.status_code == 200
    reissued = _issued(site, response.headers["set-cookie"])
    assert reissued.csrf == csrf, "the same session, so sign-out still ends it"
    assert time.time() - reissued.seen_at < MINUTE
    assert abs(time.time() - 2 * HOUR - reissued.issued_at) < MINUTE, "the start is kept"
    # The browser may keep it only until the absolute limit: 12 h from the start, 10 h from now.
    max_age = re.search(r"Max-Age=(\d+)", response.headers["set-cookie"])
    assert max_age and 10 * HOUR - MINUTE < int(max_age.group(1)) <= 10 * HOUR
    assert browser.get("/moderate").status_code == 200


def test_requests_soon_after_the_cookie_was_issued_set_no_cookie(
    site: Site, browser: TestClient
) -> None:
    sign_in(browser, site.keys["news-moderator"])
    for _ in range(3):
        response = browser.get("/moderate")
        assert response.status_code == 200
        assert "set-cookie" not in response.headers


def test_the_absolute_limit_ends_even_an_active_session(site: Site, browser: TestClient) -> None:
    cookie, _ = _cookie(site, key="news-moderator", started_ago=12 * HOUR + MINUTE, seen_ago=10)
    assert _with_cookie(browser, cookie).get("/moderate").status_code == 303


def test_live_updates_neither_slide_the_session_nor_outlive_it(
    site: Site, browser: TestClient
) -> None:
    since = datetime.now(UTC).isoformat()
    cookie, _ = _cookie(site, key="news-moderator", started_ago=HOUR, seen_ago=2 * MINUTE)
    polled = _with_cookie(browser, cookie).get("/moderate/queue/new", params={"since": since})
    assert polled.status_code == 200
    assert "set-cookie" not in polled.headers, "a page polling on its own is not activity"
    stale, _ = _cookie(site, key="news-moderator", started_ago=HOUR, seen_ago=31 * MINUTE)
    polled = _with_cookie(browser, stale).get("/moderate/queue/new", params={"since": since})
    assert polled.status_code == 303


def test_a_sign_in_page_left_open_past_the_idle_limit_still_signs_in(
    site: Site, browser: TestClient
) -> None:
    cookie, csrf = _cookie(site, key=None, started_ago=2 * HOUR, seen_ago=2 * HOUR)
    response = _with_cookie(browser, cookie).post(
        "/moderate/login", data={"key": site.keys["news-moderator"], "csrf_token": csrf}
    )
    assert response.status_code == 303 and response.headers["location"] == "/moderate"
    assert browser.get("/moderate").status_code == 200


def test_sign_out_also_ends_the_cookies_the_session_had_before_it_slid(
    site: Site, browser: TestClient
) -> None:
    earlier, csrf = _cookie(site, key="news-moderator", started_ago=HOUR, seen_ago=2 * MINUTE)
    slid = _with_cookie(browser, earlier).get("/moderate")
    assert "set-cookie" in slid.headers
    assert browser.post("/moderate/logout", data={"csrf_token": csrf}).status_code == 303
    replayed = _with_cookie(browser, earlier).get("/moderate")
    assert replayed.status_code == 303 and "ended=1" in replayed.headers["location"]


@contextmanager
def _signed_in_client(stack: Stack) -> Iterator[httpx.Client]:
    """A client keeping cookies like a browser, signed in through the form."""
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        token = csrf_of(client.get("/moderate/login").text)
        form = {"key": stack.keys["news-moderator"], "csrf_token": token}
        assert client.post("/moderate/login", data=form).status_code == 303
        yield client


def test_on_the_real_stack_an_active_session_outlives_the_idle_limit_and_its_first_cookie_does_not(
    stack: Stack,
) -> None:
    with _signed_in_client(stack) as client:
        first = client.cookies[COOKIE_NAME]
        started = time.monotonic()
        reissued = 0
        while time.monotonic() - started < IDLE_SECONDS + 3:
            response = client.get("/moderate")
            assert response.status_code == 200, "an active session keeps working"
            reissued += "set-cookie" in response.headers
            time.sleep(1)
        assert reissued >= 2, "the cookie slid as the session stayed active"
        assert client.cookies[COOKIE_NAME] != first
        with httpx.Client(base_url=stack.base_url, timeout=30) as replay:
            old = replay.get("/moderate", headers={"cookie": f"{COOKIE_NAME}={first}"})
        assert old.status_code == 303, "the first cookie was idle past the limit"
        assert old.headers["location"].startswith("/moderate/login")


def test_on_the_real_stack_a_session_idle_past_the_limit_is_sent_to_sign_in(stack: Stack) -> None:
    with _signed_in_client(stack) as client:
        assert client.get("/moderate").status_code == 200
        time.sleep(IDLE_SECONDS + 2)
        response = client.get("/moderate")
        assert response.status_code == 303
        assert response.headers["location"] == "/moderate/login?next=%2Fmoderate"
