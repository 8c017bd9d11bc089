"""Coral's wire format without a stack: signatures, its request, comment HTML, our answers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from service.compat.coral_format import (
    CoralRequestInvalid,
    CoralRequestMalformed,
    coral_answer,
    html_to_text,
    parse_request,
    rejection_code,
    sign,
    signature_matches,
)
from service.rules.policy import Verdict

SECRET = "ssc_2f8a4c1e9b7d4e6fa0c35b8d91e7f264"
BODY = json.dumps({"action": "NEW", "comment": {"body": "<p>Hi</p>"}}, indent=2).encode()


def _hmac(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- signatures ------------------------------------------------------------------------------


def test_the_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    assert sign(SECRET, BODY) == _hmac(SECRET, BODY)
    assert signature_matches(SECRET, BODY, header=_hmac(SECRET, BODY))


@pytest.mark.parametrize(
    "header",
    [
        f"{_hmac('an-old-secret-of-coral', BODY)},{_hmac(SECRET, BODY)}",
        f"{_hmac(SECRET, BODY)}, {_hmac('an-old-secret-of-coral', BODY)}",
        f" {_hmac(SECRET, BODY).upper()} ",
    ],
)
def test_any_of_several_signatures_may_match(header: str) -> None:
    assert signature_matches(SECRET, BODY, header=header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        _hmac("another-secret-entirely", BODY),
        _hmac(SECRET, BODY + b" "),
        _hmac(SECRET, json.dumps(json.loads(BODY)).encode()),  # the same JSON, other bytes
        _hmac(SECRET, BODY).removeprefix("sha256="),
        "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest(),
        "sha256=\u00e9\u00e9\u00e9",  # not ASCII: compared as bytes, never a TypeError
        ",,,",
    ],
)
def test_a_signature_of_anything_else_does_not_match(header: str | None) -> None:
    assert not signature_matches(SECRET, BODY, header=header)


def test_without_a_secret_nothing_matches() -> None:
    assert not signature_matches("", BODY, header=_hmac("", BODY))


# --- the request -----------------------------------------------------------------------------


def _call(**changes: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "action": "NEW",
        "comment": {"body": "<p>Here's a reply!</p>", "parentID": None},
        "author": {"id": "baf4e943", "role": "COMMENTER"},
        "story": {"id": "245b3856", "url": "http://localhost:1313/posts/a-story-url/"},
        "site": {"id": "a4bede88"},
        "tenantID": "19ba5794",
        "tenantDomain": "localhost",
    }
    call.update(changes)
    return call


def test_coral_s_call_is_read_and_unknown_fields_are_ignored() -> None:
    call = parse_request(json.dumps({**_call(), "extra": 1}, indent=2).encode())
    assert (call.action, call.comment.body, call.comment.parentID) == (
        "NEW",
        "<p>Here's a reply!</p>",
        None,
    )
    assert (call.author.id, call.author.role, call.tenantDomain) == (
        "baf4e943",
        "COMMENTER",
        "localhost",
    )


def test_only_what_is_read_is_required() -> None:
    minimal = {"action": "EDIT", "comment": {"body": ""}, "author": {"id": "a", "role": "X"}}
    assert parse_request(json.dumps(minimal).encode()).action == "EDIT"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (_call(action="REMOVE"), "action"),
        (_call(comment={"parentID": None}), "comment.body"),
        (_call(comment={"body": ["<p>"]}), "comment.body"),
        (_call(author={"role": "COMMENTER"}), "author.id"),
        (_call(author={"id": "", "role": "COMMENTER"}), "author.id"),
        (_call(author={"id": "a" * 201, "role": "COMMENTER"}), "author.id"),
        (_call(author={"id": "a"}), "author.role"),
        (_call(story="a story"), "story"),
        ([_call()], None),
    ],
)
def test_a_call_of_another_shape_is_refused_naming_the_field(call: Any, field: str | None) -> None:
    with pytest.raises(CoralRequestInvalid) as raised:
        parse_request(json.dumps(call).encode())
    assert raised.value.status_code == 400 and raised.value.field == field
    assert raised.value.code == "invalid" and raised.value.detail.startswith(field or "the body")


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"NEW"])
def test_a_body_that_is_not_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(CoralRequestMalformed) as raised:
        parse_request(raw)
    assert raised.value.status_code == 400 and raised.value.code == "malformed_json"


# --- the comment's HTML ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Here's a reply!</p>", "Here's a reply!"),
        ("You are an <b>id</b>iot", "You are an idiot"),
        ("<p>one</p><p>two</p>", "one\ntwo"),
        ("<div>one<br>two<br/>three</div>", "one\ntwo\nthree"),
        ("<p>a</p>\n\n  <p>b</p>", "a\nb"),
        ("fish &amp; chips&nbsp;&#8212;&#x27;yes&#39; &eacute;", "fish & chips \u2014'yes' \u00e9"),
        ("&lt;b&gt;shown as typed&lt;/b&gt;", "<b>shown as typed</b>"),
        ("line one\nstill line one", "line one still line one"),
        ("a < b and b > c", "a < b and b > c"),
        ('<a href="https://x.example/?a>b" title=\'it"s\'>the link</a> text', "the link text"),
        ("<blockquote>quoted</blockquote>reply", "quoted\nreply"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("<!-- a note -->shown<!doctype html>", "shown"),
        ("<script>var x = '<p>idiot</p>';</script>ok<STYLE>p {}</style>", "ok"),
        ('<img src="cat.gif" alt="a cat">', ""),
        ("<p>   </p><br>", ""),
        ("", ""),
        ("shown <a title='never closed", "shown"),
        ("\u0130<script>hidden</SCRIPT>after", "\u0130after"),
    ],
)
def test_html_becomes_the_text_a_reader_sees(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


@pytest.mark.parametrize(
    "markup",
    [
        "<a " * 20_000,
        "<!--" * 15_000,
        "</" * 30_000,
        "<" * 60_000,
        "<a '' " * 10_000,
        "<br>" * 15_000,
    ],
)
def test_html_takes_linear_time_whatever_it_holds(markup: str) -> None:
    started = time.perf_counter()
    html_to_text(markup)
    # The standard library's HTMLParser takes 25 s on the first; linear work takes milliseconds.
    assert time.perf_counter() - started < 1.0


# --- our answer ------------------------------------------------------------------------------


def test_an_approval_is_no_opinion_never_approved() -> None:
    assert coral_answer(Verdict("approve", [{"code": "all_below_threshold"}])) is None


def test_a_hold_is_withheld_and_flagged_toxic() -> None:
    reasons = [{"code": "attribute_over_threshold", "attribute": "insult", "score": 0.9}]
    for verdict in (Verdict("hold", reasons), Verdict("hold", [{"code": "unsupported_language"}])):
        assert coral_answer(verdict) == {
            "status": "SYSTEM_WITHHELD",
            "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
        }


def test_a_rejection_carries_coral_s_code_and_our_reasons() -> None:
    answer = coral_answer(Verdict("reject", [{"code": "author_banned"}]))
    assert answer == {
        "status": "REJECTED",
        "moderationAction": {
            "status": "REJECTED",
            "rejectionReason": {"code": "OTHER", "detailedExplanation": "author_banned"},
        },
    }


def test_an_answer_never_shares_its_lists_between_calls() -> None:
    first = coral_answer(Verdict("hold", []))
    assert first is not None
    first["actions"].append({"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"})
    assert coral_answer(Verdict("hold", [])) == {
        "status": "SYSTEM_WITHHELD",
        "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
    }


@pytest.mark.parametrize(
    ("reasons", "code"),
    [
        ([{"code": "author_banned"}], "OTHER"),
        ([{"code": "attribute_over_threshold", "attribute": "identity_hate"}], "HATE_SPEECH"),
        ([{"code": "attribute_over_threshold", "attribute": "threat"}], "HARASSMENT_BULLYING"),
        ([{"code": "attribute_over_threshold", "attribute": "obscene"}], "OFFENSIVE"),
        ([{"code": "attribute_over_threshold", "attribute": "toxic"}], "ABUSIVE"),
        ([{"code": "something_new"}], "ABUSIVE"),
        ([], "ABUSIVE"),
    ],
)
def test_each_reason_maps_to_coral_s_closest_rejection_code(
    reasons: list[dict[str, Any]], code: str
) -> None:
    assert rejection_code(reasons) == code


def test_the_explanation_names_each_reason_and_attribute_once() -> None:
    reasons: list[dict[str, Any]] = [
        {"code": "attribute_over_threshold", "attribute": "insult", "score": 0.9},
        {"code": "attribute_over_threshold", "attribute": "toxic", "score": 0.8},
        {"code": "author_trusted"},
        {"code": "author_trusted"},
    ]
    answer = coral_answer(Verdict("reject", reasons))
    assert answer is not None
    explanation = answer["moderationAction"]["rejectionReason"]["detailedExplanation"]
    assert explanation == (
        "attribute_over_threshold (insult), attribute_over_threshold (toxic), author_trusted"
    )
