"""Quotas against a running stack: a key over its burst waits, in each caller's own error format,
and an address that keeps failing to authenticate waits too, whatever key it sends next."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.stack import Stack, StackSpec

pytestmark = pytest.mark.integration

# A burst of 5 refilling at 1 a second (a window of 5 s); 4 failed authentications a minute.
STACK = StackSpec(
    env={
        "MODERATION_KEY_BURST": "5",
        "MODERATION_KEY_REQUESTS_PER_SECOND": "1",
        "MODERATION_FAILED_AUTH_PER_MINUTE": "4",
        # The stack's own start polls /readyz a few times from this address.
        "MODERATION_ANONYMOUS_REQUESTS_PER_MINUTE": "40",
    },
    keys={
        name: ("news", "submitter")
        for name in ("api", "perspective", "openai", "spare", "never-used")
    },
)


def test_a_key_over_its_burst_gets_429_with_retry_after_and_other_keys_go_on(
    stack: Stack,
) -> None:
    with stack.client("api") as client:
        answers = [client.get("/v1/comments/nope").status_code for _ in range(5)]
        over = client.get("/v1/comments/nope")
    assert answers == [404] * 5
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 5
    assert over.json()["error"] == "rate_limited"
    with stack.client("spare") as other:
        assert other.get("/v1/comments/nope").status_code == 404, "quotas are per key"


def test_perspective_callers_get_googles_resource_exhausted(stack: Stack) -> None:
    url = f"{stack.base_url}/v1alpha1/comments:analyze"
    body = {"comment": {"text": "Thanks for this."}, "requestedAttributes": {"TOXICITY": {}}}
    key = {"key": stack.keys["perspective"]}
    for _ in range(5):
        assert httpx.post(url, params=key, json=body).status_code == 200
    over = httpx.post(url, params=key, json=body)
    assert over.status_code == 429 and "Retry-After" in over.headers
    error = over.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"


def test_openai_callers_get_a_rate_limit_error(stack: Stack) -> None:
    client = openai.OpenAI(
        api_key=stack.keys["openai"], base_url=f"{stack.base_url}/v1", max_retries=0
    )
    for _ in range(5):
        client.moderations.create(input="Thanks for this.")
    with pytest.raises(openai.RateLimitError) as caught:
        client.moderations.create(input="Thanks for this.")
    assert caught.value.code == "rate_limit_exceeded"


def test_routes_without_a_key_are_limited_per_address_in_the_callers_format(
    stack: Stack,
) -> None:
    answers = [httpx.get(f"{stack.base_url}/readyz") for _ in range(41)]
    codes = [a.status_code for a in answers]
    assert codes[0] == 200 and codes[-1] == 429, codes
    over = answers[-1]
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.json()["error"] == "rate_limited" and "this address" in over.json()["detail"]
    discovery = httpx.get(f"{stack.base_url}/$discovery/rest", params={"version": "v1alpha1"})
    assert discovery.status_code == 429 and "Retry-After" in discovery.headers
    assert discovery.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    # Liveness is never limited (it costs less than counting it), nor are keyed requests.
    assert httpx.get(f"{stack.base_url}/healthz").status_code == 200
    with stack.client("spare") as client:
        assert client.get("/v1/comments/nope").status_code == 404


def test_an_address_that_keeps_failing_waits_unless_its_key_just_worked(stack: Stack) -> None:
    # Last in the module: every request of these tests comes from 127.0.0.1.
    url = f"{stack.base_url}/v1/comments/nope"
    for _ in range(4):
        bad = httpx.get(url, headers={"Authorization": "Bearer mk_guessing"})
        assert bad.status_code == 401
    guess = httpx.get(url, headers={"Authorization": f"Bearer {stack.keys['never-used']}"})
    assert guess.status_code == 429 and guess.json()["error"] == "rate_limited"
    # A backend behind the same address, whose key authenticated a moment ago, goes on.
    working = httpx.get(url, headers={"Authorization": f"Bearer {stack.keys['spare']}"})
    assert working.status_code == 404
    assert "auth_failed" in stack.log("api"), "each failure is logged"
