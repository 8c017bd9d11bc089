"""OpenAI's own Python client, pointed at the service, moderates unchanged; bad input gets
OpenAI's error body naming `input`, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types import ModerationCreateResponse

from service.core.db import session_scope
from service.sites.keys import revoke_key
from tests.factories import CIVIL, TOXIC
from tests.stack import Stack, StackSpec

pytestmark = pytest.mark.integration

STACK = StackSpec(keys={"news-revoked": ("news", "submitter")})

GERMAN = (
    "Vielen Dank für diesen ausgezeichneten Artikel über die Friedensgespräche, "
    "er war sehr informativ."
)
THREAT = "I will find you and beat you until you bleed."
UNMODELLED = (
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence/graphic",
)


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key=stack.keys["news-submitter"], base_url=f"{stack.base_url}/v1", max_retries=0
    ) as sdk:
        yield sdk


def _raw(stack: Stack, content: bytes | Iterator[bytes], key: str = "news-submitter") -> Any:
    headers = {"Authorization": f"Bearer {stack.keys[key]}", "Content-Type": "application/json"}
    return httpx.post(
        f"{stack.base_url}/v1/moderations", content=content, headers=headers, timeout=30
    )


def _openai_error(response: httpx.Response) -> dict[str, Any]:
    """The error object, after checking the body is exactly OpenAI's shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def test_a_toxic_comment_is_flagged_as_harassment_in_the_sdk_types(
    client: openai.OpenAI,
) -> None:
    answer = client.moderations.create(input=TOXIC[0], model="omni-moderation-latest")

    assert isinstance(answer, ModerationCreateResponse)
    assert answer.id.startswith("modr-") and len(answer.id) > len("modr-")
    assert answer.model == "omni-moderation-latest"
    [result] = answer.results
    assert result.flagged is True
    assert result.categories.harassment is True
    assert result.categories.hate is False
    assert result.category_scores.harassment >= 0.2
    assert result.category_scores.sexual == 0.0
    assert result.category_applied_input_types.harassment == ["text"]
    raw = result.model_dump(by_alias=True)
    for category in UNMODELLED:
        assert raw["categories"][category] is False
        assert raw["category_scores"][category] == 0.0
        assert raw["category_applied_input_types"][category] == ["text"]


def test_a_threat_is_harassment_threatening_and_violence(client: openai.OpenAI) -> None:
    [result] = client.moderations.create(input=THREAT, model="omni-moderation-latest").results

    assert result.flagged is True
    assert result.categories.harassment_threatening is True
    assert result.categories.violence is True
    assert result.category_scores.violence == result.category_scores.harassment_threatening
    assert result.category_scores.harassment >= result.category_scores.harassment_threatening


def test_a_civil_comment_is_not_flagged(client: openai.OpenAI) -> None:
    [result] = client.moderations.create(input=CIVIL[0], model="omni-moderation-latest").results

    assert result.flagged is False
    assert not any(result.categories.model_dump().values())
    assert all(score < 0.2 for score in result.category_scores.model_dump().values())


def test_a_list_of_inputs_is_answered_in_order(client: openai.OpenAI) -> None:
    texts = [CIVIL[1], TOXIC[1], CIVIL[2], TOXIC[2], CIVIL[3]]

    answer = client.moderations.create(input=texts, model="omni-moderation-latest")

    assert [r.flagged for r in answer.results] == [False, True, False, True, False]


def test_an_empty_string_is_accepted_and_not_flagged(client: openai.OpenAI) -> None:
    [result] = client.moderations.create(input="", model="omni-moderation-latest").results

    assert result.flagged is False


def test_a_german_comment_follows_the_site_policy_unscored(client: openai.OpenAI) -> None:
    # The model knows English only; the default policy holds other languages for a person.
    [result] = client.moderations.create(input=GERMAN, model="omni-moderation-latest").results

    assert result.flagged is True
    assert not any(result.categories.model_dump().values())
    assert set(result.category_scores.model_dump().values()) == {0.0}


@pytest.mark.parametrize("key", ["news-moderator", "news-site_admin"])
def test_every_role_may_score(stack: Stack, key: str) -> None:
    with openai.OpenAI(
        api_key=stack.keys[key], base_url=f"{stack.base_url}/v1", max_retries=0
    ) as sdk:
        answer = sdk.moderations.create(input=TOXIC[3], model="text-moderation-stable")

    assert answer.model == "text-moderation-stable"  # any name is accepted and echoed
    assert answer.results[0].flagged is True


def test_the_model_defaults_and_unknown_fields_are_ignored(stack: Stack) -> None:
    response = _raw(stack, b'{"input": ["fine", "also fine"], "future_field": {"x": 1}}')

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "omni-moderation-latest"
    assert len(body["results"]) == 2
    assert len(body["results"][0]["categories"]) == 13


def test_a_hundred_inputs_are_accepted(client: openai.OpenAI) -> None:
    texts = [CIVIL[i % len(CIVIL)] for i in range(100)]

    answer = client.moderations.create(input=texts, model="omni-moderation-latest")

    assert len(answer.results) == 100


def test_an_unknown_key_is_an_authentication_error(stack: Stack) -> None:
    with (
        openai.OpenAI(api_key="not-a-key", base_url=f"{stack.base_url}/v1", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.moderations.create(input="hello", model="omni-moderation-latest")

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "invalid_api_key"


def test_a_missing_or_revoked_key_is_401_invalid_api_key(stack: Stack) -> None:
    missing = httpx.post(f"{stack.base_url}/v1/moderations", json={"input": "hi"}, timeout=30)
    with session_scope(stack.sessions) as session:
        revoke_key(session, stack.keys["news-revoked"][:10])
    revoked = _raw(stack, b'{"input": "hi"}', key="news-revoked")

    for response in (missing, revoked):
        assert response.status_code == 401
        assert _openai_error(response)["code"] == "invalid_api_key"


def test_too_many_inputs_is_a_bad_request_naming_input(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.moderations.create(input=["hello"] * 101, model="omni-moderation-latest")

    assert caught.value.param == "input"
    assert "100" in caught.value.message


BAD_INPUTS: list[tuple[str, bytes]] = [
    ("missing", b'{"model": "omni-moderation-latest"}'),
    ("null", b'{"input": null}'),
    ("number", b'{"input": 42}'),
    ("boolean", b'{"input": true}'),
    ("object", b'{"input": {"text": "hi"}}'),
    ("empty_list", b'{"input": []}'),
    ("list_of_numbers", b'{"input": ["fine", 1]}'),
    ("nested_list", b'{"input": [["fine"]]}'),
    ("multi_modal", b'{"input": [{"type": "text", "text": "hi"}]}'),
    ("over_100", b'{"input": [' + b",".join([b'"x"'] * 101) + b"]}"),
    ("nul", b'{"input": "hello\\u0000world"}'),
    ("nul_in_list", b'{"input": ["fine", "bad\\u0000"]}'),
    ("over_text_limit", b'{"input": "' + b"a" * 10_001 + b'"}'),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_INPUTS], ids=[n for n, _ in BAD_INPUTS])
def test_bad_input_is_a_400_in_openai_shape_naming_input(stack: Stack, body: bytes) -> None:
    response = _raw(stack, body)

    assert response.status_code == 400, response.text
    error = _openai_error(response)
    assert error["param"] == "input"
    assert error["type"] == "invalid_request_error"


def test_a_model_that_is_not_a_string_names_model(stack: Stack) -> None:
    response = _raw(stack, b'{"input": "hi", "model": 7}')

    assert response.status_code == 400
    assert _openai_error(response)["param"] == "model"


@pytest.mark.parametrize("body", [b"", b'{"input": "hi"', b"input=hi", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_a_400_in_openai_shape(
    stack: Stack, body: bytes
) -> None:
    response = _raw(stack, body)

    assert response.status_code == 400, response.text
    assert _openai_error(response)["type"] == "invalid_request_error"


def test_a_body_over_64_kb_is_a_413_in_openai_shape(stack: Stack) -> None:
    body = b'{"input": "' + b"a" * (65 * 1024) + b'"}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield from (body[i : i + 8192] for i in range(0, len(body), 8192))

    for response in (_raw(stack, body), _raw(stack, chunks())):
        assert response.status_code == 413, response.text
        assert _openai_error(response)["type"] == "invalid_request_error"
