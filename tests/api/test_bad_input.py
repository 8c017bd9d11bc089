"""Bad input gets a clear 4xx naming the problem, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from service.core.tables import Comment
from tests.factories import comment
from tests.stack import Stack

pytestmark = pytest.mark.integration

GOOD = comment("bad-input-base", "A perfectly fine comment.")


def _stored(stack: Stack) -> int:
    with stack.sessions() as session:
        return session.scalar(select(func.count()).select_from(Comment)) or 0


def _post_raw(stack: Stack, content: bytes, **headers: str) -> httpx.Response:
    with stack.client() as client:
        return client.post(
            "/v1/comments",
            content=content,
            headers={"Content-Type": "application/json", **headers},
        )


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("text_wrong_type", {**GOOD, "text": 123}, "text"),
    ("external_id_wrong_type", {**GOOD, "external_id": ["a"]}, "external_id"),
    ("metadata_wrong_type", {**GOOD, "metadata": "x"}, "metadata"),
    ("unknown_field", {**GOOD, "colour": "red"}, "colour"),
    ("missing_external_id", {k: v for k, v in GOOD.items() if k != "external_id"}, "external_id"),
    ("missing_text", {k: v for k, v in GOOD.items() if k != "text"}, "text"),
    ("empty_text", {**GOOD, "text": ""}, "text"),
    ("whitespace_text", {**GOOD, "text": " \n\t "}, "text"),
    ("text_over_limit", {**GOOD, "text": "a" * 10_001}, "text"),
    ("nul_in_text", {**GOOD, "text": "hello\x00world"}, "text"),
    ("nul_in_author", {**GOOD, "author_id": "u\x001"}, "author_id"),
    ("blank_article", {**GOOD, "article_id": "  "}, "article_id"),
    ("huge_metadata", {**GOOD, "metadata": {"k": "v" * 5000}}, "metadata"),
]


@pytest.mark.parametrize(("body", "field"), [(b, f) for _, b, f in BAD_BODIES],
                         ids=[name for name, _, _ in BAD_BODIES])  # fmt: skip
def test_invalid_comment_is_refused_naming_the_field(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    before = _stored(stack)
    with stack.client() as client:
        response = client.post("/v1/comments", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "invalid"
    assert error["field"] == field
    assert field in error["detail"]
    assert _stored(stack) == before


def test_malformed_json_is_a_400(stack: Stack) -> None:
    before = _stored(stack)
    response = _post_raw(stack, b'{"external_id": "x", "text": ')
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert _stored(stack) == before


def test_invalid_utf8_is_a_400(stack: Stack) -> None:
    before = _stored(stack)
    body = b'{"external_id": "u8", "article_id": "a", "author_id": "b", "text": "caf\xe9 \xff"}'
    response = _post_raw(stack, body)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert _stored(stack) == before


def test_body_over_64_kb_is_a_413(stack: Stack) -> None:
    before = _stored(stack)
    response = _post_raw(stack, b'{"text": "' + b"a" * 70_000 + b'"}')
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert _stored(stack) == before


def test_chunked_body_over_64_kb_is_a_413(stack: Stack) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(20):
            yield b"a" * 4096
        yield b'"}'

    with stack.client() as client:
        response = client.post(
            "/v1/comments", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413


@pytest.mark.parametrize("wait_ms", ["-1", "5001", "soon"])
def test_wait_ms_out_of_range_is_refused(stack: Stack, wait_ms: str) -> None:
    with stack.client() as client:
        response = client.post(f"/v1/comments?wait_ms={wait_ms}", json=GOOD)
    assert response.status_code == 422
    assert response.json()["field"] == "wait_ms"


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer mk_not-a-real-key"}, "unknown or revoked API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing API key"),
    ],
)
def test_missing_or_unknown_key_is_a_401(
    stack: Stack, headers: dict[str, str], detail: str
) -> None:
    before = _stored(stack)
    response = httpx.post(f"{stack.base_url}/v1/comments", json=GOOD, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert detail in response.json()["detail"]
    assert _stored(stack) == before


def test_revoked_key_is_a_401(stack: Stack) -> None:
    with stack.client("other-submitter") as client:
        assert client.get("/v1/comments/by-external-id/nothing").status_code == 404
        with stack.client("news-operator") as operator:  # revoked as a user does
            assert operator.delete(f"/v1/keys/{stack.keys['other-submitter'][:10]}").is_success
        response = client.post("/v1/comments", json=GOOD)
    assert response.status_code == 401
    unknown = httpx.post(
        f"{stack.base_url}/v1/comments", json=GOOD, headers={"Authorization": "Bearer mk_never"}
    )
    # One answer for a revoked key and a made-up one: a guesser learns nothing from either.
    assert response.json() == unknown.json()


def test_moderator_key_cannot_submit(stack: Stack) -> None:
    before = _stored(stack)
    with stack.client("news-moderator") as client:
        response = client.post("/v1/comments", json=GOOD)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert _stored(stack) == before


@pytest.mark.parametrize(
    "path", ["/v1/comments/0123456789abcdef0123456789abcdef", "/v1/comments/by-external-id/nope"]
)
def test_unknown_comment_is_a_404(stack: Stack, path: str) -> None:
    with stack.client() as client:
        response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "comment_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"texts": []}, "texts"),
        ({"texts": ["x"] * 101}, "texts"),
        ({"texts": ["a" * 10_001]}, "texts.0"),
        ({"texts": "not a list"}, "texts"),
    ],
)
def test_bad_score_request_is_refused(stack: Stack, body: dict[str, Any], field: str) -> None:
    with stack.client() as client:
        response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == field
