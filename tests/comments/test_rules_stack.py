"""The site's rules through the real stack (API, Redis, Celery worker) on both databases: the
policy routes, a closed article's 409, and the flood rule counted across two API replicas."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.factories import comment
from tests.stack import Stack, StackSpec, free_port, wait_until

pytestmark = pytest.mark.integration

STACK = StackSpec(databases=("sqlite", "postgresql"))
CIVIL = "Thank you for the careful reporting on the ceasefire negotiations."


def _decided(stack: Stack, comment_id: str) -> dict[str, Any]:
    with stack.client() as client:

        def status() -> dict[str, Any] | None:
            body: dict[str, Any] = client.get(f"/v1/comments/{comment_id}").json()
            return body if body["status"] != "pending" else None

        decided: dict[str, Any] = wait_until(status, timeout=20)
        return decided


def test_policy_routes_read_replace_resolve_and_delete(stack: Stack) -> None:
    with stack.client("news-site_admin") as admin:
        site = admin.put("/v1/sites/news/policy", json={"thresholds": {"toxic": 0.3}})
        assert site.status_code == 200, site.text
        assert admin.get("/v1/sites/news/policy").json()["policy"] == {"thresholds": {"toxic": 0.3}}
        section = admin.put(
            "/v1/sites/news/sections/politics/policy",
            json={"rules": {"links": {"max_links": 0}}},
        )
        assert section.json()["section"] == "politics"
        article = admin.put("/v1/sites/news/articles/talks/policy", json={"premoderate_all": True})
        assert article.json()["policy"] == {"premoderate_all": True}
        effective = admin.get(
            "/v1/sites/news/articles/talks/policy",
            params={"effective": "true", "section": "politics"},
        ).json()
        assert effective["from"] == ["defaults", "site", "section", "article"]
        policy = effective["policy"]
        assert policy["thresholds"]["toxic"] == 0.3
        assert (policy["premoderate_all"], policy["rules"]["links"]) == (True, {"max_links": 0})
        assert admin.delete("/v1/sites/news/articles/talks/policy").json()["policy"] == {}
        gone = admin.delete("/v1/sites/news/articles/talks/policy")
        assert gone.status_code == 404
        assert admin.delete("/v1/sites/news/policy").json()["policy"] == {}
        assert admin.delete("/v1/sites/news/sections/politics/policy").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/sites/news/policy", {"thresholds": {"toxic": 1.5}}, "thresholds"),
        ("/v1/sites/news/policy", {"rules": {"flood": {"max_repeats": "many"}}}, "max_repeats"),
        ("/v1/sites/news/sections/politics/policy", {"closed_action": "hide"}, "closed_action"),
        (
            "/v1/sites/news/articles/a/policy",
            {"rules": {"links": {"allowed_domains": ["x"]}}},
            "allowed_domains",
        ),
        (
            "/v1/sites/news/articles/a/policy",
            {"reject_thresholds": {"toxic": 0.01}},
            "reject_thresholds",
        ),
        ("/v1/sites/nowhere/policy", {}, "site"),
    ],
)
def test_bad_policy_bodies_are_refused_naming_the_field(
    stack: Stack, path: str, body: dict[str, Any], field: str
) -> None:
    with stack.client("news-operator") as admin:
        before = admin.get("/v1/sites/news/policy").json()["policy"]
        refused = admin.put(path, json=body)
        assert refused.status_code in (404, 422), refused.text
        assert field in (refused.json().get("field") or "") + refused.text
        assert admin.get("/v1/sites/news/policy").json()["policy"] == before


def test_a_closed_article_refuses_new_comments_with_409_and_opens_again(stack: Stack) -> None:
    with stack.client("news-site_admin") as admin, stack.client() as client:
        taken = client.post("/v1/comments", json=comment("before-close", CIVIL))
        assert taken.status_code in (200, 202)
        assert (
            admin.put(
                "/v1/sites/news/articles/peace-talks/policy", json={"closed": True}
            ).status_code
            == 200
        )
        refused = client.post("/v1/comments", json=comment("after-close", CIVIL))
        assert refused.status_code == 409, refused.text
        assert (refused.json()["error"], refused.json()["field"]) == (
            "article_closed",
            "article_id",
        )
        retried = client.post("/v1/comments", json=comment("before-close", CIVIL))
        assert retried.json()["id"] == taken.json()["id"], "a retry still gets its first answer"
        admin.delete("/v1/sites/news/articles/peace-talks/policy")
        reopened = client.post("/v1/comments", json=comment("after-open", CIVIL))
        assert reopened.status_code in (200, 202)


def test_the_flood_rule_counts_across_two_api_replicas(stack: Stack) -> None:
    port = stack.start_api("api-2", free_port())  # a second replica, its own process
    body = {"rules": {"flood": {"max_repeats": 2, "repeat_window_minutes": 5}}}
    with stack.client("news-site_admin") as admin:
        assert admin.put("/v1/sites/news/policy", json=body).status_code == 200
    author = f"spammer-{uuid.uuid4().hex[:6]}"
    ids = []
    with stack.client() as first, stack.client(port=port) as other:
        for i, client in enumerate([first, other, first, other]):
            posted = client.post(
                "/v1/comments",
                json={
                    **comment(f"flood-{author}-{i}", "Vote NO on the deal!"),
                    "author_id": author,
                },
            )
            assert posted.status_code in (200, 202), posted.text
            ids.append(posted.json()["id"])
            _decided(stack, ids[-1])  # a reader posts one after another
    statuses = [_decided(stack, i) for i in ids]
    assert [s["status"] for s in statuses] == ["approved", "approved", "held", "held"]
    (reason,) = statuses[2]["decision"]["reasons"]
    assert (reason["code"], reason["count"]) == ("repeated_text", 3)
    with stack.client("news-site_admin") as admin:
        admin.delete("/v1/sites/news/policy")


def test_an_article_is_named_in_a_route_exactly_as_its_comments_name_it(stack: Stack) -> None:
    with stack.client("news-site_admin") as admin:
        path = "/v1/sites/news/articles/2026/05/peace talks/policy"
        assert admin.put(path, json={"premoderate_all": True}).status_code == 200
        body = admin.get(path).json()
        assert (body["article_id"], body["policy"]) == (
            "2026/05/peace talks",
            {"premoderate_all": True},
        )
        assert admin.delete(path).status_code == 200


def test_a_word_list_of_ten_thousand_entries_goes_through_the_api(stack: Stack) -> None:
    entries = [f"wordnumber{i:05d}suffix" for i in range(10_000)]  # ~260 KB of JSON
    with stack.client("news-site_admin") as admin:
        put = admin.put("/v1/sites/news/lists/suspect", json={"entries": entries})
        assert put.status_code == 200, put.text[:300]
        assert len(admin.get("/v1/sites/news/lists/suspect").json()["entries"]) == 10_000
        huge = admin.put("/v1/sites/news/lists/suspect", json={"entries": ["x" * 100] * 50_000})
        assert huge.status_code == 413
        assert admin.put("/v1/sites/news/lists/suspect", json={"entries": []}).status_code == 200
    with stack.client() as client:  # a comment's own routes keep their small limit
        big = client.post("/v1/comments", json=comment("big", "word " * 20_000))
        assert big.status_code == 413
