"""Bad moderator input gets a clear 4xx naming the problem, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from service.core.db import session_scope
from service.core.tables import Comment, Review, utcnow
from tests.factories import CIVIL, TOXIC, comment
from tests.stack import Stack, StackSpec

pytestmark = pytest.mark.integration


STACK = StackSpec(keys={"news-moderator-2": ("news", "moderator")})


def _submit(stack: Stack, external_id: str, text: str, key: str = "news-submitter") -> str:
    with stack.client(key) as client:
        response = client.post("/v1/comments?wait_ms=5000", json=comment(external_id, text))
    assert response.status_code == 200, response.text
    return response.json()["id"]  # type: ignore[no-any-return]


def _unchanged(stack: Stack, comment_id: str, status: str) -> None:
    with stack.sessions() as session:
        assert session.get(Comment, comment_id).status == status  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).select_from(Review)) == 0


def _check(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field and body["detail"], body
    return body  # type: ignore[no-any-return]


def test_each_bad_review_is_refused_with_a_clear_error(stack: Stack) -> None:
    held = _submit(stack, "bad-held", TOXIC[1])
    approved = _submit(stack, "bad-approved", CIVIL[1])
    foreign = _submit(stack, "bad-foreign", TOXIC[2], key="other-submitter")
    with stack.client("news-moderator") as mod:

        def review(comment_id: str, **body: Any) -> httpx.Response:
            return mod.post(f"/v1/comments/{comment_id}/review", json=body)

        _check(review(held, action="delete"), 422, "action")
        _check(review(held, action="reject", reason="RUDE"), 422, "reason")
        _check(review(held, action="reject", colour="red"), 422, "colour")
        _check(review("0" * 32, action="reject"), 404, "id")
        _check(review(foreign, action="reject"), 404, "id")
        assert _check(review(approved, action="reject"), 409, "id")["error"] == "not_reviewable"
        stale = _check(review(held, action="reject", version=99), 409, "version")
        assert stale["error"] == "stale_version"

        def bulk(ids: list[str]) -> httpx.Response:
            return mod.post("/v1/reviews", json={"ids": ids, "action": "reject"})

        _check(bulk([f"{i:032x}" for i in range(501)]), 422, "ids")
        _check(bulk([held, held]), 422, "ids")
        _check(bulk([]), 422, "ids")
        _check(bulk([held, foreign]), 404, "ids")
        _check(bulk([held, approved]), 409, "ids")
    _unchanged(stack, held, "held")
    _unchanged(stack, approved, "approved")


def test_claims_keep_others_out_and_an_expired_claim_is_refused(stack: Stack) -> None:
    held = _submit(stack, "claim-held", TOXIC[3])
    with stack.client("news-moderator") as first, stack.client("news-moderator-2") as second:
        claimed = first.post("/v1/queue/claim?limit=100").json()["items"]
        assert held in {i["id"] for i in claimed}
        assert held not in {
            i["id"] for i in second.post("/v1/queue/claim?limit=100").json()["items"]
        }
        taken = second.post(f"/v1/comments/{held}/review", json={"action": "approve"})
        assert _check(taken, 409, "id")["error"] == "claim_conflict"
        with session_scope(stack.sessions) as session:
            session.execute(update(Comment).values(claim_expires_at=utcnow()))
        expired = first.post(f"/v1/comments/{held}/review", json={"action": "reject"})
        assert "expired" in _check(expired, 409, "id")["detail"]
        _check(first.post("/v1/queue/claim?limit=0"), 422, "limit")
    _unchanged(stack, held, "held")
