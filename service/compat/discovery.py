"""Perspective's discovery document, pointing at this service, so Google's own client library
(`googleapiclient.discovery.build(..., discoveryServiceUrl=...)`) calls us unchanged."""

from __future__ import annotations

from typing import Any

__all__ = ["discovery_document"]

_STRING = {"type": "string", "location": "query"}
# The standard query parameters every Google API accepts (google-api-python-client sends
# `alt=json` and `key` on every call).
_PARAMETERS: dict[str, dict[str, Any]] = {
    "key": {**_STRING, "description": "API key."},
    "alt": {**_STRING, "default": "json", "enum": ["json", "media", "proto"]},
    "prettyPrint": {"type": "boolean", "location": "query", "default": "true"},
    "fields": {**_STRING, "description": "Selector specifying which fields to include."},
    "quotaUser": _STRING,
    "$.xgafv": {**_STRING, "enum": ["1", "2"]},
    "access_token": _STRING,
    "callback": _STRING,
    "oauth_token": _STRING,
    "uploadType": _STRING,
    "upload_protocol": _STRING,
}


def _object(properties: dict[str, Any], schema_id: str) -> dict[str, Any]:
    return {"id": schema_id, "type": "object", "properties": properties}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": name}


_SCORE = {"value": {"type": "number", "format": "float"}, "type": {"type": "string"}}
_SCHEMAS: dict[str, dict[str, Any]] = {
    "TextEntry": _object({"text": {"type": "string"}, "type": {"type": "string"}}, "TextEntry"),
    "Context": _object({"entries": {"type": "array", "items": _ref("TextEntry")}}, "Context"),
    "AttributeParameters": _object(
        {"scoreType": {"type": "string"}, "scoreThreshold": {"type": "number"}},
        "AttributeParameters",
    ),
    "Score": _object(_SCORE, "Score"),
    "SpanScore": _object(
        {"begin": {"type": "integer"}, "end": {"type": "integer"}, "score": _ref("Score")},
        "SpanScore",
    ),
    "AttributeScores": _object(
        {
            "summaryScore": _ref("Score"),
            "spanScores": {"type": "array", "items": _ref("SpanScore")},
        },
        "AttributeScores",
    ),
    "AnalyzeCommentRequest": _object(
        {
            "comment": _ref("TextEntry"),
            "context": _ref("Context"),
            "requestedAttributes": {
                "type": "object",
                "additionalProperties": _ref("AttributeParameters"),
            },
            "languages": {"type": "array", "items": {"type": "string"}},
            "spanAnnotations": {"type": "boolean"},
            "doNotStore": {"type": "boolean"},
            "clientToken": {"type": "string"},
            "sessionId": {"type": "string"},
            "communityId": {"type": "string"},
            "dropUnsupportedAttributes": {"type": "boolean"},
        },
        "AnalyzeCommentRequest",
    ),
    "AnalyzeCommentResponse": _object(
        {
            "attributeScores": {"type": "object", "additionalProperties": _ref("AttributeScores")},
            "languages": {"type": "array", "items": {"type": "string"}},
            "detectedLanguages": {"type": "array", "items": {"type": "string"}},
            "clientToken": {"type": "string"},
        },
        "AnalyzeCommentResponse",
    ),
    "SuggestCommentScoreRequest": _object(
        {
            "comment": _ref("TextEntry"),
            "context": _ref("Context"),
            "attributeScores": {"type": "object", "additionalProperties": _ref("AttributeScores")},
            "languages": {"type": "array", "items": {"type": "string"}},
            "communityId": {"type": "string"},
            "clientToken": {"type": "string"},
            "sessionId": {"type": "string"},
        },
        "SuggestCommentScoreRequest",
    ),
    "SuggestCommentScoreResponse": _object(
        {
            "clientToken": {"type": "string"},
            "detectedLanguages": {"type": "array", "items": {"type": "string"}},
            "requestedLanguages": {"type": "array", "items": {"type": "string"}},
        },
        "SuggestCommentScoreResponse",
    ),
}


def _method(name: str, request: str, response: str) -> dict[str, Any]:
    path = f"v1alpha1/comments:{name}"
    return {
        "id": f"commentanalyzer.comments.{name}",
        "path": path,
        "flatPath": path,
        "httpMethod": "POST",
        "parameters": {},
        "parameterOrder": [],
        "request": _ref(request),
        "response": _ref(response),
    }


def discovery_document(root_url: str) -> dict[str, Any]:
    """The `commentanalyzer:v1alpha1` description, with this service at `root_url`."""
    root = root_url if root_url.endswith("/") else f"{root_url}/"
    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": "commentanalyzer:v1alpha1",
        "name": "commentanalyzer",
        "version": "v1alpha1",
        "title": "Perspective Comment Analyzer API (served by the moderation service)",
        "protocol": "rest",
        # No mtlsRootUrl: the client would switch to it when asked for mutual TLS.
        "rootUrl": root,
        "baseUrl": root,
        "basePath": "",
        "servicePath": "",
        "batchPath": "batch",
        "parameters": _PARAMETERS,
        "schemas": _SCHEMAS,
        "resources": {
            "comments": {
                "methods": {
                    "analyze": _method(
                        "analyze", "AnalyzeCommentRequest", "AnalyzeCommentResponse"
                    ),
                    "suggestscore": _method(
                        "suggestscore", "SuggestCommentScoreRequest", "SuggestCommentScoreResponse"
                    ),
                }
            }
        },
    }
