"""Perspective's clients against the running service: Google's own client library through the
served discovery document, Coral's exact requests, and every error in Google's shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from service.core.tables import Label
from tests.factories import CIVIL, TOXIC
from tests.stack import Stack

pytestmark = pytest.mark.integration

MODERATION = str(Path(sys.executable).parent / "moderation")
GERMAN = (
    "Vielen Dank für diesen ausgezeichneten Artikel über die Friedensgespräche, er war sehr "
    "informativ und gut geschrieben."
)
# What Coral's toxic comment filter sends (server/src/core/server/services/perspective).
CORAL_ANALYZE = {
    "comment": {"text": TOXIC[0]},
    "doNotStore": True,
    "requestedAttributes": {"TOXICITY": {}},
    "languages": ["en"],
}


def _client(stack: Stack, key: str) -> Any:
    return discovery.build(
        "commentanalyzer",
        "v1alpha1",
        developerKey=key,
        discoveryServiceUrl=f"{stack.base_url}/$discovery/rest?version=v1alpha1",
        static_discovery=False,
        cache_discovery=False,
    )


def _analyze(
    stack: Stack, body: Any, *, path: str = "/v1alpha1/comments:analyze", **params: str
) -> httpx.Response:
    query = {"key": stack.keys["news-submitter"], **params}
    return httpx.post(f"{stack.base_url}{path}", params=query, json=body, timeout=30)


def _error(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["details"], "details is never empty"
    return error


def test_googles_client_scores_through_the_served_discovery_document(stack: Stack) -> None:
    client = _client(stack, stack.keys["news-submitter"])
    body = {"comment": {"text": TOXIC[0]}, "requestedAttributes": {"TOXICITY": {}, "INSULT": {}}}
    toxic = client.comments().analyze(body=body).execute()
    body["comment"] = {"text": CIVIL[0]}
    civil = client.comments().analyze(body=body).execute()
    assert set(toxic["attributeScores"]) == {"TOXICITY", "INSULT"}
    assert toxic["attributeScores"]["TOXICITY"]["summaryScore"]["value"] > 0.8
    assert civil["attributeScores"]["TOXICITY"]["summaryScore"]["value"] < 0.2
    assert toxic["attributeScores"]["TOXICITY"]["summaryScore"]["type"] == "PROBABILITY"
    assert toxic["languages"] == ["en"] and toxic["detectedLanguages"] == ["en"]


def test_the_discovery_document_points_at_this_service_and_ignores_the_key(stack: Stack) -> None:
    response = httpx.get(f"{stack.base_url}/$discovery/rest", params={"version": "v1alpha1"})
    assert response.status_code == 200
    document = response.json()
    assert document["rootUrl"] == f"{stack.base_url}/"
    assert "mtlsRootUrl" not in document
    methods = document["resources"]["comments"]["methods"]
    assert methods["analyze"]["path"] == "v1alpha1/comments:analyze"
    with_key = httpx.get(f"{stack.base_url}/$discovery/rest?version=v1alpha1&key=whatever")
    assert with_key.json() == document


def test_a_bad_key_is_googles_api_key_invalid_through_the_client(stack: Stack) -> None:
    client = _client(stack, "mk_not_a_key")
    with pytest.raises(HttpError) as caught:
        client.comments().analyze(body=CORAL_ANALYZE).execute()
    assert caught.value.status_code == 400
    assert caught.value.error_details[0]["reason"] == "API_KEY_INVALID"


def test_coral_at_the_root_path_with_the_key_in_a_header_and_googles_query_parameters(
    stack: Stack,
) -> None:
    response = httpx.post(
        f"{stack.base_url}/comments:analyze",
        params={"alt": "json", "prettyPrint": "false", "fields": "attributeScores", "$.xgafv": "2"},
        headers={"X-Goog-Api-Key": stack.keys["news-submitter"]},
        json={**CORAL_ANALYZE, "somethingNew": {"ignored": True}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["attributeScores"]["TOXICITY"]["summaryScore"]["value"] > 0.8


def test_names_are_answered_as_spelled_and_thresholds_leave_attributes_out(stack: Stack) -> None:
    body = {
        "comment": {"text": TOXIC[0]},
        "requestedAttributes": {
            "TOXICITY@6": {},
            "INSULT_EXPERIMENTAL": {"scoreType": "PROBABILITY"},
            "THREAT": {"scoreThreshold": 0.99},
        },
        "clientToken": "comment:53922",
    }
    answer = _analyze(stack, body).json()
    assert set(answer["attributeScores"]) == {"TOXICITY@6", "INSULT_EXPERIMENTAL"}
    assert answer["clientToken"] == "comment:53922"
    span = answer["attributeScores"]["TOXICITY@6"]["spanScores"]
    assert span == [{"begin": 0, "end": len(TOXIC[0]), "score": span[0]["score"]}]


def test_sentence_spans_count_utf16_code_units_past_an_emoji(stack: Stack) -> None:
    text = "Great work 😀 on this. You are a complete idiot."
    body = {
        "comment": {"text": text},
        "requestedAttributes": {"TOXICITY": {}},
        "spanAnnotations": True,
    }
    spans = _analyze(stack, body).json()["attributeScores"]["TOXICITY"]["spanScores"]
    first, second = spans
    # The emoji is one Python character but two UTF-16 code units.
    assert (first["begin"], first["end"]) == (0, len("Great work 😀 on this.") + 1)
    assert second["begin"] == text.index("You") + 1 and second["end"] == len(text) + 1
    assert second["score"]["value"] > 0.8 > first["score"]["value"]


def test_unknown_and_dropped_attributes(stack: Stack) -> None:
    unknown = _error(
        _analyze(stack, {"comment": {"text": "hi"}, "requestedAttributes": {"SPAM": {}}}), 400
    )
    assert unknown["message"] == "Unknown requested attribute: SPAM"
    body = {
        "comment": {"text": "hi there"},
        "requestedAttributes": {"SPAM": {}, "TOXICITY": {}},
        "dropUnsupportedAttributes": True,
    }
    assert set(_analyze(stack, body).json()["attributeScores"]) == {"TOXICITY"}
    body["requestedAttributes"] = {"SPAM": {}}
    error = _error(_analyze(stack, body), 400)
    assert error["details"][0]["errorType"] == "NO_REQUESTED_ATTRIBUTES"
    raw = {"comment": {"text": "hi"}, "requestedAttributes": {"TOXICITY": {"scoreType": "RAW"}}}
    assert "RAW" in _error(_analyze(stack, raw), 400)["message"]


def test_another_language_is_refused_never_scored_as_english(stack: Stack) -> None:
    asked = {
        "comment": {"text": "Hallo"},
        "requestedAttributes": {"TOXICITY": {}},
        "languages": ["de"],
    }
    error = _error(_analyze(stack, asked), 400)
    assert error["message"] == "Attribute TOXICITY does not support request languages: de"
    assert error["details"][0]["errorType"] == "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"
    detected = {"comment": {"text": GERMAN}, "requestedAttributes": {"TOXICITY": {}}}
    error = _error(_analyze(stack, detected), 400)
    assert "does not support detected languages: de" in error["message"]
    assert error["details"][0]["errorType"] == "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"
    english = {**detected, "comment": {"text": CIVIL[0]}, "languages": ["en-US"]}
    assert _analyze(stack, english).status_code == 200


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ({"comment": {"text": ""}, "requestedAttributes": {"TOXICITY": {}}}, "COMMENT_EMPTY"),
        ({"comment": {"text": " \n\t"}, "requestedAttributes": {"TOXICITY": {}}}, "COMMENT_EMPTY"),
        ({}, "COMMENT_EMPTY"),
        (
            {"comment": {"text": "é" * 10_241}, "requestedAttributes": {"TOXICITY": {}}},
            "COMMENT_TOO_LONG",
        ),
        ({"comment": {"text": "hi"}, "requestedAttributes": {}}, "NO_REQUESTED_ATTRIBUTES"),
        (
            {
                "comment": {"text": "<b>hi</b>", "type": "HTML"},
                "requestedAttributes": {"TOXICITY": {}},
            },
            "INVALID_REQUEST",
        ),
        (
            {"comment": {"text": "a\x00b"}, "requestedAttributes": {"TOXICITY": {}}},
            "INVALID_REQUEST",
        ),
        ({"comment": {"text": 5}, "requestedAttributes": {"TOXICITY": {}}}, "INVALID_REQUEST"),
        (["not", "an", "object"], "INVALID_REQUEST"),
    ],
)
def test_bad_requests_are_googles_400_with_perspectives_error_type(
    stack: Stack, body: Any, error_type: str
) -> None:
    error = _error(_analyze(stack, body), 400)
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["errorType"] == error_type


def test_an_empty_probe_malformed_json_and_a_huge_body_are_googles_errors(stack: Stack) -> None:
    url = f"{stack.base_url}/v1alpha1/comments:analyze"
    key = {"key": stack.keys["news-submitter"]}
    probe = _error(httpx.post(url, params=key, content=b""), 400)
    assert probe["details"][0]["errorType"] == "COMMENT_EMPTY"
    bad_key_probe = _error(httpx.post(url, params={"key": "nope"}, content=b""), 400)
    assert bad_key_probe["details"][0]["reason"] == "API_KEY_INVALID"
    no_key = _error(httpx.post(url, json=CORAL_ANALYZE), 400)
    assert no_key["details"][0]["reason"] == "API_KEY_INVALID"
    malformed = _error(httpx.post(url, params=key, content=b'{"comment": '), 400)
    assert malformed["message"].startswith("Invalid JSON payload received.")
    huge = httpx.post(
        url, params=key, content=b"x" * 70_000, headers={"content-type": "application/json"}
    )
    assert _error(huge, 413)["details"][0]["errorType"] == "COMMENT_TOO_LONG"


def test_coral_suggestions_become_the_sites_labels_and_a_later_one_replaces_the_first(
    stack: Stack,
) -> None:
    text = "A moderated comment about the peace talks, judged by a person."
    suggestion = {
        "comment": {"text": text},
        "context": {
            "entries": [
                {"text": '{"url":"https://site/story?commentID=c77","Coral_comment_id":"c77"}'}
            ]
        },
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": 1}}},
        "languages": ["en"],
        "communityId": "Coral:https://news.example/",
        "clientToken": "comment:c77",
    }
    first = _analyze(stack, suggestion, path="/comments:suggestscore")
    assert first.status_code == 200, first.text
    assert first.json() == {
        "clientToken": "comment:c77",
        "detectedLanguages": ["en"],
        "requestedLanguages": ["en"],
    }
    suggestion["attributeScores"] = {"TOXICITY": {"summaryScore": {"value": 0}}}
    assert _analyze(stack, suggestion, path="/v1alpha1/comments:suggestscore").status_code == 200
    with stack.sessions() as session:
        labels = session.query(Label).filter(Label.client_token == "comment:c77").all()
    assert [(label.labels, label.source) for label in labels] == [({"toxic": 0}, "perspective")]
    assert labels[0].community_id == "Coral:https://news.example/"
    exported = subprocess.run(
        [MODERATION, "labels", "export", "--site", "news"],
        env=stack.env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert text in exported and "perspective" in exported
    # The next retraining job of the site counts it among the labels its model has not seen.
    with stack.client("news-operator") as admin:
        job = admin.post("/v1/models/retrain")
    assert job.status_code == 202, job.text
    assert job.json()["result"]["new_labels"] >= 1
    nothing = {**suggestion, "attributeScores": {"SPAM": {"summaryScore": {"value": 1}}}}
    assert _error(_analyze(stack, nothing, path="/comments:suggestscore"), 400)


def test_googles_batch_answers_every_call_in_order_errors_included(stack: Stack) -> None:
    client = _client(stack, stack.keys["news-submitter"])
    answers: dict[str, Any] = {}

    def collect(request_id: str, response: Any, exception: Exception | None) -> None:
        answers[request_id] = exception if exception is not None else response

    batch = client.new_batch_http_request(callback=collect)
    for i, text in enumerate([TOXIC[0], CIVIL[0], ""]):
        body = {"comment": {"text": text}, "requestedAttributes": {"TOXICITY": {}}}
        batch.add(client.comments().analyze(body=body), request_id=str(i))
    batch.execute()
    assert answers["0"]["attributeScores"]["TOXICITY"]["summaryScore"]["value"] > 0.8
    assert answers["1"]["attributeScores"]["TOXICITY"]["summaryScore"]["value"] < 0.2
    assert isinstance(answers["2"], HttpError) and answers["2"].status_code == 400
    assert answers["2"].error_details[0]["errorType"] == "COMMENT_EMPTY"


def test_a_batch_that_is_not_multipart_is_googles_400(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.base_url}/batch", params={"key": stack.keys["news-submitter"]}, json={}
    )
    assert "multipart/mixed" in _error(response, 400)["message"]
