"""Faults: a worker killed mid-task and a Redis outage lose no accepted comment."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from service.core.tables import Comment, CommentStatus, Decision
from tests.conftest import POSTGRES_ADMIN_URL, postgres_database
from tests.factories import CIVIL, TOXIC, comment
from tests.stack import Stack, StackSpec, start_stack, wait_until

pytestmark = pytest.mark.integration

FAST_SWEEP = {
    # One comment per task, so that a worker is slow enough to be caught with work in hand.
    "MODERATION_SCORE_BATCH_SIZE": "1",
    "MODERATION_STALE_PENDING_SECONDS": "2",
    "MODERATION_SWEEP_INTERVAL_SECONDS": "1",
    # Workers say they consume every half second: silent for 1.5 s, they count as gone.
    "MODERATION_WORKER_BEAT_SECONDS": "0.5",
}


@pytest.fixture
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack on an empty database for each test: every test here breaks something."""
    spec = StackSpec(env=FAST_SWEEP, beat=True)
    with start_stack(spec, tmp_path_factory.mktemp("faults"), database_url) as running:
        yield running


def _counts(stack: Stack) -> tuple[int, int, int]:
    """(comments, still pending, decisions)"""
    with stack.sessions() as session:
        total = session.scalar(select(func.count()).select_from(Comment)) or 0
        pending = (
            session.scalar(
                select(func.count())
                .select_from(Comment)
                .where(Comment.status == CommentStatus.PENDING)
            )
            or 0
        )
        decisions = session.scalar(select(func.count()).select_from(Decision)) or 0
    return total, pending, decisions


def _one_decision_each(stack: Stack) -> bool:
    with stack.sessions() as session:
        duplicated = session.execute(
            select(Decision.comment_id).group_by(Decision.comment_id).having(func.count() > 1)
        ).all()
    return not duplicated


def test_worker_killed_mid_task_loses_nothing(stack: Stack) -> None:
    texts = (TOXIC + CIVIL) * 8  # 400 comments queued before the worker starts
    stack.kill("worker", signal.SIGTERM)

    def post(index: int) -> int:
        with stack.client() as client:
            payload = comment(f"kill-{index}", texts[index])
            return client.post("/v1/comments", json=payload).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(post, range(len(texts))))
    assert set(statuses) == {202}
    assert _counts(stack) == (len(texts), len(texts), 0)

    stack.start_worker()
    wait_until(lambda: _counts(stack)[2] >= 3, timeout=30, interval=0.005)
    stack.kill("worker")  # SIGKILL: no chance to finish or acknowledge anything
    total, pending, _ = _counts(stack)
    assert total == len(texts)
    assert pending > 0, "the worker must die with work left to do"

    time.sleep(1.5)  # nothing decides while no worker runs
    assert _counts(stack)[1] == pending

    stack.start_worker()
    assert wait_until(lambda: _counts(stack)[1] == 0, timeout=90), _counts(stack)
    assert _counts(stack) == (len(texts), 0, len(texts))
    assert _one_decision_each(stack)


def test_redis_down_comment_is_stored_pending_then_decided_when_redis_is_back(
    stack: Stack,
) -> None:
    assert stack.redis is not None
    stack.redis.stop()
    with stack.client() as client:
        response = client.post("/v1/comments?wait_ms=300", json=comment("outage-1", "Hello."))
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        comment_id = response.json()["id"]
        assert client.get("/readyz").status_code == 503
        assert client.get(f"/v1/comments/{comment_id}").json()["status"] == "pending"

    stack.redis.start()

    def decided() -> bool:
        with stack.client() as client:
            status: str = client.get(f"/v1/comments/{comment_id}").json()["status"]
            return status == "approved"

    assert wait_until(decided, timeout=90), stack.log("worker")
    with stack.client() as client:
        # Ready again once the worker has said, to the new Redis, that it consumes.
        assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=10)
        after = client.post("/v1/comments?wait_ms=5000", json=comment("outage-2", "Back again."))
    assert after.status_code == 200
    assert _one_decision_each(stack)


def test_readiness_says_no_scoring_worker_consumes_until_one_is_back(stack: Stack) -> None:
    with stack.client() as client:
        assert client.get("/readyz").status_code == 200
        stack.kill("worker")
        assert wait_until(lambda: client.get("/readyz").status_code == 503, timeout=10)
        body = client.get("/readyz").json()
        assert body["status"] == "not_ready" and body["checks"]["scoring_workers"] == 0
        assert body["checks"]["database"] == body["checks"]["redis"] == "ok"
        assert any("no scoring worker has consumed" in r for r in body["reasons"]), body
        # Intake still works: a load balancer's probe keeps the API in rotation.
        assert client.get("/readyz?scope=intake").status_code == 200
        stored = client.post("/v1/comments?wait_ms=200", json=comment("no-worker", "Hello."))
        assert stored.status_code == 202 and stored.json()["status"] == "pending"

        stack.start_worker()
        assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=30)
        assert client.get("/readyz").json()["reasons"] == []

        def decided() -> bool:
            view = client.get(f"/v1/comments/{stored.json()['id']}").json()
            return bool(view["status"] == "approved")

        assert wait_until(decided, timeout=30), stack.log("worker")


def test_two_workers_share_the_queue_and_decide_each_comment_once(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stack = Stack(tmp_path_factory.mktemp("two-workers"), database_url).start()
    try:
        stack.start_worker("worker-2", log_each_task=True)
        texts = (TOXIC + CIVIL) * 6

        def post(index: int) -> str:
            with stack.client() as client:
                response = client.post(
                    "/v1/comments?wait_ms=5000", json=comment(f"pair-{index}", texts[index])
                )
            assert response.status_code == 200, response.text
            return str(response.json()["status"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(post, range(len(texts))))
        assert statuses.count("held") == len(TOXIC) * 6
        assert _counts(stack) == (len(texts), 0, len(texts))
        assert _one_decision_each(stack)
        assert "Task moderation.score_comment" in stack.log("worker-2"), "both workers worked"
    finally:
        stack.stop()


def test_database_down_is_a_503_with_retry_after_and_the_error_body(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with postgres_database() as url:
        stack = Stack(tmp_path_factory.mktemp("db-down"), url).start()
        try:
            with stack.client() as client:
                assert client.post("/v1/comments", json=comment("db-1", "Hi.")).status_code == 202
            if stack.engine is not None:
                stack.engine.dispose()
            admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                name = make_url(url).database
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()
            with stack.client() as client:
                response = client.post("/v1/comments", json=comment("db-2", "Hello."))
                ready = client.get("/readyz")
        finally:
            stack.stop()
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json()["error"] == "unavailable"
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("error")
