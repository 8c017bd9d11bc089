"""The relational data model: sites, keys, authors, comments, decisions, reviews, audit log,
webhook deliveries, training labels, model versions and training jobs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from service.core.secrets import at_rest_keyring, sealed_length

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Author",
    "Base",
    "Comment",
    "CommentStatus",
    "Decision",
    "EndedWebSession",
    "Label",
    "ModelAlias",
    "ModelEvent",
    "ModelVersion",
    "ReasonCode",
    "Review",
    "ReviewAction",
    "ReviewActionName",
    "Role",
    "ShadowScore",
    "Site",
    "TrainingJob",
    "Trust",
    "WebhookAttempt",
    "WebhookDelivery",
    "new_id",
    "utcnow",
]


class CommentStatus:
    PENDING = "pending"
    APPROVED = "approved"
    HELD = "held"
    REJECTED = "rejected"


class Trust:
    """An author's standing on a site, set by moderators."""

    NORMAL = "normal"
    TRUSTED = "trusted"  # held only above the site's (high) trusted threshold
    PREMODERATED = "premoderated"  # always held for a person
    BANNED = "banned"  # new comments rejected without scoring
    ALL = ("normal", "trusted", "premoderated", "banned")


# The reason codes a rejection (or approval) may carry; the same set as Coral and
# Perspective's moderation vocabularies, so sites can map them one to one. The one list:
# `ReviewAction.REASONS` and the API's `reason` field (its OpenAPI enum) both come from it.
ReasonCode = Literal[
    "OFFENSIVE",
    "ABUSIVE",
    "SPAM",
    "HARASSMENT_BULLYING",
    "HATE_SPEECH",
    "MISINFORMATION",
    "IRRELEVANT_CONTENT",
    "ILLEGAL_CONTENT",
    "OTHER",
]


# What a moderator does with a comment. The one list, like `ReasonCode`: `ReviewAction.ALL`
# and the API's `action` field (its OpenAPI enum) both come from it.
ReviewActionName = Literal["approve", "reject"]


class ReviewAction:
    APPROVE = "approve"
    REJECT = "reject"
    ALL: tuple[str, ...] = get_args(ReviewActionName)
    REASONS: tuple[str, ...] = get_args(ReasonCode)


class Role:
    """What a key may do. A site admin runs its own site (keys, policy, webhook, integrations);
    an operator runs the deployment (sites, shared models, quotas) and may act on every site."""

    SUBMITTER = "submitter"
    MODERATOR = "moderator"
    SITE_ADMIN = "site_admin"
    OPERATOR = "operator"
    ALL = ("submitter", "moderator", "site_admin", "operator")
    ADMINS = ("site_admin", "operator")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    # Random ids: a key of one site cannot walk another site's comments by counting.
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class EncryptedString(TypeDecorator[str]):
    """Text that Python sees plain and the database holds sealed (service/core/secrets.py).

    Sealing is randomised, so the column cannot be compared or searched in SQL; only `IS NULL`
    means anything there. The column is sized for `max_chars` characters once sealed.
    """

    impl = String
    cache_ok = True

    def __init__(self, max_chars: int) -> None:
        super().__init__(sealed_length(max_chars))
        self.max_chars = max_chars

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        # The plain column refused longer values (on PostgreSQL); the wider sealed one would not.
        if len(value) > self.max_chars:
            raise ValueError(f"a secret longer than {self.max_chars} characters")
        return at_rest_keyring().seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else at_rest_keyring().open(value)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        list[dict[str, Any]]: JSONType,
    }


class WordListRow(Base):
    """A site's `banned` or `suspect` list (service/rules/word_lists.py)."""

    __tablename__ = "word_lists"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    entries: Mapped[list[str]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyOverride(Base):
    """A section's or an article's changes to its site's policy (service/rules/overrides.py)."""

    __tablename__ = "policy_overrides"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(20), primary_key=True)  # "section" | "article"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Per-site overrides of the default policy (thresholds, ...); empty = defaults.
    policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Where decisions and reviews are sent, signed with the secret (see service/webhooks/config.py).
    webhook_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    # The secrets load (and decrypt) only where they are used: not with every key look-up.
    webhook_secret: Mapped[str | None] = mapped_column(
        EncryptedString(200), default=None, deferred=True
    )
    # What Coral signs its external moderation calls with (see service/compat/coral.py).
    coral_signing_secret: Mapped[str | None] = mapped_column(
        EncryptedString(200), default=None, deferred=True
    )
    # This site's keys' quota, set by an operator; None: the deployment's default.
    key_requests_per_second: Mapped[float | None] = mapped_column(Float, default=None)
    key_burst: Mapped[int | None] = mapped_column(default=None)
    # Comment text older than this many days is erased by beat (None: kept).
    retention_days: Mapped[int | None] = mapped_column(default=None)
    # Moved on every change of the site's word lists: a worker reloads them when it differs.
    lists_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Moved on every change of the site's policy or its overrides, for the same reason.
    policy_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings; the rest is secret
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    site: Mapped[Site] = relationship(lazy="joined")


class Author(Base):
    __tablename__ = "authors"
    __table_args__ = (UniqueConstraint("site_id", "external_id", name="uq_authors_site_external"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    trust: Mapped[str] = mapped_column(String(20), default="normal")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        UniqueConstraint("site_id", "external_id", name="uq_comments_site_external"),
        # The sweeper's look-up of stale pending comments, and the moderators' queue.
        Index("ix_comments_status_created", "status", "created_at"),
        Index("ix_comments_site_status_created", "site_id", "status", "created_at"),
        # The moderators' queue sorted by score, and an author's history.
        Index("ix_comments_site_status_score", "site_id", "status", "score"),
        Index("ix_comments_author_status", "author_id", "status"),
        # An author's recent comments, for the recent_rejections rule and floods.
        Index("ix_comments_author_created", "author_id", "created_at"),
        # Moderators often work one article's thread.
        Index("ix_comments_site_article_status", "site_id", "article_id", "status", "score"),
        # A site's retention purge walks its oldest comments not yet erased: erased ones stay,
        # and must not be walked again on every run.
        Index("ix_comments_site_erased_created", "site_id", "erased_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    article_id: Mapped[str] = mapped_column(String(200))
    section: Mapped[str | None] = mapped_column(String(200), default=None)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    parent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    text: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    status: Mapped[str] = mapped_column(String(20), default=CommentStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the sweeper last re-enqueued it: once per stale period, not on every sweep.
    swept_at: Mapped[datetime | None] = mapped_column(default=None)
    # Bumped by every change a moderator must not overlook (decision, review): a review that
    # names an older version is stale.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The highest attribute score (0 when unscored) and the decision's reason tags
    # (" code:X attribute:Y "), copied from the decision so the queue sorts and filters on one
    # table.
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reason_tags: Mapped[str] = mapped_column(String(500), default="")
    # A moderator's lease on a held comment (see service/moderation/review_queue.py).
    claimed_by: Mapped[int | None] = mapped_column(Integer, default=None)
    claim_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # When its text, metadata and everything derived from them were erased (the author asked,
    # or the site's retention ran out); the row, its decision and counts stay.
    erased_at: Mapped[datetime | None] = mapped_column(default=None)

    author: Mapped[Author] = relationship(lazy="joined")
    decision: Mapped[Decision | None] = relationship(lazy="joined", uselist=False)


class Decision(Base):
    """The automatic decision; unique per comment so that scoring twice cannot decide twice."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comment_id: Mapped[str] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), unique=True
    )
    action: Mapped[str] = mapped_column(String(20))
    scores: Mapped[dict[str, Any]] = mapped_column()
    reasons: Mapped[list[dict[str, Any]]] = mapped_column()
    model_version: Mapped[str] = mapped_column(String(100))
    latency_ms: Mapped[float] = mapped_column(Float)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_comment", "comment_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    comment_id: Mapped[str | None] = mapped_column(String(32), default=None)
    actor: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """A moderator's action on a comment; a comment may be reviewed again, each one kept."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_comment", "comment_id", "created_at"),
        Index("ix_reviews_site_created", "site_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    comment_id: Mapped[str] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    key_id: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40), default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event to send to a site's webhook, retried with backoff until delivered or too old."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_site_created", "site_id", "created_at"),
        Index("ix_webhook_deliveries_comment", "comment_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    comment_id: Mapped[str | None] = mapped_column(String(32), default=None)
    event: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column()
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: when, how long, and what the receiver said."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class Label(Base):
    """A training label: the text as a moderator judged it (or as imported), per attribute.

    `labels` maps attribute to 0 or 1; an attribute it does not name is unlabelled. A comment
    has one label, which its latest review rewrites.
    """

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("comment_id", name="uq_labels_comment"),
        # A Perspective client's later suggestion for the same comment replaces the earlier.
        UniqueConstraint("site_id", "client_token", name="uq_labels_site_client_token"),
        Index("ix_labels_site_created", "site_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    comment_id: Mapped[str | None] = mapped_column(String(32), default=None)
    source: Mapped[str] = mapped_column(String(20))  # review | import | perspective
    text: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column()
    actor: Mapped[str] = mapped_column(String(200), default="")
    # A Perspective suggestscore's clientToken (Coral: "comment:<id>") and communityId.
    client_token: Mapped[str | None] = mapped_column(String(200), default=None)
    community_id: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """An immutable model: its artifact (a zip of the artifact folder) and what it was made of."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))  # the artifact's own (classifier manifest)
    archive: Mapped[bytes] = mapped_column(LargeBinary)
    archive_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="candidate")
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    parent: Mapped[str | None] = mapped_column(String(100), default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    bias: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    """A movable name ("active") that points at one version; every move is a ModelEvent."""

    __tablename__ = "model_aliases"

    alias: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("model_versions.version"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelEvent(Base):
    __tablename__ = "model_events"
    __table_args__ = (Index("ix_model_events_created", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(30))
    from_version: Mapped[str | None] = mapped_column(String(100), default=None)
    to_version: Mapped[str | None] = mapped_column(String(100), default=None)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingJob(Base):
    """One retraining run; `active_slot` is 1 while queued or running, so at most one runs."""

    __tablename__ = "training_jobs"
    __table_args__ = (
        UniqueConstraint("active_slot", name="uq_training_jobs_active_slot"),
        Index("ix_training_jobs_created", "created_at"),
        Index("ix_training_jobs_site_finished", "site_id", "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("sites.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(20), default="queued")
    active_slot: Mapped[int | None] = mapped_column(Integer, default=1)
    stage: Mapped[str] = mapped_column(String(100), default="queued")
    percent: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    labels_used: Mapped[int] = mapped_column(Integer, default=0)
    # The newest label time the job read: the schedule never starts a job on labels one has
    # already read, promoted or not.
    labels_until: Mapped[datetime | None] = mapped_column(default=None)
    candidate_version: Mapped[str | None] = mapped_column(String(100), default=None)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)


class ShadowScore(Base):
    """A shadow model's verdict on a live comment, beside the active model's decision."""

    __tablename__ = "shadow_scores"
    __table_args__ = (UniqueConstraint("version", "comment_id", name="uq_shadow_scores_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(100))
    comment_id: Mapped[str] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(20))
    scores: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EndedWebSession(Base):
    """A moderator's web session ended by signing out: its cookie, even copied before, no longer
    signs anyone in. Kept as long as a session could live (then the cookie expires anyway)."""

    __tablename__ = "ended_web_sessions"
    __table_args__ = (Index("ix_ended_web_sessions_ended_at", "ended_at"),)

    # sha256 of the session's CSRF token: unique to the session, never stored itself.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    ended_at: Mapped[datetime] = mapped_column()
