"""Perspective's wire format: its attribute names, its requests, its UTF-16 spans, its errors.

Everything here is a plain function of the request and the scores; the routes in
`service.compat.perspective` authenticate, score and answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.compat.errors import GoogleError

__all__ = [
    "ATTRIBUTE_OF",
    "MAX_COMMENT_BYTES",
    "AnalyzeIn",
    "Requested",
    "SuggestIn",
    "analyze_response",
    "check_comment",
    "language_error",
    "parse",
    "primary_language",
    "requested_attributes",
    "sentence_spans",
    "suggested_labels",
    "utf16_offsets",
]

# Perspective's production attributes and the attribute of our model that answers each.
ATTRIBUTE_OF: Mapping[str, str] = {
    "TOXICITY": "toxic",
    "SEVERE_TOXICITY": "severe_toxic",
    "IDENTITY_ATTACK": "identity_hate",
    "INSULT": "insult",
    "PROFANITY": "obscene",
    "THREAT": "threat",
}
MAX_COMMENT_BYTES = 20_480  # Perspective's limit, in bytes of UTF-8
PLAIN_TEXT = "PLAIN_TEXT"
PROBABILITY = "PROBABILITY"
_EXPERIMENTAL = "_EXPERIMENTAL"
# A sentence: up to and including its closing punctuation, or to the end of the text.
_SENTENCE = re.compile(r"\S.*?(?:[.!?]+(?=\s|$)|$)", re.DOTALL)


M = TypeVar("M", bound=BaseModel)


class _Open(BaseModel):
    # Clients send fields we do not use (context, sessionId, future ones): accepted, ignored.
    model_config = ConfigDict(extra="ignore")


class CommentIn(_Open):
    text: str = ""
    type: str = PLAIN_TEXT


class AttributeIn(_Open):
    scoreType: str | None = None
    scoreThreshold: float | None = Field(default=None, ge=0.0, le=1.0)


class AnalyzeIn(_Open):
    comment: CommentIn = Field(default_factory=CommentIn)
    requestedAttributes: dict[str, AttributeIn] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=list)
    spanAnnotations: bool = False
    doNotStore: bool = False
    clientToken: str | None = None
    communityId: str | None = None
    dropUnsupportedAttributes: bool = False


class SummaryIn(_Open):
    value: float = Field(ge=0.0, le=1.0)


class SuggestedIn(_Open):
    summaryScore: SummaryIn | None = None


class SuggestIn(_Open):
    comment: CommentIn = Field(default_factory=CommentIn)
    attributeScores: dict[str, SuggestedIn] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=list)
    clientToken: str | None = Field(default=None, max_length=200)
    communityId: str | None = Field(default=None, max_length=300)


def parse(model: type[M], body: Any) -> M:
    """The request as `model`, or a Google-shaped 400 naming the field at fault."""
    if not isinstance(body, dict):
        raise GoogleError("Invalid JSON payload received. The body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise GoogleError(f'Invalid value at "{field}": {first["msg"]}') from None


def check_comment(comment: CommentIn) -> str:
    """The comment's text, if Perspective would score it; its error otherwise."""
    if comment.type != PLAIN_TEXT:
        raise GoogleError(
            f"Currently, only '{PLAIN_TEXT}' comments are supported (comment.type was "
            f"{comment.type!r})."
        )
    if not comment.text.strip():
        raise GoogleError("Comment must be non-empty.", error_type="COMMENT_EMPTY")
    if "\x00" in comment.text:
        raise GoogleError("Comment text must not contain NUL characters.")
    if len(comment.text.encode("utf-8")) > MAX_COMMENT_BYTES:
        raise GoogleError(
            f"Comment text too long: over {MAX_COMMENT_BYTES} bytes of UTF-8.",
            error_type="COMMENT_TOO_LONG",
        )
    return comment.text


@dataclass(frozen=True)
class Requested:
    """One requested attribute: its name as the client spelled it, and what answers it."""

    name: str
    attribute: str
    score_type: str
    threshold: float | None


def _base_name(name: str) -> str:
    """TOXICITY@6 and TOXICITY_EXPERIMENTAL are TOXICITY, pinned or not."""
    base = name.split("@", 1)[0].upper()
    return base.removesuffix(_EXPERIMENTAL)


def requested_attributes(request: AnalyzeIn) -> list[Requested]:
    """The attributes to answer, in the order asked; unknown ones refused or dropped."""
    if not request.requestedAttributes:
        raise GoogleError("Missing requested_attributes", error_type="NO_REQUESTED_ATTRIBUTES")
    out = []
    for name, options in request.requestedAttributes.items():
        attribute = ATTRIBUTE_OF.get(_base_name(name))
        if attribute is None:
            if request.dropUnsupportedAttributes:
                continue
            raise GoogleError(f"Unknown requested attribute: {name}")
        score_type = options.scoreType or PROBABILITY
        if score_type != PROBABILITY:
            raise GoogleError(
                f"Attribute {name} does not support scoreType {score_type}: only "
                f"{PROBABILITY} is served."
            )
        out.append(Requested(name, attribute, score_type, options.scoreThreshold))
    if not out:
        raise GoogleError(
            "None of the requested attributes is supported.",
            error_type="NO_REQUESTED_ATTRIBUTES",
        )
    return out


def primary_language(tag: str) -> str:
    """en-US and EN are en: the primary subtag of a BCP-47 tag, lower case."""
    return tag.replace("_", "-").split("-", 1)[0].lower()


def language_error(attribute: str, languages: Sequence[str], *, detected: bool) -> GoogleError:
    """What Perspective answers for an attribute asked of a language it does not know."""
    key = "detectedLanguages" if detected else "requestedLanguages"
    source = "detected" if detected else "request"
    return GoogleError(
        f"Attribute {attribute} does not support {source} languages: {','.join(languages)}",
        error_type="LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
        extra={
            "languageNotSupportedByAttributeError": {"attribute": attribute, key: list(languages)}
        },
    )


def utf16_offsets(text: str) -> list[int]:
    """offsets[i] is where the text's i-th character starts in UTF-16 code units (what
    Perspective's spans count), for i up to len(text)."""
    offsets = [0] * (len(text) + 1)
    for i, char in enumerate(text):
        offsets[i + 1] = offsets[i] + (2 if ord(char) > 0xFFFF else 1)
    return offsets


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, in characters, end exclusive; at least one span."""
    spans = [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]
    return spans or [(0, len(text))]


def _score(value: float, score_type: str) -> dict[str, Any]:
    return {"value": round(value, 6), "type": score_type}


def analyze_response(
    request: AnalyzeIn,
    attributes: Sequence[Requested],
    *,
    summary: Mapping[str, float],
    spans: Sequence[tuple[int, int, Mapping[str, float]]],
    detected: Sequence[str],
) -> dict[str, Any]:
    """The analyze answer: each attribute under the name it was asked by, its summary score
    and its span scores (UTF-16 offsets); an attribute under its threshold is left out."""
    offsets = utf16_offsets(request.comment.text)
    scores: dict[str, Any] = {}
    for requested in attributes:
        value = summary[requested.attribute]
        if requested.threshold is not None and value < requested.threshold:
            continue
        scores[requested.name] = {
            "spanScores": [
                {
                    "begin": offsets[start],
                    "end": offsets[end],
                    "score": _score(values[requested.attribute], requested.score_type),
                }
                for start, end, values in spans
            ],
            "summaryScore": _score(value, requested.score_type),
        }
    answer: dict[str, Any] = {
        "attributeScores": scores,
        "languages": list(request.languages) or list(detected[:1]),
        "detectedLanguages": list(detected),
    }
    if request.clientToken is not None:
        answer["clientToken"] = request.clientToken
    return answer


def suggested_labels(request: SuggestIn) -> dict[str, int]:
    """A moderator's verdict as labels of our attributes: a value of 0.5 or more is a 1."""
    labels = {}
    for name, suggested in request.attributeScores.items():
        attribute = ATTRIBUTE_OF.get(_base_name(name))
        if attribute is not None and suggested.summaryScore is not None:
            labels[attribute] = int(suggested.summaryScore.value >= 0.5)
    if not labels:
        known = ", ".join(ATTRIBUTE_OF)
        raise GoogleError(f"attributeScores must give a summaryScore for one of: {known}.")
    return labels
