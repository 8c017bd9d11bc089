"""Keys remembered per API process: never once the key changed, in this process or another."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from service.core.tables import utcnow
from service.http.key_cache import KeyCache
from service.sites.keys import create_key
from tests.stack import Stack, StackSpec

MODERATION = str(Path(sys.executable).parent / "moderation")
STACK = StackSpec(keys={"cli-revoked": ("news", "submitter"), "api-revoked": ("news", "moderator")})


def _live() -> KeyCache[str]:
    cache: KeyCache[str] = KeyCache(ttl=60)
    cache.set_live(True)
    return cache


def test_nothing_is_remembered_while_announcements_cannot_arrive() -> None:
    cache: KeyCache[str] = KeyCache(ttl=60)
    cache.put("d", "caller", revoked_at=None, generation=cache.generation)
    assert cache.get("d") is None
    live = _live()
    live.put("d", "caller", revoked_at=None, generation=live.generation)
    assert live.get("d") == "caller"
    live.set_live(False)  # the subscription dropped: it may miss a revocation
    assert live.get("d") is None


def test_an_answer_read_while_a_key_changed_is_not_kept() -> None:
    cache = _live()
    before = cache.generation
    cache.forget()  # announced while the database look-up ran
    cache.put("d", "caller", revoked_at=None, generation=before)
    assert cache.get("d") is None


def test_a_rotated_key_is_remembered_only_until_its_grace_period_ends() -> None:
    cache = _live()
    cache.put(
        "old", "caller", revoked_at=utcnow() + timedelta(seconds=0.2), generation=cache.generation
    )
    cache.put(
        "gone", "caller", revoked_at=utcnow() - timedelta(seconds=1), generation=cache.generation
    )
    assert cache.get("old") == "caller" and cache.get("gone") is None
    time.sleep(0.3)
    assert cache.get("old") is None


def test_entries_expire_and_the_cache_stays_bounded() -> None:
    cache: KeyCache[str] = KeyCache(ttl=0.1, size=3)
    cache.set_live(True)
    for n in range(5):
        cache.put(str(n), "caller", revoked_at=None, generation=cache.generation)
    assert sum(cache.get(str(n)) is not None for n in range(5)) <= 3
    time.sleep(0.15)
    assert cache.get("4") is None


@pytest.mark.integration
def test_a_key_revoked_through_the_api_is_refused_by_its_very_next_request(stack: Stack) -> None:
    with stack.client("api-revoked") as client:
        assert client.get("/v1/queue").status_code == 200  # remembered from here on
        with stack.client("news-operator") as operator:
            prefix = stack.keys["api-revoked"][:10]
            assert operator.delete(f"/v1/keys/{prefix}").status_code == 200
        refused = client.get("/v1/queue")
    assert refused.status_code == 401, refused.text


@pytest.mark.integration
def test_a_key_revoked_from_the_command_line_is_refused_at_once(stack: Stack) -> None:
    key = stack.keys["cli-revoked"]
    url = f"{stack.base_url}/v1/comments/nope"
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(url, headers=headers).status_code == 404  # authenticated, remembered
    revoked = subprocess.run(
        [MODERATION, "keys", "revoke", key[:10]],
        env=stack.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr
    assert "could not reach Redis" not in revoked.stderr
    # Another process revoked it: the API hears of it through Redis, well within the 30 s
    # it would otherwise remember the key.
    deadline = time.monotonic() + 2
    while httpx.get(url, headers=headers).status_code != 401:
        assert time.monotonic() < deadline, "the API still accepts a revoked key"
        time.sleep(0.05)


@pytest.mark.integration
def test_a_new_key_works_at_once(stack: Stack) -> None:
    with stack.sessions.begin() as session:
        _, plain = create_key(session, site_name="news", role="submitter")
    answer = httpx.get(
        f"{stack.base_url}/v1/comments/nope", headers={"Authorization": f"Bearer {plain}"}
    )
    assert answer.status_code == 404
