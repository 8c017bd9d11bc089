"""Fixtures for the moderator pages: an app with only the web router over a real database, and
a real headless Chromium for the browser tests."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from limits.aio.storage import MemoryStorage
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy.orm import Session, sessionmaker

from service import web
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.migrate import upgrade_database
from service.core.settings import Settings
from service.core.tables import Author, Comment, CommentStatus, Decision, utcnow
from service.http.key_cache import KeyCache
from service.http.quotas import QuotaRules, Quotas
from service.rules.reasons import reason_tags
from service.sites.keys import create_key, get_or_create_site

CHROMIUM = os.environ.get("MODERATION_TEST_CHROMIUM", "/usr/bin/chromium")
# The flags that work on a machine with no display, no GPU, no network and running as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("MODERATION_TEST_REQUIRE_BROWSER"):
            pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (`make test` installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Site:
    """A migrated SQLite database with a site `news`, its keys and a way to add held comments."""

    sessions: sessionmaker[Session]
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)

    def held(
        self,
        external_id: str,
        text: str,
        *,
        score: float = 0.9,
        author: str = "reader-1",
        article: str = "peace-talks",
        spans: list[dict[str, Any]] | None = None,
        site: str = "news",
    ) -> str:
        """A held comment, as a worker would leave it, with a toxic reason over `spans`."""
        reasons = [
            {
                "code": "attribute_over_threshold",
                "attribute": "toxic",
                "score": score,
                "threshold": 0.2,
                "spans": spans or [],
            }
        ]
        with session_scope(self.sessions) as session:
            site_row = get_or_create_site(session, site)
            author_row = session.query(Author).filter_by(
                site_id=site_row.id, external_id=author
            ).one_or_none() or Author(site_id=site_row.id, external_id=author)
            session.add(author_row)
            session.flush()
            comment = Comment(
                site_id=site_row.id,
                external_id=external_id,
                article_id=article,
                author_id=author_row.id,
                text=text,
                status=CommentStatus.HELD,
                version=2,
                score=score,
                reason_tags=reason_tags(reasons),
            )
            session.add(comment)
            session.flush()
            session.add(
                Decision(
                    comment_id=comment.id,
                    action="hold",
                    scores={"toxic": score, "insult": score / 2},
                    reasons=reasons,
                    model_version="test-model",
                    latency_ms=1.0,
                    decided_at=utcnow(),
                )
            )
            return comment.id

    def status(self, comment_id: str) -> str:
        with self.sessions() as session:
            comment = session.get(Comment, comment_id)
            assert comment is not None
            return comment.status


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    made = Site(make_session_factory(engine), Settings(var_dir=tmp_path, database_url=url))
    with session_scope(made.sessions) as session:
        for site_name, role in (
            ("news", "moderator"),
            ("news", "site_admin"),
            ("news", "submitter"),
            ("other", "moderator"),
        ):
            made.keys[f"{site_name}-{role}"] = create_key(
                session, site_name=site_name, role=role, name=f"{role} of {site_name}"
            )[1]
    try:
        yield made
    finally:
        engine.dispose()


class SentTasks(list[tuple[str, list[Any]]]):
    """Stands in for the Celery app at the queue's edge: records what would be sent."""

    def send_task(self, name: str, args: list[Any], **_: Any) -> None:
        self.append((name, args))


@pytest.fixture
def sent() -> SentTasks:
    return SentTasks()


@pytest.fixture
def app(site: Site, sent: SentTasks) -> FastAPI:
    application = FastAPI()
    application.include_router(web.router)
    # The pages use the settings, the database and, after a review, the queue's Celery app.
    rules = QuotaRules(per_second=100, burst=500, failures_per_minute=30)
    application.state.moderation = SimpleNamespace(
        settings=site.settings,
        sessions=site.sessions,
        enqueue=SimpleNamespace(app=sent),
        quotas=Quotas(MemoryStorage(), rules),  # the real limiter, counting in this process
        keys=KeyCache(),  # never live here: every sign-in asks the database
    )
    return application


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    """A client that keeps cookies like a browser and does not follow redirects."""
    with TestClient(app, follow_redirects=False) as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/moderate/login").text)
    response = client.post("/moderate/login", data={"key": key, "csrf_token": token})
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/moderate").text)
