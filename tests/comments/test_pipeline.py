"""The whole comment path against real Redis, a real Celery worker and the API, on both DBs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from service.core.tables import Comment, Decision
from tests.factories import CIVIL, TOXIC, comment
from tests.stack import Stack, StackSpec, wait_until

pytestmark = pytest.mark.integration


STACK = StackSpec(databases=("sqlite", "postgresql"))


def _decisions_for(stack: Stack, comment_id: str) -> int:
    with stack.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Decision).where(Decision.comment_id == comment_id)
            )
            or 0
        )


def test_fifty_comments_toxic_held_civil_approved_each_decided_once(stack: Stack) -> None:
    cases = [(f"toxic-{i}", text, "held") for i, text in enumerate(TOXIC)]
    cases += [(f"civil-{i}", text, "approved") for i, text in enumerate(CIVIL)]

    def post(case: tuple[str, str, str]) -> dict[str, object]:
        with stack.client() as client:
            response = client.post("/v1/comments?wait_ms=5000", json=comment(case[0], case[1]))
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, cases))

    wrong = [
        (case[1], result["status"], result["decision"]["scores"])  # type: ignore[index]
        for case, result in zip(cases, results, strict=True)
        if result["status"] != case[2]
    ]
    assert wrong == []
    for result in results:
        decision = result["decision"]
        assert isinstance(decision, dict)
        assert decision["model_version"]
        assert decision["reasons"], "every decision says why"
        assert set(decision["scores"]) >= {"toxic", "insult", "threat"}
    with stack.sessions() as session:
        ids = [str(r["id"]) for r in results]
        per_comment = session.execute(
            select(Decision.comment_id, func.count())
            .where(Decision.comment_id.in_(ids))
            .group_by(Decision.comment_id)
        ).all()
    assert sorted(count for _, count in per_comment) == [1] * 50


def test_held_comment_reasons_name_attribute_threshold_and_spans(stack: Stack) -> None:
    with stack.client() as client:
        body = client.post(
            "/v1/comments?wait_ms=5000",
            json=comment("reasons-1", "You are a stupid idiot and a liar."),
        ).json()
    assert body["status"] == "held"
    reason = body["decision"]["reasons"][0]
    assert reason["code"] == "attribute_over_threshold"
    assert reason["score"] >= reason["threshold"]
    spans = reason["spans"]
    assert spans, "a hold names the words behind it"
    text = "You are a stupid idiot and a liar."
    assert all(text[s["start"] : s["end"]] == s["text"] for s in spans)
    assert any(s["text"].lower() in {"stupid", "idiot", "stupid idiot"} for s in spans)


def test_comment_in_another_language_is_held_unscored_by_the_worker(stack: Stack) -> None:
    with stack.client() as client:
        body = client.post(
            "/v1/comments?wait_ms=5000",
            json=comment("lang-1", "Ich bin völlig anderer Meinung als der Minister."),
        ).json()
    assert body["status"] == "held"
    reason = body["decision"]["reasons"][0]
    assert reason["code"] == "unsupported_language"
    assert reason["language"] == "de"


def test_same_external_id_twice_returns_the_first_comment_scored_once(stack: Stack) -> None:
    payload = comment("dup-1", "I hope the talks succeed.")
    with stack.client() as client:
        first = client.post("/v1/comments?wait_ms=5000", json=payload)
        second = client.post("/v1/comments?wait_ms=5000", json=payload)
        third = client.post("/v1/comments", json=payload)
    assert first.status_code == second.status_code == third.status_code == 200
    assert first.json()["id"] == second.json()["id"] == third.json()["id"]
    assert second.json()["decision"] == first.json()["decision"]
    assert _decisions_for(stack, first.json()["id"]) == 1
    with stack.sessions() as session:
        count = session.scalar(
            select(func.count()).select_from(Comment).where(Comment.external_id == "dup-1")
        )
    assert count == 1


def test_concurrent_duplicates_store_one_comment(stack: Stack) -> None:
    payload = comment("dup-race", "Both sides should keep talking.")

    def post(_: int) -> str:
        with stack.client() as client:
            response = client.post("/v1/comments?wait_ms=3000", json=payload)
        assert response.status_code in (200, 202), response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(pool.map(post, range(12)))
    assert len(ids) == 1
    comment_id = ids.pop()
    assert wait_until(lambda: _decisions_for(stack, comment_id) == 1, timeout=10)


def test_same_external_id_with_other_text_is_a_conflict(stack: Stack) -> None:
    with stack.client() as client:
        client.post("/v1/comments?wait_ms=5000", json=comment("dup-2", "First version."))
        response = client.post("/v1/comments", json=comment("dup-2", "Edited version."))
    assert response.status_code == 409
    assert response.json()["error"] == "external_id_conflict"
    assert response.json()["field"] == "text"
    with stack.client() as client:
        stored = client.get("/v1/comments/by-external-id/dup-2").json()
    assert stored["text"] == "First version."


def test_without_wait_answers_pending_and_the_decision_can_be_read_later(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post("/v1/comments", json=comment("later-1", "Thanks for the update."))
        assert response.status_code == 202
        assert response.json()["status"] == "pending"
        comment_id = response.json()["id"]

        def decided() -> dict[str, object] | None:
            body = client.get(f"/v1/comments/{comment_id}").json()
            return body if body["status"] != "pending" else None

        body = wait_until(decided, timeout=10)
    assert body is not None
    assert body["status"] == "approved"
    assert body["text"] == "Thanks for the update."
    assert body["author_id"] == "reader-1"
    assert body["decision"]["action"] == "approve"


def test_comment_of_another_site_is_not_found(stack: Stack) -> None:
    with stack.client() as client:
        own = client.post("/v1/comments?wait_ms=5000", json=comment("site-1", "Hello.")).json()
    with stack.client("other-submitter") as other:
        assert other.get(f"/v1/comments/{own['id']}").status_code == 404
        assert other.get("/v1/comments/by-external-id/site-1").status_code == 404
        # The same external id on another site is another comment.
        mine = other.post("/v1/comments?wait_ms=5000", json=comment("site-1", "Hi there."))
    assert mine.status_code == 200
    assert mine.json()["id"] != own["id"]


def test_score_endpoint_scores_texts_without_storing_them(stack: Stack) -> None:
    with stack.sessions() as session:
        before = session.scalar(select(func.count()).select_from(Comment))
    with stack.client() as client:
        response = client.post(
            "/v1/score",
            json={"texts": ["You absolute idiot.", "Lovely weather today."], "explain": True},
        )
    assert response.status_code == 200
    body = response.json()
    toxic, civil = body["results"]
    assert toxic["scores"]["toxic"] > 0.5 > civil["scores"]["toxic"]
    assert any(s["text"].lower() == "idiot" for s in toxic["spans"])
    with stack.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == before


def test_health_and_readiness(stack: Stack) -> None:
    with stack.client("") as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["reasons"] == []
    assert ready["checks"]["database"] == ready["checks"]["redis"] == "ok"
    assert ready["checks"]["model"].startswith("tfidf-lr-")
    assert ready["checks"]["scoring_workers"] >= 1


def test_openapi_docs_are_served(stack: Stack) -> None:
    with stack.client("") as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
    assert "/v1/comments" in spec["paths"]
