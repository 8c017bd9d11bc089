"""Promotion under load: the scoring worker swaps models without a restart, a failure or a
comment decided twice, and every decision names the version that made it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from classifier import save_model
from classifier.artifact import DEFAULT_MODEL_DIR, artifact_identity
from service.core.db import session_scope
from service.core.tables import Comment, Decision
from service.models.registry import promote, register_version, rollback
from tests.factories import CIVIL, TOXIC, comment, tiny_model
from tests.stack import Stack, wait_until

pytestmark = pytest.mark.integration

SHIPPED = artifact_identity(DEFAULT_MODEL_DIR)[0]


def _stream(stack: Stack, prefix: str, stop: threading.Event, sent: list[str]) -> None:
    texts = TOXIC + CIVIL
    with stack.client() as client:
        i = 0
        while not stop.is_set():
            response = client.post("/v1/comments", json=comment(f"{prefix}-{i}", texts[i % 50]))
            assert response.status_code in (200, 202), response.text
            sent.append(response.json()["id"])
            i += 1
            time.sleep(0.01)


def test_promotion_and_rollback_under_load_switch_versions_within_seconds(
    stack: Stack, tmp_path: Path
) -> None:
    candidate_dir = save_model(tiny_model(3), tmp_path / "candidate")
    candidate = artifact_identity(candidate_dir)[0]
    with session_scope(stack.sessions) as session:
        register_version(session, candidate_dir, created_by="test")
    stop, sent = threading.Event(), list[str]()
    streamer = threading.Thread(target=_stream, args=(stack, "load", stop, sent))
    streamer.start()
    try:
        time.sleep(1.0)
        with session_scope(stack.sessions) as session:
            promote(session, candidate, actor="test", reason="hot reload under load")
        promoted_at = time.monotonic()
        with stack.client("news-moderator") as reader:
            # Comments submitted from now on must be decided by the candidate within 5 s.
            def decided_by_candidate() -> bool:
                with stack.sessions() as session:
                    latest = session.scalar(
                        select(Decision.model_version).order_by(Decision.decided_at.desc()).limit(1)
                    )
                return latest == candidate

            assert wait_until(decided_by_candidate, timeout=5)
            switched_after = time.monotonic() - promoted_at
            time.sleep(1.0)
            with session_scope(stack.sessions) as session:
                rollback(session, actor="test", reason="back again")
            time.sleep(2.0)
            assert reader.get("/readyz").status_code == 200
    finally:
        stop.set()
        streamer.join(timeout=30)
    ids = list(sent)

    def all_decided() -> bool:
        with stack.sessions() as session:
            pending = session.scalar(
                select(func.count())
                .select_from(Comment)
                .where(Comment.id.in_(ids), Comment.status == "pending")
            )
        return pending == 0

    assert wait_until(all_decided, timeout=60)
    with stack.sessions() as session:
        rows = session.execute(
            select(Decision.comment_id, Decision.model_version, Decision.decided_at)
            .where(Decision.comment_id.in_(ids))
            .order_by(Decision.decided_at)
        ).all()
    assert len(rows) == len(ids) == len({r.comment_id for r in rows}), "each decided once"
    versions = [r.model_version for r in rows]
    assert set(versions) == {SHIPPED, candidate}
    # In decision order: shipped, then the candidate, then the shipped model again.
    changes = [v for i, v in enumerate(versions) if i == 0 or v != versions[i - 1]]
    assert changes == [SHIPPED, candidate, SHIPPED], changes
    assert switched_after < 5
