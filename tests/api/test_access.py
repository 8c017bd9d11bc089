"""Who may do what: every endpoint x every role x own site / another site, on the real API.

A submitter cannot review; a moderator of one site can neither see nor touch another site's
comments, even by guessing their ids; only admins manage sites, keys, webhooks and policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from service.core.db import session_scope
from service.core.tables import Comment
from service.models.registry import active_version
from service.sites.keys import create_key
from tests.factories import TOXIC, comment
from tests.stack import Stack, StackSpec

pytestmark = pytest.mark.integration

ROLES = ("submitter", "moderator", "admin")
SUBMIT, MODERATE, ADMIN = ("submitter", "admin"), ("moderator", "admin"), ("admin",)
ANY = ROLES


@dataclass
class World:
    stack: Stack
    keys: dict[str, str]  # "news-moderator" -> plain key
    held: dict[str, str]  # site -> id of a held comment


# The matrix sets webhooks to a receiver on this machine: allowed here, as a deployment would
# allow its own private network.
STACK = StackSpec(
    keys={f"other-{role}": ("other", role) for role in ("moderator", "admin")},
    env={"MODERATION_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]'},
)


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    held = {}
    for site in ("news", "other"):
        with stack.client(f"{site}-submitter") as client:
            response = client.post(
                "/v1/comments?wait_ms=5000", json=comment(f"held-{site}", TOXIC[0])
            )
        assert response.json()["status"] == "held", response.text
        held[site] = response.json()["id"]
    return World(stack, stack.keys, held)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    # (world, target site) -> path; the target is "news" (the caller's own) or "other".
    path: Callable[[World, str], str]
    allowed: tuple[str, ...]
    # How a call aimed at another site is refused when the role is allowed: "404" when the
    # target is named by a comment id (another site's ids look missing), "site" when it is a
    # site-wide resource reached with ?site= (admins only), "admin" for admin routes that name
    # the site themselves (admins manage every site).
    other: str
    body: Callable[[World, str], Any] | None = None


def _site_q(site: str) -> str:
    return "" if site == "news" else f"?site={site}"


def _active_version(world: World) -> str:
    with session_scope(world.stack.sessions) as session:
        version = active_version(session)
    assert version is not None, "the stack registers the shipped model at start"
    return version


def _new_key_prefix(world: World, site: str) -> str:
    with session_scope(world.stack.sessions) as session:
        key, _ = create_key(session, site_name=site, role="submitter", name="throwaway")
        return key.prefix


ENDPOINTS = [
    Endpoint("submit", "POST", lambda w, s: "/v1/comments", SUBMIT, "own-only",
             lambda w, s: comment(f"m-{uuid.uuid4().hex}", "Thanks for the report.")),
    Endpoint("read comment", "GET", lambda w, s: f"/v1/comments/{w.held[s]}", ANY, "404"),
    Endpoint("score", "POST", lambda w, s: "/v1/score", ANY, "own-only",
             lambda w, s: {"texts": ["hello"]}),
    Endpoint("queue", "GET", lambda w, s: f"/v1/queue{_site_q(s)}", MODERATE, "site"),
    Endpoint("review", "POST", lambda w, s: f"/v1/comments/{w.held[s]}/review", MODERATE, "404",
             lambda w, s: {"action": "reject", "reason": "ABUSIVE"}),
    Endpoint("bulk review", "POST", lambda w, s: "/v1/reviews", MODERATE, "404",
             lambda w, s: {"ids": [w.held[s]], "action": "reject"}),
    Endpoint("history", "GET", lambda w, s: f"/v1/comments/{w.held[s]}/history", MODERATE, "404"),
    Endpoint("read author", "GET", lambda w, s: f"/v1/authors/reader-1{_site_q(s)}", MODERATE,
             "site"),
    Endpoint("set author", "POST", lambda w, s: f"/v1/authors/someone{_site_q(s)}", MODERATE,
             "site", lambda w, s: {"trust": "trusted"}),
    Endpoint("stats", "GET", lambda w, s: f"/v1/stats{_site_q(s)}", MODERATE, "site"),
    Endpoint("deliveries", "GET", lambda w, s: f"/v1/webhooks/deliveries{_site_q(s)}", MODERATE,
             "site"),
    Endpoint("list sites", "GET", lambda w, s: "/v1/sites", ADMIN, "own-only"),
    Endpoint("create site", "POST", lambda w, s: "/v1/sites", ADMIN, "own-only",
             lambda w, s: {"name": f"site-{uuid.uuid4().hex[:8]}"}),
    Endpoint("read site", "GET", lambda w, s: f"/v1/sites/{s}", ADMIN, "admin"),
    Endpoint("set policy", "PUT", lambda w, s: f"/v1/sites/{s}/policy", ADMIN, "admin",
             lambda w, s: {"thresholds": {"toxic": 0.2}}),
    Endpoint("read webhook", "GET", lambda w, s: f"/v1/sites/{s}/webhook", ADMIN, "admin"),
    Endpoint("set webhook", "PUT", lambda w, s: f"/v1/sites/{s}/webhook", ADMIN, "admin",
             lambda w, s: {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32}),
    Endpoint("remove webhook", "DELETE", lambda w, s: f"/v1/sites/{s}/webhook", ADMIN, "admin"),
    Endpoint("list keys", "GET", lambda w, s: f"/v1/keys?site={s}", ADMIN, "admin"),
    Endpoint("create key", "POST", lambda w, s: "/v1/keys", ADMIN, "admin",
             lambda w, s: {"site": s, "role": "moderator"}),
    Endpoint("revoke key", "DELETE", lambda w, s: f"/v1/keys/{_new_key_prefix(w, s)}", ADMIN,
             "admin"),
    Endpoint("rotate key", "POST", lambda w, s: f"/v1/keys/{_new_key_prefix(w, s)}/rotate",
             ADMIN, "admin"),
    Endpoint("list models", "GET", lambda w, s: "/v1/models", MODERATE, "own-only"),
    Endpoint("model events", "GET", lambda w, s: "/v1/models/events", MODERATE, "own-only"),
    Endpoint("training jobs", "GET", lambda w, s: "/v1/models/jobs", MODERATE, "own-only"),
    Endpoint("read model", "GET", lambda w, s: f"/v1/models/{_active_version(w)}", MODERATE,
             "own-only"),
    Endpoint("set shadow", "PUT", lambda w, s: "/v1/models/shadow", ADMIN, "own-only",
             lambda w, s: {"version": None}),
    Endpoint("shadow report", "GET",
             lambda w, s: f"/v1/models/{_active_version(w)}/shadow{_site_q(s)}", MODERATE, "site"),
    # Last: a claim makes the comment the claimer's, which other checks would then run into.
    Endpoint("claim", "POST", lambda w, s: f"/v1/queue/claim{_site_q(s)}", MODERATE, "site"),
]  # fmt: skip


def _expected(endpoint: Endpoint, role: str, target: str) -> str:
    if role not in endpoint.allowed:
        return "403"
    if target == "news" or endpoint.other == "admin":
        return "2xx"
    if endpoint.other == "site":
        return "2xx" if role == "admin" else "403"
    return "404"


CASES = [
    pytest.param(e, role, target, id=f"{e.name}-{role}-{target}")
    for e in ENDPOINTS
    for role in ROLES
    for target in ("news", "other")
    if not (e.other == "own-only" and target == "other")
]


@pytest.mark.parametrize(("endpoint", "role", "target"), CASES)
def test_authorisation_matrix(world: World, endpoint: Endpoint, role: str, target: str) -> None:
    body = endpoint.body(world, target) if endpoint.body else None
    with world.stack.client(f"news-{role}") as client:
        response = client.request(endpoint.method, endpoint.path(world, target), json=body)
    expected = _expected(endpoint, role, target)
    got = "2xx" if response.is_success else str(response.status_code)
    assert got == expected, response.text
    if not response.is_success:
        assert response.json()["error"] and response.json()["detail"]
    with session_scope(world.stack.sessions) as session:  # leases would block later checks
        session.execute(update(Comment).values(claimed_by=None, claim_expires_at=None))


def test_a_moderator_of_another_site_sees_none_of_this_sites_queue(world: World) -> None:
    with world.stack.client("other-moderator") as client:
        queue = client.get("/v1/queue").json()["items"]
        guessed = client.get(f"/v1/comments/{world.held['news']}")
        reviewed = client.post(
            f"/v1/comments/{world.held['news']}/review", json={"action": "approve"}
        )
    assert [item["id"] for item in queue] == [world.held["other"]]
    assert guessed.status_code == reviewed.status_code == 404


def _status(client: httpx.Client) -> int:
    return client.get("/v1/queue").status_code


def test_revoked_and_rotated_keys(world: World) -> None:
    with world.stack.client("news-admin") as admin:
        made = admin.post("/v1/keys", json={"site": "news", "role": "moderator"})
        created = made.json()
        old = created["key"]
        rotation = admin.post(f"/v1/keys/{created['prefix']}/rotate?grace_seconds=600")
        rotated = rotation.json()
        new = rotated["key"]
        # Both answers carry a key: no cache on the way may keep them.
        assert made.headers["Cache-Control"] == rotation.headers["Cache-Control"] == "no-store"
        headers = {"Authorization": f"Bearer {old}"}
        with httpx.Client(base_url=world.stack.base_url, headers=headers) as old_client:
            assert _status(old_client) == 200, "the old key works during the grace period"
            with httpx.Client(
                base_url=world.stack.base_url, headers={"Authorization": f"Bearer {new}"}
            ) as new_client:
                assert _status(new_client) == 200
                assert admin.delete(f"/v1/keys/{created['prefix']}").status_code == 200
                assert _status(old_client) == 401
                assert _status(new_client) == 200
                assert admin.delete(f"/v1/keys/{rotated['prefix']}").status_code == 200
                response = new_client.get("/v1/queue")
    assert response.status_code == 401 and response.json()["field"] == "Authorization"


# Moving the model changes every site's decisions: admins only. Here an admin's call may also
# be refused for what it asks (promoting the active model, rolling back with no earlier move:
# 409), but never for who asks.
MODEL_MOVES = [
    ("retrain", lambda w: "/v1/models/retrain", {"site": "news"}),
    ("promote", lambda w: f"/v1/models/{_active_version(w)}/promote", {"reason": "check"}),
    ("rollback", lambda w: "/v1/models/rollback", {"reason": "check"}),
    ("retire", lambda w: f"/v1/models/{_active_version(w)}/retire", {"reason": "check"}),
]


@pytest.mark.parametrize(("name", "path", "body"), MODEL_MOVES, ids=[m[0] for m in MODEL_MOVES])
def test_only_admins_move_models(
    world: World, name: str, path: Callable[[World], str], body: dict[str, str]
) -> None:
    active = _active_version(world)
    for role in ("submitter", "moderator"):
        with world.stack.client(f"news-{role}") as client:
            refused = client.post(path(world), json=body)
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["detail"]
    assert _active_version(world) == active, "a refused call moved nothing"
    with world.stack.client("news-admin") as admin:
        allowed = admin.post(path(world), json=body)
    assert allowed.is_success or allowed.status_code == 409, allowed.text
