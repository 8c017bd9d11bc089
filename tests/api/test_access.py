"""Who may do what: every endpoint x every role x own site / another site, on the real API.

A submitter cannot review; a moderator of one site can neither see nor touch another site's
comments, even by guessing their ids; a site admin manages its own site (keys, policy,
webhook, Coral) and nothing of another's; only an operator creates sites, sets quotas, moves
the shared model and acts on every site.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from service.core.db import session_scope
from service.core.tables import Comment, ModelEvent, ModelVersion, Site, TrainingJob
from service.models.registry import active_version
from service.sites.keys import create_key
from tests.factories import TOXIC, comment
from tests.stack import Stack, StackSpec

pytestmark = pytest.mark.integration

ROLES = ("submitter", "moderator", "site_admin", "operator")
ADMINS = ("site_admin", "operator")
SUBMIT, MODERATE = ("submitter", *ADMINS), ("moderator", *ADMINS)
OPERATOR = ("operator",)
ANY = ROLES
CORAL_SECRET = "coral-signing-secret-" + "x" * 32


@dataclass
class World:
    stack: Stack
    keys: dict[str, str]  # "news-moderator" -> plain key
    held: dict[str, str]  # site -> id of a held comment
    jobs: dict[str, str]  # site -> id of a finished retraining job


# The matrix sets webhooks to a receiver on this machine: allowed here, as a deployment would
# allow its own private network.
STACK = StackSpec(
    keys={f"other-{role}": ("other", role) for role in ("moderator", "site_admin", "operator")},
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
    jobs = {}
    with session_scope(stack.sessions) as session:
        for site in ("news", "other"):
            site_id = session.scalar(select(Site.id).where(Site.name == site))
            job = TrainingJob(site_id=site_id, status="failed", stage="failed")
            session.add(job)
            session.flush()
            job.active_slot = None  # finished: the one live slot is free for the next
            session.flush()
            jobs[site] = job.id
    return World(stack, stack.keys, held, jobs)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    # (world, target site) -> path; the target is "news" (the caller's own) or "other".
    path: Callable[[World, str], str]
    allowed: tuple[str, ...]
    # How a call aimed at another site is refused when the role is allowed: "404" when the
    # target is named by a comment id (another site's ids look missing, to every key), "site"
    # when it is a site-wide resource reached with ?site= (operators only), "named" for admin
    # routes that name the site themselves (a site admin its own, an operator any), "named404"
    # for keys named by prefix (another site's look missing to a site admin), "id-operator"
    # for other ids that look missing to every key but an operator's.
    other: str
    body: Callable[[World, str], Any] | None = None


def _site_q(site: str) -> str:
    return "" if site == "news" else f"?site={site}"


def _active_version(world: World) -> str:
    with session_scope(world.stack.sessions) as session:
        version = active_version(session)
    assert version is not None, "the stack registers the shipped model at start"
    return version


def _coral(world: World, site: str) -> dict[str, str]:
    return {"signing_secret": CORAL_SECRET}


def _new_key_prefix(world: World, site: str) -> str:
    with session_scope(world.stack.sessions) as session:
        key, _ = create_key(session, site_name=site, role="submitter", name="throwaway")
        return key.prefix


def _new_author(world: World, site: str) -> str:
    """An author of the site with one comment, made for one call that erases them."""
    name = f"leaver-{uuid.uuid4().hex[:8]}"
    with world.stack.client(f"{site}-submitter") as client:
        body = {**comment(f"e-{name}", "Thanks for the report."), "author_id": name}
        assert client.post("/v1/comments", json=body).status_code in (200, 202)
    return name


ENDPOINTS = [
    Endpoint("submit", "POST", lambda w, s: "/v1/comments", SUBMIT, "own-only",
             lambda w, s: comment(f"m-{uuid.uuid4().hex}", "Thanks for the report.")),
    Endpoint("read comment", "GET", lambda w, s: f"/v1/comments/{w.held[s]}", ANY, "404"),
    Endpoint("read by external id", "GET", lambda w, s: f"/v1/comments/by-external-id/held-{s}",
             ANY, "404"),
    Endpoint("score", "POST", lambda w, s: "/v1/score", ANY, "own-only",
             lambda w, s: {"texts": ["hello"]}),
    Endpoint("perspective analyze", "POST", lambda w, s: "/v1alpha1/comments:analyze", ANY,
             "own-only", lambda w, s: {"comment": {"text": "Thanks for the report."},
                                       "requestedAttributes": {"TOXICITY": {}}}),
    Endpoint("perspective suggest", "POST", lambda w, s: "/v1alpha1/comments:suggestscore", ANY,
             "own-only", lambda w, s: {"comment": {"text": "Thanks for the report."},
                                       "attributeScores": {"TOXICITY": {
                                           "summaryScore": {"value": 0}}}}),
    Endpoint("openai moderation", "POST", lambda w, s: "/v1/moderations", ANY, "own-only",
             lambda w, s: {"input": "Thanks for the report."}),
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
    Endpoint("erase author", "DELETE",
             lambda w, s: f"/v1/authors/{_new_author(w, s)}{_site_q(s)}", ADMINS, "site"),
    Endpoint("stats", "GET", lambda w, s: f"/v1/stats{_site_q(s)}", MODERATE, "site"),
    Endpoint("deliveries", "GET", lambda w, s: f"/v1/webhooks/deliveries{_site_q(s)}", MODERATE,
             "site"),
    Endpoint("list sites", "GET", lambda w, s: "/v1/sites", ADMINS, "own-only"),
    Endpoint("create site", "POST", lambda w, s: "/v1/sites", OPERATOR, "own-only",
             lambda w, s: {"name": f"site-{uuid.uuid4().hex[:8]}"}),
    Endpoint("read site", "GET", lambda w, s: f"/v1/sites/{s}", ADMINS, "named"),
    Endpoint("set policy", "PUT", lambda w, s: f"/v1/sites/{s}/policy", ADMINS, "named",
             lambda w, s: {"thresholds": {"toxic": 0.2}}),
    Endpoint("read policy", "GET", lambda w, s: f"/v1/sites/{s}/policy", ADMINS, "named"),
    Endpoint("set section policy", "PUT", lambda w, s: f"/v1/sites/{s}/sections/world/policy",
             ADMINS, "named", lambda w, s: {"premoderate_all": False}),
    Endpoint("read article policy", "GET",
             lambda w, s: f"/v1/sites/{s}/articles/a1/policy?effective=true", ADMINS, "named"),
    Endpoint("set article policy", "PUT", lambda w, s: f"/v1/sites/{s}/articles/a9/policy",
             ADMINS, "named", lambda w, s: {"closed": False}),
    Endpoint("set quota", "PUT", lambda w, s: f"/v1/sites/{s}/quota", OPERATOR, "named",
             lambda w, s: {}),
    Endpoint("read word list", "GET", lambda w, s: f"/v1/sites/{s}/lists/banned", ADMINS, "named"),
    Endpoint("set word list", "PUT", lambda w, s: f"/v1/sites/{s}/lists/suspect", ADMINS,
             "named", lambda w, s: {"entries": []}),
    Endpoint("set retention", "PUT", lambda w, s: f"/v1/sites/{s}/retention", ADMINS, "named",
             lambda w, s: {"days": None}),
    Endpoint("read webhook", "GET", lambda w, s: f"/v1/sites/{s}/webhook", ADMINS, "named"),
    Endpoint("set webhook", "PUT", lambda w, s: f"/v1/sites/{s}/webhook", ADMINS, "named",
             lambda w, s: {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32}),
    Endpoint("remove webhook", "DELETE", lambda w, s: f"/v1/sites/{s}/webhook", ADMINS, "named"),
    Endpoint("set coral", "PUT", lambda w, s: f"/v1/sites/{s}/coral", ADMINS, "named", _coral),
    Endpoint("read coral", "GET", lambda w, s: f"/v1/sites/{s}/coral", ADMINS, "named"),
    Endpoint("remove coral", "DELETE", lambda w, s: f"/v1/sites/{s}/coral", ADMINS, "named"),
    Endpoint("list keys", "GET", lambda w, s: f"/v1/keys?site={s}", ADMINS, "named"),
    Endpoint("create key", "POST", lambda w, s: "/v1/keys", ADMINS, "named",
             lambda w, s: {"site": s, "role": "moderator"}),
    Endpoint("revoke key", "DELETE", lambda w, s: f"/v1/keys/{_new_key_prefix(w, s)}", ADMINS,
             "named404"),
    Endpoint("rotate key", "POST", lambda w, s: f"/v1/keys/{_new_key_prefix(w, s)}/rotate",
             ADMINS, "named404"),
    Endpoint("list models", "GET", lambda w, s: "/v1/models", MODERATE, "own-only"),
    Endpoint("model events", "GET", lambda w, s: "/v1/models/events", MODERATE, "own-only"),
    Endpoint("training jobs", "GET", lambda w, s: "/v1/models/jobs", MODERATE, "own-only"),
    Endpoint("training job", "GET", lambda w, s: f"/v1/models/jobs/{w.jobs[s]}", MODERATE,
             "id-operator"),
    Endpoint("read model", "GET", lambda w, s: f"/v1/models/{_active_version(w)}", MODERATE,
             "own-only"),
    Endpoint("set shadow", "PUT", lambda w, s: "/v1/models/shadow", OPERATOR, "own-only",
             lambda w, s: {"version": None}),
    Endpoint("shadow report", "GET",
             lambda w, s: f"/v1/models/{_active_version(w)}/shadow{_site_q(s)}", MODERATE, "site"),
    # Last: a claim makes the comment the claimer's, which other checks would then run into.
    Endpoint("claim", "POST", lambda w, s: f"/v1/queue/claim{_site_q(s)}", MODERATE, "site"),
]  # fmt: skip


def _expected(endpoint: Endpoint, role: str, target: str) -> str:
    if role not in endpoint.allowed:
        return "403"
    if target == "news" or (role == "operator" and endpoint.other != "404"):
        return "2xx"
    return {"site": "403", "named": "403", "named404": "404"}.get(endpoint.other, "404")


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
    # Google's clients send the key in their own header; the others, as a bearer token.
    google = endpoint.path(world, target).startswith("/v1alpha1/")
    key = {"X-Goog-Api-Key": world.keys[f"news-{role}"]} if google else None
    with world.stack.client("" if google else f"news-{role}") as client:
        response = client.request(
            endpoint.method, endpoint.path(world, target), json=body, headers=key
        )
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
    with world.stack.client("news-site_admin") as admin:
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


# The model is shared, so moving it changes every site's decisions: operators only. A site
# admin may retrain on its own site's labels, which registers a candidate for an operator.
# An allowed call may still be refused for what it asks (promoting the active model, rolling
# back with no earlier move, a job already queued: 409), but never for who asks.
MODEL_MOVES = [
    ("retrain", lambda w: "/v1/models/retrain", {"site": "news"}, ADMINS),
    ("promote", lambda w: f"/v1/models/{_active_version(w)}/promote", {"reason": "check"},
     OPERATOR),
    ("rollback", lambda w: "/v1/models/rollback", {"reason": "check"}, OPERATOR),
    ("retire", lambda w: f"/v1/models/{_active_version(w)}/retire", {"reason": "check"},
     OPERATOR),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "path", "body", "allowed"), MODEL_MOVES, ids=[m[0] for m in MODEL_MOVES]
)
def test_only_operators_move_the_shared_model(
    world: World,
    name: str,
    path: Callable[[World], str],
    body: dict[str, str],
    allowed: tuple[str, ...],
) -> None:
    active = _active_version(world)
    for role in (r for r in ROLES if r not in allowed):
        with world.stack.client(f"news-{role}") as client:
            refused = client.post(path(world), json=body)
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["detail"]
    assert _active_version(world) == active, "a refused call moved nothing"
    for role in allowed:
        with world.stack.client(f"news-{role}") as client:
            answer = client.post(path(world), json=body)
        assert answer.is_success or answer.status_code == 409, (role, answer.text)


def test_a_site_admin_cannot_retrain_another_sites_labels(world: World) -> None:
    with world.stack.client("news-site_admin") as admin:
        refused = admin.post("/v1/models/retrain", json={"site": "other"})
    assert refused.status_code == 403 and refused.json()["field"] == "site", refused.text


def test_a_site_admin_cannot_raise_itself_to_operator(world: World) -> None:
    with world.stack.client("news-site_admin") as admin:
        operator = admin.post("/v1/keys", json={"site": "news", "role": "operator"})
        peer = admin.post("/v1/keys", json={"site": "news", "role": "site_admin"})
        with session_scope(world.stack.sessions) as session:
            key, _ = create_key(session, site_name="news", role="operator", name="deployment")
            prefix = key.prefix
        rotated = admin.post(f"/v1/keys/{prefix}/rotate")
        revoked = admin.delete(f"/v1/keys/{prefix}")
        listed = admin.get("/v1/keys").json()["keys"]
        sites = admin.get("/v1/sites").json()["sites"]
        old_name = admin.post("/v1/keys", json={"site": "news", "role": "admin"})
    assert (operator.status_code, operator.json()["field"]) == (403, "role"), operator.text
    assert peer.status_code == 201, peer.text
    # An operator key of its own site is as invisible to it as another site's keys.
    assert rotated.status_code == revoked.status_code == 404, (rotated.text, revoked.text)
    assert rotated.json()["detail"] == revoked.json()["detail"] == f"no key starts with {prefix!r}"
    assert {k["site"] for k in listed} == {"news"}
    assert prefix not in {k["prefix"] for k in listed}, "operator keys are not a site's to see"
    assert {k["role"] for k in listed} == {"submitter", "moderator", "site_admin"}
    assert [s["name"] for s in sites] == ["news"]
    assert (old_name.status_code, old_name.json()["field"]) == (422, "role")
    assert "'site_admin' (one site) or 'operator'" in old_name.json()["detail"]


def test_an_operator_acts_on_another_site(world: World) -> None:
    with world.stack.client("news-operator") as operator:
        made = operator.post("/v1/keys", json={"site": "other", "role": "operator"})
        queue = operator.get("/v1/queue?site=other").json()["items"]
        sites = {s["name"] for s in operator.get("/v1/sites").json()["sites"]}
    assert made.status_code == 201 and made.json()["role"] == "operator", made.text
    assert world.held["other"] in [item["id"] for item in queue]
    assert {"news", "other"} <= sites


def test_a_sites_quota_is_its_own_and_set_by_an_operator(world: World) -> None:
    name = f"tight-{uuid.uuid4().hex[:6]}"
    with world.stack.client("news-operator") as operator:
        assert operator.post("/v1/sites", json={"name": name}).status_code == 201
        tight = operator.put(
            f"/v1/sites/{name}/quota", json={"requests_per_second": 0.1, "burst": 3}
        )
        key = operator.post("/v1/keys", json={"site": name, "role": "submitter"}).json()["key"]
    assert tight.status_code == 200, tight.text
    assert tight.json()["quota"] == {"requests_per_second": 0.1, "burst": 3}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=world.stack.base_url, headers=headers) as client:
        answers = [client.post("/v1/score", json={"texts": ["hello"]}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429], [a.text for a in answers]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "3 requests at once" in answers[-1].json()["detail"]
    with world.stack.client("news-submitter") as other_site:  # the deployment's default
        assert other_site.post("/v1/score", json={"texts": ["hello"]}).status_code == 200
    with world.stack.client("news-site_admin") as admin:  # a site may not lift its own quota
        lifted = admin.put("/v1/sites/news/quota", json={"burst": 10**6})
    assert lifted.status_code == 403, lifted.text


def _candidate_of(world: World, site: str) -> str:
    """A candidate registered as a retrain of `site`'s labels would be (no artifact needed:
    nobody fetches it here)."""
    version = f"tfidf-lr-{uuid.uuid4().hex[:12]}"
    with session_scope(world.stack.sessions) as session:
        session.add(
            ModelVersion(
                version=version,
                sha256="0" * 64,
                archive=b"",
                archive_sha256="0" * 64,
                size_bytes=0,
                metrics={"evaluations": {"site_holdout": {"rows": 7}}},
                data={
                    "base": {"dir": "/srv/moderation/data", "files": []},
                    "site": {"name": site, "trained_rows": 28},
                },
                params={"label_weight": 5.0},
                created_by="retrain job 1",
            )
        )
        session.add(ModelEvent(action="register", to_version=version, actor="t", reason=site))
    return version


def test_a_key_sees_only_its_own_sites_training_metadata(world: World) -> None:
    theirs, ours = _candidate_of(world, "other"), _candidate_of(world, "news")
    with world.stack.client("news-moderator") as moderator:
        listed = {v["version"]: v for v in moderator.get("/v1/models").json()["versions"]}
        one = moderator.get(f"/v1/models/{theirs}").json()
        own = moderator.get(f"/v1/models/{ours}").json()
        events = moderator.get("/v1/models/events").json()["events"]
    for view in (listed[theirs], one):
        assert (view["metrics"], view["data"], view["params"]) == ({}, {}, {}), view
        assert "other" not in str(view)
    assert own["data"]["site"] == {"name": "news", "trained_rows": 28}
    assert "dir" not in own["data"]["base"], "no server path for a site's key"
    reasons = {e["to"]: e["reason"] for e in events if e["action"] == "register"}
    assert (reasons[theirs], reasons[ours]) == ("", "news")
    with world.stack.client("news-operator") as operator:
        full = operator.get(f"/v1/models/{theirs}").json()
    assert full["data"]["site"]["name"] == "other"
    assert full["data"]["base"]["dir"] == "/srv/moderation/data"


def test_erasure_and_retention_refuse_bad_input_naming_the_field(world: World) -> None:
    with world.stack.client("news-site_admin") as admin:
        missing = admin.delete("/v1/authors/never-wrote-here")
        assert missing.status_code == 404 and missing.json()["field"] == "author_id"
        for days in (0, 40_000, "soon"):
            bad = admin.put("/v1/sites/news/retention", json={"days": days})
            assert bad.status_code == 422 and "days" in bad.json()["field"], bad.text
        name = _new_author(world, "news")
        erased = admin.delete(f"/v1/authors/{name}")
        assert erased.status_code == 200, erased.text
        assert erased.json()["erased"]["comments"] == 1
        assert (
            admin.put("/v1/sites/news/retention", json={"days": 30}).json()["retention_days"] == 30
        )
        assert admin.put("/v1/sites/news/retention", json={"days": None}).status_code == 200


def test_word_lists_refuse_bad_input_naming_the_field(world: World) -> None:
    with world.stack.client("news-site_admin") as admin:
        for body, field in (
            ({"entries": ["ok", ""]}, "entries[1]"),
            ({"entries": ["*"]}, "entries[0]"),
            ({"entries": ["a*"]}, "entries[0]"),
            ({"entries": "idiot"}, "entries"),
            ({"words": []}, "entries"),  # the field it lacks
        ):
            refused = admin.put("/v1/sites/news/lists/banned", json=body)
            assert refused.status_code == 422, refused.text
            assert field in (refused.json()["field"] or ""), refused.text
        unknown = admin.put("/v1/sites/news/lists/forbidden", json={"entries": []})
        assert unknown.status_code == 422 and unknown.json()["field"] == "kind"
        assert admin.get("/v1/sites/news/lists/banned").json()["entries"] == []
