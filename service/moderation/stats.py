"""Queue and model statistics for a site: queue size, hold rate, review times, overturn rates."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from service.core.tables import Comment, CommentStatus, Decision, Review, utcnow
from service.rules.reasons import Reason

__all__ = ["site_stats"]


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


_Bucket = dict[str, int]  # one hour's "decided", "held" and "reviewed"


def _held_now(session: Session, site_id: int) -> int | None:
    return session.scalar(
        select(func.count())
        .select_from(Comment)
        .where(Comment.site_id == site_id, Comment.status == CommentStatus.HELD)
    )


def _decided_since(session: Session, site_id: int, start: datetime) -> Sequence[Row[datetime, str]]:
    """(decided_at, action) of the site's decisions since `start`."""
    return session.execute(
        select(Decision.decided_at, Decision.action)
        .join(Comment, Comment.id == Decision.comment_id)
        .where(Comment.site_id == site_id, Decision.decided_at >= start)
    ).all()


def _reviews_since(
    session: Session, site_id: int, start: datetime
) -> Sequence[Row[str, str, datetime, datetime, list[dict[str, Any]]]]:
    """(comment, action, reviewed at, decided at, the decision's reasons), in review order."""
    return session.execute(
        select(
            Review.comment_id,
            Review.action,
            Review.created_at,
            Decision.decided_at,
            Decision.reasons,
        )
        .join(Decision, Decision.comment_id == Review.comment_id)
        .where(Review.site_id == site_id, Review.created_at >= start)
        .order_by(Review.id)
    ).all()


def _queue_before(session: Session, site_id: int, start: datetime) -> int:
    """The queue size when the window opens: held decisions before it, minus first reviews."""
    held_before = (
        session.scalar(
            select(func.count())
            .select_from(Decision)
            .join(Comment, Comment.id == Decision.comment_id)
            .where(
                Comment.site_id == site_id, Decision.action == "hold", Decision.decided_at < start
            )
        )
        or 0
    )
    first_reviews_before = (
        session.scalar(
            select(func.count(func.distinct(Review.comment_id))).where(
                Review.site_id == site_id,
                Review.created_at < start,
            )
        )
        or 0
    )
    return held_before - first_reviews_before


def _reviewed_before(session: Session, site_id: int, start: datetime) -> set[str]:
    return set(
        session.scalars(
            select(Review.comment_id).where(Review.site_id == site_id, Review.created_at < start)
        )
    )


def _buckets(
    start: datetime, hours: int, decided: Sequence[Row[datetime, str]]
) -> dict[datetime, _Bucket]:
    """One bucket per hour of the window, with its decisions and holds counted."""
    buckets = {
        start + timedelta(hours=h): {"decided": 0, "held": 0, "reviewed": 0} for h in range(hours)
    }
    for decided_at, action in decided:
        bucket = buckets.get(_hour(decided_at))
        if bucket is not None:
            bucket["decided"] += 1
            bucket["held"] += action == "hold"
    return buckets


def _first_reviews(
    reviews: Sequence[Row[str, str, datetime, datetime, list[dict[str, Any]]]],
    reviewed_earlier: set[str],
    buckets: dict[datetime, _Bucket],
) -> tuple[list[float], dict[str, dict[str, Any]]]:
    """Count each comment's first review in its hour; (seconds from decision to review, the
    overturns per attribute)."""
    first_seen: set[str] = set(reviewed_earlier)
    review_seconds: list[float] = []
    overturn: dict[str, dict[str, Any]] = {}
    for comment_id, action, reviewed_at, decided_at, reasons in reviews:
        if comment_id in first_seen:  # a later change of mind: not a first look at the model
            continue
        first_seen.add(comment_id)
        bucket = buckets.get(_hour(reviewed_at))
        if bucket is not None:
            bucket["reviewed"] += 1
        review_seconds.append((reviewed_at - decided_at).total_seconds())
        for reason in reasons or []:
            if reason.get("code") != Reason.ATTRIBUTE_OVER_THRESHOLD:
                continue
            row = overturn.setdefault(reason["attribute"], {"reviewed": 0, "overturned": 0})
            row["reviewed"] += 1
            row["overturned"] += action == "approve"
    for row in overturn.values():
        row["rate"] = round(row["overturned"] / row["reviewed"], 4)
    return review_seconds, overturn


def _series(buckets: dict[datetime, _Bucket], queue: int) -> list[dict[str, Any]]:
    """The hourly series; `queue` is the queue size when the window opens."""
    series = []
    for hour, bucket in sorted(buckets.items()):
        queue += bucket["held"] - bucket["reviewed"]
        series.append(
            {
                "hour": hour,
                "decided": bucket["decided"],
                "held": bucket["held"],
                "hold_rate": round(bucket["held"] / bucket["decided"], 4)
                if bucket["decided"]
                else None,
                "queue_size": max(queue, 0),
            }
        )
    return series


def site_stats(
    session: Session, site_id: int, *, hours: int = 24, now: datetime | None = None
) -> dict[str, Any]:
    """Figures over the last `hours` hours, and an hourly series for the chart.

    The overturn rate of an attribute is the share of comments held for it that moderators
    approved on their first review: 1 - overturn is the model's precision as people see it.
    """
    now = now or utcnow()
    start = _hour(now) - timedelta(hours=hours - 1)
    queue_size = _held_now(session, site_id)
    decided = _decided_since(session, site_id, start)
    reviews = _reviews_since(session, site_id, start)
    # Queue size at the end of each hour: held decisions before it, minus first reviews before it.
    queue_before = _queue_before(session, site_id, start)
    reviewed_earlier = _reviewed_before(session, site_id, start) if reviews else set()

    buckets = _buckets(start, hours, decided)
    review_seconds, overturn = _first_reviews(reviews, reviewed_earlier, buckets)
    total = len(decided)
    held = sum(action == "hold" for _, action in decided)
    return {
        "hours": hours,
        "queue_size": queue_size or 0,
        "decided": total,
        "held": held,
        "hold_rate": round(held / total, 4) if total else None,
        "decisions_per_hour": round(total / hours, 2),
        "reviewed": len(review_seconds),
        "median_review_seconds": round(statistics.median(review_seconds), 1)
        if review_seconds
        else None,
        "overturn": dict(sorted(overturn.items())),
        "series": _series(buckets, queue_before),
    }
