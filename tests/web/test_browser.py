"""The moderator pages end to end: a real headless Chromium against Redis, a worker and the API."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from service.core.db import session_scope
from service.core.tables import Site, TrainingJob, utcnow
from service.models.training_jobs import fail_job, report_progress
from service.rules.overrides import delete_policy
from service.sites.keys import create_key, revoke_key
from tests.factories import CIVIL, TOXIC, comment
from tests.stack import Stack

pytestmark = pytest.mark.integration

# A 2-core machine running the stack and the browser together can be slow to repaint.
expect.set_options(timeout=10_000)
# Where docs/console.md's pictures come from, when asked for (MODERATION_SCREENSHOTS=1).
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def page(chromium: Browser, stack: Stack) -> Iterator[Page]:
    context = chromium.new_context(base_url=stack.base_url)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _hold(stack: Stack, article: str, texts: list[str], author: str = "reader-1") -> list[str]:
    """Submit comments through the API as a site would; each must come back held."""
    ids = []
    with stack.client() as client:
        for text in texts:
            payload = comment(f"{article}-{uuid.uuid4().hex[:8]}", text, article_id=article)
            response = client.post(
                "/v1/comments?wait_ms=5000", json={**payload, "author_id": author}
            )
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "held", response.json()
            ids.append(response.json()["id"])
    return ids


def _status(stack: Stack, comment_id: str) -> str:
    with stack.client() as client:
        return str(client.get(f"/v1/comments/{comment_id}").json()["status"])


def _sign_in(page: Page, key: str, then: str = "/moderate") -> None:
    page.goto(then)
    page.fill("#key", key)
    # Wait for the page after sign-in to load, script included, before anyone presses a key.
    with page.expect_navigation():
        page.click("form[action='/moderate/login'] button[type=submit]")


def _article() -> str:
    return f"article-{uuid.uuid4().hex[:8]}"


def _screenshot(page: Page, name: str) -> None:
    """docs/console-NAME.png, of the whole page at one size, when asked for."""
    if os.environ.get("MODERATION_SCREENSHOTS") == "1":
        page.set_viewport_size({"width": 1100, "height": 900})
        page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=True)


def test_bad_key_shows_an_error_and_a_submitter_key_is_refused(page: Page, stack: Stack) -> None:
    _sign_in(page, "mk_not-a-key")
    expect(page.locator("p.error")).to_contain_text("unknown or revoked API key")
    _sign_in(page, stack.keys["news-submitter"])
    expect(page.locator("p.error")).to_contain_text("a submitter key may not moderate")
    page.goto("/moderate")
    expect(page.locator("#key")).to_be_visible()


def test_moderator_reviews_by_keyboard_bulk_rejects_and_sees_the_audit_trail(
    page: Page, stack: Stack
) -> None:
    article = _article()
    held = _hold(stack, article, TOXIC[:4])
    _sign_in(page, stack.keys["news-moderator"], then=f"/moderate?article={article}")
    items = page.locator("#queue > li.item")
    expect(items).to_have_count(4)
    scores = [float(s) for s in items.evaluate_all("els => els.map(e => e.dataset.score)")]
    assert scores == sorted(scores, reverse=True), "highest score first"
    expect(items.first.locator("mark").first).to_be_visible()  # the words behind the score
    expect(items.first.locator("li.reason").first).to_contain_text("toxic")

    order = items.evaluate_all("els => els.map(e => e.dataset.id)")
    page.keyboard.press("j")
    expect(items.first).to_have_class("item current")
    page.keyboard.press("a")
    expect(items).to_have_count(3)
    expect(page.locator("#status")).to_have_text("Approved 1 comment.")
    assert _status(stack, order[0]) == "approved"

    # Focus moved to the next comment: select it and the one after, then reject both at once.
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(page.locator("#selected-count")).to_have_text("2")
    page.keyboard.press("Shift+R")
    expect(items).to_have_count(1)
    expect(page.locator("#status")).to_have_text("Rejected 2 comments.")
    assert [_status(stack, i) for i in order[1:3]] == ["rejected", "rejected"]
    assert _status(stack, order[3]) == "held"
    assert sorted(order) == sorted(held)

    page.goto(f"/moderate/comments/{order[1]}")
    reviewed = page.locator("#trail tr.event-reviewed")
    expect(reviewed).to_have_count(1)
    expect(reviewed).to_contain_text("reject")
    expect(reviewed).to_contain_text("moderator key")
    expect(page.locator("#trail tr.event-decided")).to_contain_text("hold")


def test_comment_text_with_markup_renders_as_text(page: Page, stack: Stack) -> None:
    article = _article()
    text = "<script>window.pwned = 1</script> You are a stupid idiot <b>moron</b>"
    (comment_id,) = _hold(stack, article, [text])
    _sign_in(page, stack.keys["news-moderator"], then=f"/moderate?article={article}")
    item = page.locator(f"#c-{comment_id}")
    expect(item.locator("blockquote.text")).to_have_text(text)
    assert item.locator("script, b").count() == 0
    assert page.evaluate("() => window.pwned === undefined")


def test_new_held_comments_appear_without_a_reload(page: Page, stack: Stack) -> None:
    article = _article()
    _hold(stack, article, TOXIC[4:5])
    _sign_in(page, stack.keys["news-moderator"], then=f"/moderate?article={article}")
    expect(page.locator("#queue > li.item")).to_have_count(1)
    page.evaluate("() => { window.sameDocument = true; }")
    (late,) = _hold(stack, article, TOXIC[5:6])
    expect(page.locator(f"#c-{late}")).to_be_visible(timeout=15_000)
    assert page.evaluate("() => window.sameDocument === true")
    expect(page.locator("#count")).to_have_text("2")


def test_h_shows_the_authors_history_inline(page: Page, stack: Stack) -> None:
    article = _article()
    _hold(stack, article, TOXIC[6:8], author="repeat-offender")
    _sign_in(page, stack.keys["news-moderator"], then=f"/moderate?article={article}")
    page.keyboard.press("j")
    page.keyboard.press("h")
    panel = page.locator("li.item.current .author-panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("repeat-offender")
    expect(panel).to_contain_text("2 comments")
    page.keyboard.press("h")
    expect(panel).to_be_hidden()


def test_post_without_csrf_token_is_forbidden_and_changes_nothing(page: Page, stack: Stack) -> None:
    article = _article()
    (comment_id,) = _hold(stack, article, TOXIC[8:9])
    _sign_in(page, stack.keys["news-moderator"], then=f"/moderate?article={article}")
    expect(page.locator(f"#c-{comment_id}")).to_be_visible()
    request = page.context.request  # with the page's cookies
    response = request.post(
        f"/moderate/comments/{comment_id}/review", form={"action": "reject"}, max_redirects=0
    )
    assert response.status == 403
    bulk = request.post("/moderate/review", form={"action": "reject", "ids": comment_id})
    assert bulk.status == 403
    assert _status(stack, comment_id) == "held"


def test_stats_page_shows_the_hourly_chart(page: Page, stack: Stack) -> None:
    _sign_in(page, stack.keys["news-moderator"], then="/moderate/stats")
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    assert chart.locator("rect.bar").count() == 24
    expect(page.locator("#queue-size")).not_to_have_text("0")


def test_a_revoked_key_is_signed_out(page: Page, stack: Stack) -> None:
    with session_scope(stack.sessions) as session:
        plain = create_key(session, site_name="news", role="moderator", name="temp")[1]
    _sign_in(page, plain)
    expect(page.locator("h1")).to_contain_text("Held comments")
    with session_scope(stack.sessions) as session:
        revoke_key(session, plain[:10])
    page.reload()
    expect(page.locator("#key")).to_be_visible()
    expect(page.locator(".login")).to_contain_text("Your session ended")


def test_the_forms_work_without_javascript(chromium: Browser, stack: Stack) -> None:
    article = _article()
    first, second = _hold(stack, article, TOXIC[9:11])
    context = chromium.new_context(base_url=stack.base_url, java_script_enabled=False)
    try:
        page = context.new_page()
        _sign_in(page, stack.keys["news-moderator"], then=f"/moderate?article={article}")
        with page.expect_navigation():
            page.locator(f"#c-{first} button.approve").click()
        expect(page.locator("p.notice")).to_have_text("Approved 1 comment.")
        assert page.url.endswith(f"/moderate?article={article}&done=approve&n=1")
        page.locator(f"#c-{second} input.select").check()
        with page.expect_navigation():
            page.locator("#bulk button.reject").click()
        expect(page.locator("p.notice")).to_have_text("Rejected 1 comment.")
        expect(page.locator("#queue > li.item")).to_have_count(0)
        assert (_status(stack, first), _status(stack, second)) == ("approved", "rejected")
    finally:
        context.close()


def test_a_site_admin_sets_a_threshold_saves_it_and_sees_it(page: Page, stack: Stack) -> None:
    # Decisions for the preview beside each threshold to count, two of them rejected by a person.
    article = _article()
    held = _hold(stack, article, TOXIC[11:15])
    with stack.client() as client:
        for text in CIVIL[:4]:
            payload = comment(f"{article}-{uuid.uuid4().hex[:8]}", text, article_id=article)
            assert client.post("/v1/comments?wait_ms=5000", json=payload).status_code == 200
    with stack.client("news-moderator") as client:
        for comment_id in held[:2]:
            review = {"action": "reject", "reason": "ABUSIVE"}
            assert client.post(f"/v1/comments/{comment_id}/review", json=review).is_success
    _sign_in(page, stack.keys["news-site_admin"], then="/moderate/admin/policy")
    expect(page.locator("h1")).to_have_text("Policy of news")
    toxic = page.get_by_label("toxic", exact=True)
    expect(toxic).to_have_attribute("placeholder", "0.2")
    try:
        toxic.fill("0.45")
        page.keyboard.press("Tab")  # the next field is the same attribute's reject threshold
        expect(page.get_by_label("toxic: reject at or above", exact=True)).to_be_focused()
        toxic.focus()
        with page.expect_navigation():
            page.keyboard.press("Control+s")
        expect(page.locator("p.notice")).to_have_text("Saved.")
        assert page.url.endswith("/moderate/admin/policy?done=saved")
        expect(toxic).to_have_value("0.45")
        expect(page.locator("tr[data-attribute='toxic'] .hold-rate")).to_contain_text("at 0.45")
        expect(page.locator("#recall-any")).to_contain_text("%")
        _screenshot(page, "policy")
    finally:
        # The module's tests share the stack: the next must meet the default policy.
        with session_scope(stack.sessions) as session:
            delete_policy(session, "news", "site", None, actor="tests")


def test_a_site_admin_creates_a_key_sees_it_once_and_it_works(page: Page, stack: Stack) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _sign_in(page, stack.keys["news-site_admin"], then="/moderate/admin/keys")
    expect(page.locator("h1")).to_have_text("API keys of news")
    page.get_by_label("Name", exact=False).first.fill("comment backend")
    page.get_by_label("Role").select_option("submitter")
    with page.expect_navigation():
        page.get_by_role("button", name="Create the key").click()
    shown = page.locator("#new-secret")
    expect(shown).to_be_focused()  # Ctrl+C copies it at once
    plain = shown.input_value()
    assert plain.startswith("mk_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == plain

    headers = {"Authorization": f"Bearer {plain}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30) as client:
        posted = client.post("/v1/comments", json=comment(uuid.uuid4().hex, CIVIL[0]))
        assert posted.is_success, posted.text

    page.goto("/moderate/admin/keys")
    row = page.locator(f"tr[data-prefix='{plain[:10]}']")
    expect(row).to_contain_text("comment backend")
    expect(row).to_contain_text("submitter")
    assert plain not in page.content(), "the key itself is never shown again"
    _screenshot(page, "keys")


def test_a_running_jobs_progress_bar_follows_it_without_a_reload(page: Page, stack: Stack) -> None:
    # A job as a training worker leaves it mid-way; the stack runs no training worker or beat,
    # so nothing but this test moves it.
    with session_scope(stack.sessions) as session:
        site_id = session.scalar(select(Site.id).where(Site.name == "news"))
        now = utcnow()
        job = TrainingJob(
            site_id=site_id,
            status="running",
            stage="fitting the site's adapter",
            percent=40.0,
            requested_by="tests",
            result={"new_labels": 120},
            created_at=now,
            started_at=now,
            heartbeat_at=now,
        )
        session.add(job)
        session.flush()
        job_id = job.id
    try:
        _sign_in(page, stack.keys["news-site_admin"], then="/moderate/admin/models")
        expect(page.locator("#active-version")).not_to_have_text("none yet")
        bar = page.locator("#job-progress")
        expect(bar).to_have_js_property("value", 40)
        expect(page.locator("#job-refresh")).to_be_hidden()  # the script follows the job itself
        page.evaluate("() => { window.sameDocument = true; }")
        report_progress(stack.sessions, job_id, "evaluating the candidate", 75)
        expect(page.locator("#job-stage")).to_have_text("evaluating the candidate")
        expect(bar).to_have_js_property("value", 75)
        expect(page.locator("#job-percent")).to_have_text("75%")
        expect(page.locator(f"tr[data-job='{job_id}'] .stage")).to_have_text(
            "evaluating the candidate (75%)"
        )
        assert page.evaluate("() => window.sameDocument === true")
        _screenshot(page, "models")
        with session_scope(stack.sessions) as session:
            fail_job(session, job_id, "stopped by the test")
        # Once the job ends the page reloads, to show what it left.
        expect(page.locator("#job-progress")).to_have_count(0)
        expect(page.locator(f"tr[data-job='{job_id}']")).to_contain_text("stopped by the test")
    finally:
        with session_scope(stack.sessions) as session:
            fail_job(session, job_id, "stopped by the test")
