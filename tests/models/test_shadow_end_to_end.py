"""Shadow mode in a running deployment: the workers pick up a shadow within seconds, score live
comments with it beside the active model, and the report endpoint sums it up."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from classifier import save_model
from service.core.db import session_scope
from service.core.tables import Decision, ShadowScore
from service.models.registry import active_version, register_version, set_shadow
from tests.factories import CIVIL, TOXIC, comment, tiny_model
from tests.stack import Stack, StackSpec, wait_until

pytestmark = pytest.mark.integration


STACK = StackSpec(databases=("sqlite", "postgresql"))


def _shadow_rows(stack: Stack, version: str) -> int:
    with stack.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(ShadowScore).where(ShadowScore.version == version)
            )
            or 0
        )


def test_a_candidate_in_shadow_scores_live_comments_and_is_reported(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with stack.client() as client:
        first = client.post("/v1/comments?wait_ms=5000", json=comment("warm-up", "Hello there."))
    assert first.status_code == 200, first.text
    active = first.json()["decision"]["model_version"]
    candidate = save_model(tiny_model(1), tmp_path_factory.mktemp("candidate"))
    with session_scope(stack.sessions) as session:
        version = register_version(session, candidate, created_by="test").version
        set_shadow(session, version, actor="test")
    shadow_set_at = time.monotonic()

    sent = 0

    def shadow_seen() -> bool:
        nonlocal sent
        with stack.client() as client:
            client.post("/v1/comments?wait_ms=5000", json=comment(f"probe-{sent}", "Nice piece."))
        sent += 1
        return _shadow_rows(stack, version) > 0

    assert wait_until(shadow_seen, timeout=10, interval=0.2), stack.log("worker")
    assert time.monotonic() - shadow_set_at < 10

    ids: dict[str, bool] = {}
    with stack.client() as client:
        for i, text in enumerate(TOXIC[:10] + CIVIL[:10]):
            body = client.post(
                "/v1/comments?wait_ms=5000", json=comment(f"shadowed-{i}", text)
            ).json()
            assert body["decision"]["model_version"] == active, "the shadow never decides"
            ids[body["id"]] = body["status"] == "held"
    held = [cid for cid, is_held in ids.items() if is_held]
    assert held
    with stack.client("news-moderator") as moderators:
        for cid in held:
            review = moderators.post(f"/v1/comments/{cid}/review", json={"action": "reject"})
            assert review.status_code == 200, review.text
        report = moderators.get(f"/v1/models/{version}/shadow")
        missing = moderators.get("/v1/models/tfidf-lr-000000000000/shadow")
    with stack.client() as submitters:
        refused = submitters.get(f"/v1/models/{version}/shadow")
    assert report.status_code == 200, report.text
    assert missing.status_code == 404 and missing.json()["error"] == "model_not_found"
    assert refused.status_code == 403

    body = report.json()
    assert body["site"] == "news" and body["in_shadow"] and body["active_version"] == active
    assert body["scored"] >= 20 and body["compared_with"] == {active: body["scored"]}
    assert 0.0 <= body["agreement"]["share"] <= 1.0
    assert sum(sum(row.values()) for row in body["agreement"]["table"].values()) == body["scored"]
    assert body["reviews"]["reviewed"] == len(held)
    assert body["reviews"]["active"]["hold_reject"] == len(held)
    with stack.sessions() as session:
        assert active_version(session) == active
        decided = session.scalars(
            select(Decision.model_version).where(Decision.comment_id.in_(list(ids)))
        ).all()
        shadowed = session.scalar(
            select(func.count())
            .select_from(ShadowScore)
            .where(ShadowScore.comment_id.in_(list(ids)), ShadowScore.version == version)
        )
    assert set(decided) == {active}
    assert shadowed == len(ids), "every comment the active model scored, the shadow scored too"
