"""Domain errors; one API handler renders them as `{"error", "detail", "field"}`.

ModerationError
├── NotFound            (404) CommentNotFound, SiteNotFound, ModelNotFound, JobNotFound
├── Conflict            (409) IdempotencyConflict, NotReviewable, StaleVersion, ClaimConflict,
│                             ArtifactCorrupt, JobInProgress, NoNewLabels
├── AuthError           (401) missing, unknown or revoked key
├── Forbidden           (403) the key's role may not do this
├── InvalidInput        (400/413/422) bad input that pydantic did not catch; TooFewReviews
├── RateLimited         (429) over the key's quota, or too many failed sign-ins; retry later
└── Unavailable         (503) a dependency is down; retry later
"""

from __future__ import annotations

__all__ = [
    "ArtifactCorrupt",
    "AuthError",
    "ClaimConflict",
    "CommentNotFound",
    "Conflict",
    "Forbidden",
    "IdempotencyConflict",
    "InvalidInput",
    "JobInProgress",
    "JobNotFound",
    "ModelNotFound",
    "ModerationError",
    "NoNewLabels",
    "NotFound",
    "NotReviewable",
    "RateLimited",
    "SiteNotFound",
    "StaleVersion",
    "TooFewReviews",
    "Unavailable",
]


class ModerationError(Exception):
    status_code = 400
    code = "bad_request"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(ModerationError):
    status_code = 404
    code = "not_found"


class CommentNotFound(NotFound):
    code = "comment_not_found"


class SiteNotFound(NotFound):
    code = "site_not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class Conflict(ModerationError):
    status_code = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    code = "external_id_conflict"


class ArticleClosed(Conflict):
    """The article takes no new comments (its policy says `closed`, `closed_action` refuse)."""

    code = "article_closed"


class NotReviewable(Conflict):
    """Only held comments, and comments a moderator already reviewed, can be reviewed."""

    code = "not_reviewable"


class StaleVersion(Conflict):
    """The comment changed since the moderator read it."""

    code = "stale_version"


class ClaimConflict(Conflict):
    """Another moderator holds a live claim on the comment, or the caller's own claim expired."""

    code = "claim_conflict"


class ArtifactCorrupt(Conflict):
    """A stored artifact that fails its checksum: it is never loaded."""

    code = "artifact_corrupt"


class JobInProgress(Conflict):
    """A training job is queued or running: one runs at a time."""

    code = "training_job_in_progress"


class NoNewLabels(Conflict):
    """The site has no label the active model was not trained on: retraining would learn nothing."""

    code = "no_new_labels"


class AuthError(ModerationError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ModerationError):
    status_code = 403
    code = "forbidden"


class InvalidInput(ModerationError):
    status_code = 422
    code = "invalid"


class TooFewReviews(InvalidInput):
    """A site's moderators decided too few comments to calibrate its thresholds on."""

    code = "too_few_reviews"


class RateLimited(ModerationError):
    """Over a quota: the caller may retry after `retry_after` seconds."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(ModerationError):
    status_code = 503
    code = "unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
