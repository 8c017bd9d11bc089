"""Coral Talk's external moderation phase against the running service: Coral's exact, signed,
pretty-printed calls, each answer Coral acts on, and the signing secret's admin routes."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from tests.factories import CIVIL, TOXIC
from tests.stack import Stack

pytestmark = pytest.mark.integration

SECRET = "ssc_2f8a4c1e9b7d4e6fa0c35b8d91e7f264"
OTHER_SECRET = "ssc_0e1d2c3b4a5968778695a4b3c2d1e0f9"
GERMAN = "Ich bin v\u00f6llig anderer Meinung als der Minister."
WITHHELD = {
    "status": "SYSTEM_WITHHELD",
    "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
}
# What Coral posts (docs/docs/external-moderation-phases.md, server/.../phases/external.ts).
CORAL_CALL: dict[str, Any] = {
    "action": "NEW",
    "comment": {
        "body": "<p>Here's a reply!</p>",
        "parentID": "d79b787f-f406-49a0-a179-72e3652e54be",
    },
    "author": {"id": "baf4e943-3594-4fcc-b2ba-3e8de7a76352", "role": "COMMENTER"},
    "story": {
        "id": "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6",
        "url": "http://localhost:1313/posts/a-story-url/",
    },
    "site": {"id": "a4bede88-2d2c-4424-bc18-4322a9e285a6"},
    "tenantID": "19ba5794-7eeb-4d46-a81b-c00c61672501",
    "tenantDomain": "localhost",
}


@pytest.fixture(scope="module", autouse=True)
def news_secret(stack: Stack) -> None:
    with stack.client("news-site_admin") as admin:
        response = admin.put("/v1/sites/news/coral", json={"signing_secret": SECRET})
    assert response.status_code == 200, response.text


def coral_call(html: str, *, role: str = "COMMENTER", author_id: str | None = None) -> bytes:
    """Coral's body for one comment, pretty-printed as Coral sends (and signs) it."""
    body = copy.deepcopy(CORAL_CALL)
    body["comment"]["body"] = html
    body["author"] = {"id": author_id or str(uuid.uuid4()), "role": role}
    return json.dumps(body, indent=2).encode()


def signature(raw: bytes, secrets: Sequence[str] = (SECRET,)) -> str:
    return ",".join(
        "sha256=" + hmac.new(s.encode(), raw, hashlib.sha256).hexdigest() for s in secrets
    )


def post(
    stack: Stack,
    raw: bytes,
    *,
    key: str = "news-submitter",
    sign_with: Sequence[str] | None = (SECRET,),
    plain_key: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if sign_with is not None:
        headers["X-Coral-Signature"] = signature(raw, sign_with)
    return httpx.post(
        f"{stack.base_url}/v1/coral/external-moderation",
        params={"key": plain_key or stack.keys[key]},
        content=raw,
        headers=headers,
        timeout=30,
    )


def assert_refused(response: httpx.Response, field: str | None = "X-Coral-Signature") -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "unauthorized" and (field is None or body["field"] == field)


# --- the answers -----------------------------------------------------------------------------


def test_a_civil_comment_goes_on_with_no_opinion(stack: Stack) -> None:
    response = post(stack, coral_call(f"<p>{CIVIL[0]}</p>"))
    assert response.status_code == 204, response.text
    assert response.content == b""


def test_coral_s_own_example_goes_on(stack: Stack) -> None:
    raw = json.dumps(CORAL_CALL, indent=2).encode()
    assert post(stack, raw).status_code == 204


def test_a_toxic_comment_is_withheld_and_flagged(stack: Stack) -> None:
    response = post(stack, coral_call(f"<p>{TOXIC[0]}</p>"))
    assert response.status_code == 200, response.text
    assert response.json() == WITHHELD


def test_an_edited_comment_is_judged_like_a_new_one(stack: Stack) -> None:
    body = json.loads(coral_call(f"<p>{TOXIC[1]}</p>"))
    body["action"] = "EDIT"
    assert post(stack, json.dumps(body, indent=2).encode()).json() == WITHHELD


def test_a_banned_author_s_comment_is_rejected_with_the_reason(stack: Stack) -> None:
    author = str(uuid.uuid4())
    with stack.client("news-moderator") as moderator:
        banned = moderator.post(f"/v1/authors/{author}", json={"trust": "banned"})
    assert banned.status_code == 200, banned.text
    response = post(stack, coral_call(f"<p>{CIVIL[1]}</p>", author_id=author))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "REJECTED",
        "moderationAction": {
            "status": "REJECTED",
            "rejectionReason": {"code": "OTHER", "detailedExplanation": "author_banned"},
        },
    }
    assert post(stack, coral_call(f"<p>{CIVIL[1]}</p>")).status_code == 204, "another author"


def test_the_sites_rules_answer_in_coral_s_own_terms(stack: Stack) -> None:
    """A banned word is Coral's BANNED_WORD, a link rule's hold a spam flag, and a story whose
    article the site pre-moderates is Coral's PREMOD: the story id is the article id."""
    story = CORAL_CALL["story"]["id"]
    with stack.client("news-site_admin") as admin:
        assert admin.put("/v1/sites/news/lists/banned", json={"entries": ["scumbag*"]}).is_success
        links = {"rules": {"links": {"max_links": 0}}}
        assert admin.put("/v1/sites/news/policy", json=links).is_success
        assert admin.put(
            f"/v1/sites/news/articles/{story}/policy", json={"premoderate_all": True}
        ).is_success
    try:
        banned = post(stack, coral_call("<p>Only scumbags sign this.</p>")).json()
        assert banned["moderationAction"]["rejectionReason"]["code"] == "BANNED_WORD"
        body = json.loads(coral_call(f"<p>{CIVIL[0]} https://example.com/x</p>"))
        body["story"]["id"] = "another-story"
        spam = post(stack, json.dumps(body, indent=2).encode()).json()
        assert spam == {
            "status": "SYSTEM_WITHHELD",
            "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}],
        }
        premod = post(stack, coral_call(f"<p>{CIVIL[0]}</p>"))
        assert premod.json() == {"status": "PREMOD"}
    finally:
        with stack.client("news-site_admin") as admin:
            admin.put("/v1/sites/news/lists/banned", json={"entries": []})
            admin.delete("/v1/sites/news/policy")
            admin.delete(f"/v1/sites/news/articles/{story}/policy")


@pytest.mark.parametrize("role", ["STAFF", "MODERATOR", "ADMIN"])
def test_coral_staff_pass_unscored(stack: Stack, role: str) -> None:
    assert post(stack, coral_call(f"<p>{TOXIC[0]}</p>", role=role)).status_code == 204


def test_a_member_is_judged_like_a_commenter(stack: Stack) -> None:
    assert post(stack, coral_call(f"<p>{TOXIC[0]}</p>", role="MEMBER")).json() == WITHHELD


def test_a_comment_in_another_language_follows_the_site_policy(stack: Stack) -> None:
    assert post(stack, coral_call(f"<p>{GERMAN}</p>")).json() == WITHHELD


def test_markup_is_read_as_the_text_a_reader_sees(stack: Stack) -> None:
    split_word = "<p>You are a complete <b>id</b>&#105;ot and everyone here knows it.</p>"
    assert post(stack, coral_call(split_word)).json() == WITHHELD
    entities = (
        "<p>Thank you for the thoughtful article&nbsp;&amp; the map.</p><p>Well&#8209;done.</p>"
    )
    assert post(stack, coral_call(entities)).status_code == 204
    hidden = f"<p>{CIVIL[2]}</p><!-- {TOXIC[0]} --><script>{TOXIC[1]}</script>"
    assert post(stack, coral_call(hidden)).status_code == 204


def test_a_comment_with_no_text_goes_on(stack: Stack) -> None:
    raw = coral_call('<p><img src="https://news.example/cat.gif" alt="a cat"></p><br>')
    assert post(stack, raw).status_code == 204


def test_unknown_fields_are_ignored(stack: Stack) -> None:
    body = json.loads(coral_call(f"<p>{TOXIC[0]}</p>"))
    body["comment"]["revisionID"] = "r-1"
    body["author"]["username"] = "someone"
    body["future"] = {"anything": [1, 2]}
    assert post(stack, json.dumps(body, indent=2).encode()).json() == WITHHELD


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda body: body["comment"].pop("body"), "comment.body"),
        (lambda body: body.pop("author"), "author"),
        (lambda body: body.update(action="DELETE"), "action"),
        (lambda body: body["author"].update(id=42), "author.id"),
    ],
)
def test_a_body_not_of_coral_s_shape_is_refused_naming_the_field(
    stack: Stack, change: Any, field: str
) -> None:
    body = json.loads(coral_call(f"<p>{CIVIL[0]}</p>"))
    change(body)
    response = post(stack, json.dumps(body, indent=2).encode())
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid" and response.json()["field"] == field


def test_a_signed_body_that_is_not_json_is_refused(stack: Stack) -> None:
    response = post(stack, b"{not json")
    assert response.status_code == 400
    assert set(response.json()) == {"error", "detail", "field"}
    assert response.json()["error"] == "malformed_json"


# --- the signature ---------------------------------------------------------------------------


def test_a_wrong_signature_is_refused(stack: Stack) -> None:
    assert_refused(post(stack, coral_call(f"<p>{TOXIC[0]}</p>"), sign_with=(OTHER_SECRET,)))


def test_a_signature_of_other_bytes_is_refused(stack: Stack) -> None:
    raw = coral_call(f"<p>{TOXIC[0]}</p>")
    compact = json.dumps(json.loads(raw)).encode()  # the same JSON, not the bytes Coral signed
    response = httpx.post(
        f"{stack.base_url}/v1/coral/external-moderation",
        params={"key": stack.keys["news-submitter"]},
        content=raw,
        headers={"Content-Type": "application/json", "X-Coral-Signature": signature(compact)},
    )
    assert_refused(response)


def test_a_missing_signature_is_refused(stack: Stack) -> None:
    assert_refused(post(stack, coral_call(f"<p>{TOXIC[0]}</p>"), sign_with=None))


def test_while_coral_rotates_its_secret_any_matching_signature_is_accepted(stack: Stack) -> None:
    raw = coral_call(f"<p>{TOXIC[0]}</p>")
    assert post(stack, raw, sign_with=(OTHER_SECRET, SECRET)).json() == WITHHELD
    assert post(stack, raw, sign_with=(SECRET, OTHER_SECRET)).json() == WITHHELD


def test_a_site_without_a_signing_secret_refuses_every_call(stack: Stack) -> None:
    assert_refused(post(stack, coral_call(f"<p>{CIVIL[0]}</p>"), key="other-submitter"))


def test_an_unknown_or_missing_key_is_refused(stack: Stack) -> None:
    raw = coral_call(f"<p>{TOXIC[0]}</p>")
    assert_refused(post(stack, raw, plain_key="mod_not-a-key"), field=None)
    response = httpx.post(
        f"{stack.base_url}/v1/coral/external-moderation",
        content=raw,
        headers={"X-Coral-Signature": signature(raw)},
    )
    assert_refused(response, field=None)


def test_a_moderator_key_may_not_answer_for_coral(stack: Stack) -> None:
    response = post(stack, coral_call(f"<p>{CIVIL[0]}</p>"), key="news-moderator")
    assert response.status_code == 403 and response.json()["field"] == "key"


def test_an_admin_key_may_answer_for_coral(stack: Stack) -> None:
    assert post(stack, coral_call(f"<p>{TOXIC[0]}</p>"), key="news-site_admin").json() == WITHHELD


# --- the signing secret ----------------------------------------------------------------------


def test_an_admin_sets_the_secret_and_it_is_never_shown(stack: Stack) -> None:
    with stack.client("news-site_admin") as admin:
        response = admin.put("/v1/sites/news/coral", json={"signing_secret": SECRET})
        read = admin.get("/v1/sites/news/coral")
    assert response.status_code == 200
    assert response.json() == {"site": "news", "signing_secret_set": True}
    assert read.json() == {"site": "news", "signing_secret_set": True}
    assert SECRET not in response.text + read.text


def test_a_submitter_or_moderator_may_not_set_the_secret(stack: Stack) -> None:
    for key in ("news-submitter", "news-moderator"):
        with stack.client(key) as client:
            response = client.put("/v1/sites/news/coral", json={"signing_secret": OTHER_SECRET})
        assert response.status_code == 403, response.text
    assert post(stack, coral_call(f"<p>{TOXIC[0]}</p>")).json() == WITHHELD, "unchanged"


@pytest.mark.parametrize(
    "payload",
    [{"signing_secret": "short"}, {"signing_secret": "x" * 201}, {"signing_secret": 12}, {}],
)
def test_a_bad_secret_is_refused_naming_it(stack: Stack, payload: dict[str, Any]) -> None:
    with stack.client("news-site_admin") as admin:
        response = admin.put("/v1/sites/news/coral", json=payload)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["field"] == "signing_secret"


def test_a_secret_with_surrounding_whitespace_is_refused(stack: Stack) -> None:
    with stack.client("news-site_admin") as admin:
        response = admin.put("/v1/sites/news/coral", json={"signing_secret": SECRET + "\n"})
    assert response.status_code == 422 and response.json()["field"] == "signing_secret"


def test_an_unknown_site_has_no_secret_to_set(stack: Stack) -> None:
    with stack.client("news-operator") as admin:
        response = admin.put("/v1/sites/nowhere/coral", json={"signing_secret": SECRET})
    assert response.status_code == 404 and response.json()["error"] == "site_not_found"


def test_a_removed_secret_refuses_the_calls_it_signed(stack: Stack) -> None:
    raw = coral_call(f"<p>{TOXIC[0]}</p>")
    with stack.client("news-operator") as admin:
        assert admin.put("/v1/sites/other/coral", json={"signing_secret": OTHER_SECRET}).is_success
        assert post(stack, raw, key="other-submitter", sign_with=(OTHER_SECRET,)).json() == WITHHELD
        assert admin.delete("/v1/sites/other/coral").status_code == 204
        assert admin.get("/v1/sites/other/coral").json()["signing_secret_set"] is False
    assert_refused(post(stack, raw, key="other-submitter", sign_with=(OTHER_SECRET,)))
