"""Validated shapes of what the API accepts and returns (a comment's input shape is the domain's:
`service.comments.schemas`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.comments.schemas import no_nul
from service.core.tables import ReasonCode, ReviewActionName
from service.moderation.reviews import MAX_NOTE
from service.rules.policy_body import PolicyBody
from service.sites.keys import ADMIN_WAS_SPLIT, OLD_ADMIN_ROLE
from service.webhooks.config import MIN_SECRET_LENGTH

__all__ = [
    "AttemptOut",
    "AuthorTrustIn",
    "BulkReviewIn",
    "ClaimOut",
    "CommentOut",
    "DecisionOut",
    "DeliveriesOut",
    "DeliveryOut",
    "ErrorOut",
    "KeyIn",
    "PolicyIn",
    "QueueOut",
    "QuotaIn",
    "ReasonIn",
    "RetentionIn",
    "RetireIn",
    "RetrainIn",
    "ReviewIn",
    "ReviewOut",
    "ScoreIn",
    "ScoreOut",
    "ShadowIn",
    "SiteIn",
    "SubmitOut",
    "WebhookIn",
    "WebhookOut",
    "WordListIn",
]


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
            no_nul(value)
        return values


class ScoreOut(BaseModel):
    model_version: str
    results: list[dict[str, Any]]


class ReviewIn(BaseModel):
    """A moderator's decision on one comment."""

    model_config = ConfigDict(extra="forbid")

    action: ReviewActionName
    reason: ReasonCode | None = None
    note: str = Field(default="", max_length=MAX_NOTE)
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
    note: str = Field(default="", max_length=MAX_NOTE)

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
    note: str = Field(default="", max_length=MAX_NOTE)


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=100)
    role: Literal["submitter", "moderator", "site_admin", "operator"]
    name: str = Field(default="", max_length=100)

    @field_validator("role", mode="before")
    @classmethod
    def _say_what_admin_became(cls, value: object) -> object:
        if value == OLD_ADMIN_ROLE:
            raise ValueError(ADMIN_WAS_SPLIT)
        return value


class WordListIn(BaseModel):
    """A site's banned or suspect list: words or phrases, `*` at the end for any ending."""

    model_config = ConfigDict(extra="forbid")

    entries: list[str] = Field(max_length=10_000)


class RetentionIn(BaseModel):
    """How many days the site's comment text is kept; null keeps it."""

    model_config = ConfigDict(extra="forbid")

    days: int | None = Field(ge=1, le=36_500)


class QuotaIn(BaseModel):
    """A site's key quota; a field left out (or null) goes back to the deployment's default."""

    model_config = ConfigDict(extra="forbid")

    requests_per_second: float | None = Field(default=None, gt=0, le=1_000_000)
    burst: int | None = Field(default=None, ge=1, le=10_000_000)


class PolicyIn(PolicyBody):
    """A policy body at any level (site, section, article): service/rules/policy_body.py."""


# -- the model registry and retraining (service/api/models.py) --


class ReasonIn(BaseModel):
    """Why: kept with the alias move in the model events."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)


class RetireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)


class RetrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(
        default=None, min_length=1, max_length=100, description="Default: the key's site."
    )


class ShadowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(
        min_length=1, max_length=100, description="The version to shadow; null stops shadowing."
    )


# -- a site's webhook and its deliveries (service/api/webhooks.py) --


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=2000, description="http(s) URL of the site backend's receiver."
    )
    secret: str | None = Field(
        default=None,
        min_length=MIN_SECRET_LENGTH,
        max_length=200,
        description="Signing secret. Omitted: the current one is kept, or one is generated.",
    )


class WebhookOut(BaseModel):
    site: str
    url: str | None
    secret_set: bool
    secret: str | None = Field(
        default=None,
        description="Only when this request generated it: store it now, it is never shown again.",
    )


class AttemptOut(BaseModel):
    number: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    event: str
    comment_id: str | None
    url: str
    status: Literal["pending", "sending", "delivered", "failed"]
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
    attempts: list[AttemptOut]


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
