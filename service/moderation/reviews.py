"""Moderators' reviews: approve or reject held comments, one or in bulk, and the audit trail.

A review moves a held comment to approved or rejected. A moderator may change their mind: a
comment that was reviewed may be reviewed again, and every review is kept. A review that names
the version it read is refused if the comment changed since (another moderator got there first).
A comment someone else has claimed is theirs until the lease runs out; a moderator whose own
claim expired must claim again, because another may have taken and reviewed it meanwhile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session, lazyload

from service.core.db import rowcount
from service.core.errors import (
    ClaimConflict,
    CommentNotFound,
    InvalidInput,
    NotReviewable,
    StaleVersion,
)
from service.core.tables import (
    AuditEntry,
    Comment,
    CommentStatus,
    Decision,
    Review,
    ReviewAction,
    Site,
    WebhookDelivery,
    utcnow,
)
from service.models.labels import labels_from_reviews
from service.webhooks.config import record_event

__all__ = [
    "MAX_BULK",
    "MAX_NOTE",
    "Reviewed",
    "check_note",
    "comment_history",
    "review_comment",
    "review_many",
    "review_view",
]

MAX_BULK = 500
# One limit for every way a note arrives (the API, the pages' forms, bulk reviews, trust).
MAX_NOTE = 2000
_TO_STATUS = {
    ReviewAction.APPROVE: CommentStatus.APPROVED,
    ReviewAction.REJECT: CommentStatus.REJECTED,
}


@dataclass(frozen=True)
class Reviewed:
    view: dict[str, Any]
    review: dict[str, Any]
    # Webhook deliveries recorded in the same transaction; enqueue them after the commit.
    delivery_ids: list[str] = field(default_factory=list)


def check_note(note: str) -> None:
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"note must be at most {MAX_NOTE} characters", field="note")


def _check_input(action: str, reason: str | None, note: str) -> None:
    check_note(note)
    if action not in ReviewAction.ALL:
        raise InvalidInput(f"action must be one of {', '.join(ReviewAction.ALL)}", field="action")
    if reason is not None and reason not in ReviewAction.REASONS:
        raise InvalidInput(
            f"reason must be one of {', '.join(ReviewAction.REASONS)}", field="reason"
        )


def _check_reviewable(
    comment: Comment, reviewed_before: bool, *, key_id: int, version: int | None, now: datetime
) -> None:
    if comment.erased_at is not None:
        raise NotReviewable(
            f"comment {comment.id} was erased: there is nothing left to review", field="id"
        )
    if comment.status != CommentStatus.HELD and not reviewed_before:
        raise NotReviewable(
            f"comment {comment.id} is {comment.status}, not held: only held comments, and "
            "comments already reviewed, can be reviewed",
            field="id",
        )
    if version is not None and version != comment.version:
        raise StaleVersion(
            f"comment {comment.id} changed since it was read (version {version}; it is now "
            f"{comment.version}): read it again before reviewing",
            field="version",
        )
    lease = comment.claim_expires_at
    if comment.claimed_by is not None and lease is not None:
        if comment.claimed_by != key_id and lease > now:
            raise ClaimConflict(
                f"comment {comment.id} is claimed by another moderator until {lease.isoformat()}",
                field="id",
            )
        if comment.claimed_by == key_id and lease <= now:
            raise ClaimConflict(
                f"your claim on comment {comment.id} expired at {lease.isoformat()}; claim it "
                "again",
                field="id",
            )


def review_view(review: Review) -> dict[str, Any]:
    return {
        "action": review.action,
        "reason": review.reason,
        "note": review.note,
        "actor": review.actor,
        "from_status": review.from_status,
        "to_status": review.to_status,
        "at": review.created_at,
    }


def _move(session: Session, comments: Sequence[Comment], *, to_status: str, now: datetime) -> None:
    """One UPDATE for the lot, each row guarded by the version that was checked: if any row
    changed meanwhile (SQLite does not lock on SELECT), fewer rows move and everything rolls
    back, so a bulk review stays all or nothing."""
    moved = session.execute(
        update(Comment)
        .where(tuple_(Comment.id, Comment.version).in_([(c.id, c.version) for c in comments]))
        .values(
            status=to_status,
            version=Comment.version + 1,
            updated_at=now,
            claimed_by=None,
            claim_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(moved) != len(comments):
        raise StaleVersion(
            "a comment was changed by someone else during this review; nothing was reviewed",
            field="id" if len(comments) == 1 else "ids",
        )


def _add_review(
    session: Session,
    comment: Comment,
    hooks: tuple[int, str, str] | None,
    *,
    key_id: int,
    actor: str,
    action: str,
    reason: str | None,
    note: str,
    now: datetime,
) -> Reviewed:
    """The comment's review row, and its comment.reviewed delivery when the site has a webhook."""
    to_status = _TO_STATUS[action]
    review = Review(
        site_id=comment.site_id,
        comment_id=comment.id,
        key_id=key_id,
        actor=actor,
        action=action,
        reason=reason,
        note=note,
        from_status=comment.status,  # the object still holds the status the UPDATE moved from
        to_status=to_status,
        created_at=now,
    )
    session.add(review)
    view = {
        "id": comment.id,
        "external_id": comment.external_id,
        "status": to_status,
        "version": comment.version + 1,
    }
    deliveries = []
    if hooks is not None:
        deliveries.append(_record_reviewed(session, hooks, comment, view, review))
    return Reviewed(view, review_view(review), deliveries)


def _apply(
    session: Session,
    comments: Sequence[Comment],
    *,
    key_id: int,
    actor: str,
    action: str,
    reason: str | None,
    note: str,
    now: datetime,
) -> list[Reviewed]:
    """Write the reviews; every check has passed. The guarded UPDATE (same version) makes a
    concurrent review of the same comment fail instead of silently overwriting it."""
    hooks = _webhook_targets(session, comments[0].site_id) if comments else None
    _move(session, comments, to_status=_TO_STATUS[action], now=now)
    labels_from_reviews(session, comments, action=action, actor=actor, now=now)
    done = [
        _add_review(
            session,
            comment,
            hooks,
            key_id=key_id,
            actor=actor,
            action=action,
            reason=reason,
            note=note,
            now=now,
        )
        for comment in comments
    ]
    session.flush()
    return done


def _webhook_targets(session: Session, site_id: int) -> tuple[int, str, str] | None:
    row = session.execute(
        select(Site.id, Site.name, Site.webhook_url).where(Site.id == site_id)
    ).one()
    return (row.id, row.name, row.webhook_url) if row.webhook_url else None


def _record_reviewed(
    session: Session,
    hooks: tuple[int, str, str],
    comment: Comment,
    view: dict[str, Any],
    review: Review,
) -> str:
    site_id, site_name, url = hooks
    data = {
        "comment": view,
        "review": {**review_view(review), "at": review.created_at.isoformat()},
    }
    return record_event(
        session,
        site_id=site_id,
        url=url,
        event="comment.reviewed",
        comment_id=comment.id,
        data=data,
        site_name=site_name,
    )


def _load(session: Session, site_id: int, comment_ids: Sequence[str]) -> dict[str, Comment]:
    # Only the comment rows: their decisions and authors are not needed to review them.
    rows = session.scalars(
        select(Comment)
        .options(lazyload(Comment.author), lazyload(Comment.decision))
        .where(Comment.id.in_(comment_ids), Comment.site_id == site_id)
        .with_for_update(of=Comment)
    ).all()
    return {c.id: c for c in rows}


def _reviewed_before(session: Session, comment_ids: Sequence[str]) -> set[str]:
    return set(
        session.scalars(select(Review.comment_id).where(Review.comment_id.in_(comment_ids))).all()
    )


def review_comment(
    session: Session,
    site_id: int,
    comment_id: str,
    *,
    key_id: int,
    actor: str,
    action: str,
    reason: str | None = None,
    note: str = "",
    version: int | None = None,
    now: datetime | None = None,
) -> Reviewed:
    """Approve or reject one comment of the site; see the module docstring for the rules."""
    _check_input(action, reason, note)
    now = now or utcnow()
    comment = _load(session, site_id, [comment_id]).get(comment_id)
    if comment is None:  # another site's comment looks exactly like a missing one
        raise CommentNotFound(f"no comment with id {comment_id!r}", field="id")
    before = _reviewed_before(session, [comment_id])
    _check_reviewable(comment, comment_id in before, key_id=key_id, version=version, now=now)
    return _apply(
        session,
        [comment],
        key_id=key_id,
        actor=actor,
        action=action,
        reason=reason,
        note=note,
        now=now,
    )[0]


def _check_all_reviewable(
    found: dict[str, Comment],
    comment_ids: Sequence[str],
    before: set[str],
    *,
    key_id: int,
    now: datetime,
) -> None:
    """Refuse the lot if any comment cannot be reviewed, naming the first ten at fault; the
    error is of the first one's kind."""
    problems: list[tuple[str, NotReviewable | ClaimConflict]] = []
    for comment_id in comment_ids:
        try:
            _check_reviewable(
                found[comment_id], comment_id in before, key_id=key_id, version=None, now=now
            )
        except (NotReviewable, ClaimConflict) as exc:
            problems.append((comment_id, exc))
    if problems:
        first = problems[0][1]
        kind = type(first)
        detail = "; ".join(str(exc) for _, exc in problems[:10])
        if len(problems) > 10:
            detail += f"; and {len(problems) - 10} more"
        raise kind(f"nothing was reviewed: {detail}", field="ids")


def review_many(
    session: Session,
    site_id: int,
    comment_ids: Sequence[str],
    *,
    key_id: int,
    actor: str,
    action: str,
    reason: str | None = None,
    note: str = "",
    now: datetime | None = None,
) -> list[Reviewed]:
    """One action on up to MAX_BULK comments, all or nothing: any problem changes none of them,
    and the error names every comment at fault."""
    _check_input(action, reason, note)
    if not 1 <= len(comment_ids) <= MAX_BULK:
        raise InvalidInput(f"ids must hold between 1 and {MAX_BULK} ids", field="ids")
    duplicates = sorted(i for i, n in Counter(comment_ids).items() if n > 1)
    if duplicates:
        raise InvalidInput(f"ids must not repeat; repeated: {', '.join(duplicates)}", field="ids")
    now = now or utcnow()
    found = _load(session, site_id, comment_ids)
    missing = [i for i in comment_ids if i not in found]
    if missing:
        raise CommentNotFound(f"no comments with ids: {', '.join(missing)}", field="ids")
    _check_all_reviewable(
        found, comment_ids, _reviewed_before(session, comment_ids), key_id=key_id, now=now
    )
    ordered = [found[i] for i in comment_ids]
    return _apply(
        session,
        ordered,
        key_id=key_id,
        actor=actor,
        action=action,
        reason=reason,
        note=note,
        now=now,
    )


def _submitted_event(comment: Comment) -> dict[str, Any]:
    return {
        "at": comment.created_at,
        "event": "submitted",
        "actor": "site",
        "data": {"external_id": comment.external_id, "article_id": comment.article_id},
    }


def _decided_events(session: Session, comment_id: str) -> list[dict[str, Any]]:
    decision = session.scalar(select(Decision).where(Decision.comment_id == comment_id))
    if decision is None:
        return []
    data = {
        "action": decision.action,
        "model_version": decision.model_version,
        "scores": decision.scores,
        "reasons": decision.reasons,
    }
    return [{"at": decision.decided_at, "event": "decided", "actor": "model", "data": data}]


def _audit_events(session: Session, comment_id: str) -> list[dict[str, Any]]:
    return [
        {"at": entry.created_at, "event": entry.event, "actor": entry.actor, "data": entry.data}
        for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.comment_id == comment_id).order_by(AuditEntry.id)
        )
    ]


def _review_events(session: Session, comment_id: str) -> list[dict[str, Any]]:
    return [
        {
            "at": review.created_at,
            "event": "reviewed",
            "actor": review.actor,
            "data": {k: v for k, v in review_view(review).items() if k not in ("at", "actor")},
        }
        for review in session.scalars(
            select(Review).where(Review.comment_id == comment_id).order_by(Review.id)
        )
    ]


def _webhook_events(session: Session, comment_id: str) -> list[dict[str, Any]]:
    return [
        {
            "at": delivery.created_at,
            "event": "webhook",
            "actor": "service",
            "data": {
                "delivery_id": delivery.id,
                "event": delivery.event,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "last_status_code": delivery.last_status_code,
                "delivered_at": delivery.delivered_at,
            },
        }
        for delivery in session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.comment_id == comment_id)
            .order_by(WebhookDelivery.created_at)
        )
    ]


def comment_history(session: Session, site_id: int, comment_id: str) -> list[dict[str, Any]]:
    """The comment's trail, oldest first: submitted, decided, claimed, reviewed, webhooks.

    Submission and the automatic decision are read from their own rows, which are written once
    and never change, so the scoring path pays no extra write for them; everything later is an
    audit entry, a review or a webhook delivery, all append-only.
    """
    comment = session.get(Comment, comment_id)
    if comment is None or comment.site_id != site_id:
        raise CommentNotFound(f"no comment with id {comment_id!r}", field="id")
    events = [
        _submitted_event(comment),
        *_decided_events(session, comment_id),
        *_audit_events(session, comment_id),
        *_review_events(session, comment_id),
        *_webhook_events(session, comment_id),
    ]
    events.sort(key=lambda e: e["at"])
    return events
