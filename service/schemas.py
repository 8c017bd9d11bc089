"""Validated shapes of what the API accepts and returns; shared by the domain and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.models import ReasonCode, ReviewActionName

__all__ = [
    "AuthorTrustIn",
    "BulkReviewIn",
    "ClaimOut",
    "CommentIn",
    "CommentOut",
    "DecisionOut",
    "ErrorOut",
    "KeyIn",
    "PolicyIn",
    "QueueOut",
    "ReviewIn",
    "ReviewOut",
    "ScoreIn",
    "ScoreOut",
    "SiteIn",
    "SubmitOut",
]

_MAX_METADATA_BYTES = 4096


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class CommentIn(BaseModel):
    """One reader comment as a site backend posts it."""

    model_config = ConfigDict(extra="forbid", str_max_length=200)

    external_id: str = Field(min_length=1, description="The site's own id; unique per site.")
    article_id: str = Field(min_length=1)
    author_id: str = Field(min_length=1)
    # The length limit is a setting, checked by intake; here only the hard type rules.
    text: str = Field(min_length=1, max_length=1_000_000)
    parent_id: str | None = Field(
        default=None, min_length=1, description="external_id of the parent comment"
    )
    section: str | None = Field(default=None, min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("external_id", "article_id", "author_id", "parent_id", "section")
    @classmethod
    def _ids_are_clean(cls, value: str | None) -> str | None:
        if value is None:
            return value
        _no_nul(value)
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("text")
    @classmethod
    def _text_is_clean(cls, value: str) -> str:
        _no_nul(value)
        if not value.strip():
            raise ValueError("must not be empty or whitespace only")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_is_small(cls, value: dict[str, Any]) -> dict[str, Any]:

        try:
            size = len(orjson.dumps(value))
        except TypeError as exc:  # pragma: no cover - JSON input is always serialisable
            raise ValueError("must be a JSON object") from exc
        if size > _MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {_MAX_METADATA_BYTES} bytes as JSON")
        if b"\\u0000" in orjson.dumps(value):
            raise ValueError("must not contain NUL characters")
        return value


class ErrorOut(BaseModel):
    """Every error the API returns."""

    error: str = Field(description="A stable code, e.g. invalid, unauthorized, not_found.")
    detail: str = Field(description="What went wrong, for a person.")
    field: str | None = Field(default=None, description="The input at fault, if one is.")


class Span(BaseModel):
    text: str
    start: int
    end: int
    weight: float


class DecisionOut(BaseModel):
    action: Literal["approve", "hold", "reject"]
    scores: dict[str, float]
    reasons: list[dict[str, Any]]
    model_version: str
    decided_at: datetime


class SubmitOut(BaseModel):
    id: str
    external_id: str
    status: Literal["pending", "approved", "held", "rejected"]
    decision: DecisionOut | None = None


class CommentOut(SubmitOut):
    article_id: str
    author_id: str
    parent_id: str | None
    section: str | None
    text: str
    metadata: dict[str, Any]
    created_at: datetime


class ScoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, max_length=100)
    explain: bool = False

    @field_validator("texts")
    @classmethod
    def _texts_are_clean(cls, values: list[str]) -> list[str]:
        for value in values:
            _no_nul(value)
        return values


class ScoreOut(BaseModel):
    model_version: str
    results: list[dict[str, Any]]


class ReviewIn(BaseModel):
    """A moderator's decision on one comment."""

    model_config = ConfigDict(extra="forbid")

    action: ReviewActionName
    reason: ReasonCode | None = None
    note: str = Field(default="", max_length=2000)
    version: int | None = Field(
        default=None,
        ge=1,
        description="The comment version the moderator read; a changed comment gets 409.",
    )


class BulkReviewIn(BaseModel):
    """One action on many comments; all of them or none."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=500)
    action: ReviewActionName
    reason: ReasonCode | None = None
    note: str = Field(default="", max_length=2000)

    @field_validator("ids")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"ids must not repeat; repeated: {', '.join(repeated[:10])}")
        return values


class ReviewOut(BaseModel):
    id: str
    external_id: str
    status: Literal["approved", "rejected"]
    version: int
    review: dict[str, Any]


class QueueOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class ClaimOut(BaseModel):
    items: list[dict[str, Any]]
    claim_seconds: float


class AuthorTrustIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trust: Literal["normal", "trusted", "premoderated", "banned"]
    note: str = Field(default="", max_length=2000)


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=100)
    role: Literal["submitter", "moderator", "admin"]
    name: str = Field(default="", max_length=100)


class PolicyIn(BaseModel):
    """A site's policy; attributes it does not name keep the deployment's thresholds."""

    model_config = ConfigDict(extra="forbid")

    thresholds: dict[
        Literal["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"],
        float,
    ] = Field(default_factory=dict)
    unsupported_language: Literal["hold", "approve"] | None = None
    trusted_threshold: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("thresholds")
    @classmethod
    def _between_0_and_1(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, v in value.items() if not 0.0 <= v <= 1.0)
        if bad:
            raise ValueError(f"thresholds must be between 0 and 1: {', '.join(bad)}")
        return value
