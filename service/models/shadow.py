"""Shadow mode: a candidate scores live comments beside the active model, and how it compares.

A shadow never decides anything. Deciding a batch scores it with the shadow too (one model
call, before the first write, like the active model's), applies the same site policy, and
stores one ShadowScore per decided comment in the decisions' transaction, inside a savepoint:
a shadow that fails to score or to store is logged and dropped, and the decisions go on.

The report compares the shadow's action with the active decision, and both with the
moderators' last word on the comments they reviewed (a hold is right when the comment was
rejected, an approval when it was approved).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVarTuple

import numpy as np
import structlog
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from service.core.errors import ModelNotFound
from service.core.tables import Comment, Decision, ModelVersion, Review, ShadowScore, utcnow
from service.models.registry import active_version, shadow_version
from service.rules.policy import Policy, apply_policy

__all__ = [
    "ShadowBatch",
    "ShadowItem",
    "ShadowScorer",
    "record_shadow",
    "score_shadow",
    "shadow_report",
]

log = structlog.get_logger(__name__)

_Ts = TypeVarTuple("_Ts")

# Reviewed comments are those the active model held, plus any a site audits: the comparison
# with moderators says little about what the shadow would hold that the active model approved.
REVIEW_NOTE = (
    "Only comments moderators reviewed count here, and they review what the active model held "
    "(and what a site audits of the rest): a shadow hold of a comment the active model "
    "approved is rarely checked, so compare the shares with that in mind."
)


class ShadowScorer(Protocol):
    """What a shadow needs of a model (service.models.scoring.ModelScorer is one)."""

    @property
    def version(self) -> str: ...

    @property
    def attributes(self) -> Sequence[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ShadowItem:
    """A comment the active model scored, with the policy and author trust it was judged by."""

    comment_id: str
    text: str
    policy: Policy
    trust: str


@dataclass(frozen=True)
class ShadowBatch:
    """The shadow's verdicts on a batch: comment id -> (action, rounded scores)."""

    version: str
    verdicts: dict[str, tuple[str, dict[str, float]]]


def score_shadow(shadow: ShadowScorer, items: Sequence[ShadowItem]) -> ShadowBatch | None:
    """Score `items` in one call and apply each one's policy; None (logged) if anything fails."""
    if not items:
        return None
    try:
        proba = shadow.predict_proba([item.text for item in items])
        verdicts: dict[str, tuple[str, dict[str, float]]] = {}
        for item, row in zip(items, proba, strict=True):
            raw = {a: float(p) for a, p in zip(shadow.attributes, row, strict=True)}
            action = apply_policy(item.policy, raw, trust=item.trust).action
            verdicts[item.comment_id] = (action, {a: round(p, 4) for a, p in raw.items()})
        return ShadowBatch(shadow.version, verdicts)
    except Exception:
        log.exception("shadow_scoring_failed", size=len(items))
        return None


def record_shadow(session: Session, batch: ShadowBatch, *, decided: Collection[str]) -> int:
    """Store the verdicts on the comments of `decided`; returns how many (0 if storing failed).

    Call it after the decisions are flushed: a savepoint keeps a failed insert from rolling
    back the decisions around it.
    """
    now = utcnow()
    rows = [
        ShadowScore(
            version=batch.version, comment_id=cid, action=action, scores=scores, created_at=now
        )
        for cid, (action, scores) in batch.verdicts.items()
        if cid in decided
    ]
    if not rows:
        return 0
    try:
        with session.begin_nested():
            session.add_all(rows)
    except Exception:
        log.exception("shadow_record_failed", version=batch.version, size=len(rows))
        return 0
    return len(rows)


def _hold(action: str) -> bool:
    # A banned author's comment is rejected outright; for these tables it counts as held.
    return action != "approve"


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _confusion(pairs: Counter[tuple[bool, bool]]) -> dict[str, Any]:
    """A model's actions against moderators' verdicts: (held, rejected) -> count."""
    cells = {
        "hold_reject": pairs[True, True],
        "hold_approve": pairs[True, False],
        "approve_reject": pairs[False, True],
        "approve_approve": pairs[False, False],
    }
    right = cells["hold_reject"] + cells["approve_approve"]
    return {"correct": _share(right, sum(cells.values())), **cells}


def _scoped(query: Select[*_Ts], version: str, site_id: int | None) -> Select[*_Ts]:
    """Only the shadow scores of `version`, and with `site_id` only that site's comments."""
    query = query.where(ShadowScore.version == version)
    if site_id is not None:
        query = query.join(Comment, Comment.id == ShadowScore.comment_id).where(
            Comment.site_id == site_id
        )
    return query


def _paired(session: Session, version: str, site_id: int | None) -> Counter[tuple[bool, bool]]:
    """(active held, shadow held) -> how many comments both models scored."""
    paired = session.execute(
        _scoped(
            select(Decision.action, ShadowScore.action, func.count())
            .select_from(ShadowScore)
            .join(Decision, Decision.comment_id == ShadowScore.comment_id)
            .group_by(Decision.action, ShadowScore.action),
            version,
            site_id,
        )
    ).all()
    table: Counter[tuple[bool, bool]] = Counter()
    for active_action, shadow_action, count in paired:
        table[_hold(active_action), _hold(shadow_action)] += count
    return table


def _with_last_review(
    session: Session, version: str, site_id: int | None
) -> Sequence[Row[str, str, str, int]]:
    """(active action, shadow action, moderators' last action, count) of reviewed comments."""
    # A comment may be reviewed more than once: its last review is the moderators' verdict.
    last_review = _scoped(
        select(ShadowScore.comment_id, func.max(Review.id).label("review_id"))
        .select_from(ShadowScore)
        .join(Review, Review.comment_id == ShadowScore.comment_id)
        .group_by(ShadowScore.comment_id),
        version,
        site_id,
    ).subquery()
    return session.execute(
        _scoped(
            select(Decision.action, ShadowScore.action, Review.action, func.count())
            .select_from(ShadowScore)
            .join(Decision, Decision.comment_id == ShadowScore.comment_id)
            .join(last_review, last_review.c.comment_id == ShadowScore.comment_id)
            .join(Review, Review.id == last_review.c.review_id)
            .group_by(Decision.action, ShadowScore.action, Review.action),
            version,
            site_id,
        )
    ).all()


def _agreement(table: Counter[tuple[bool, bool]], scored: int) -> dict[str, Any]:
    """The shadow's actions against the active decisions: (active held, shadow held) -> count."""
    return {
        "share": _share(table[True, True] + table[False, False], scored),
        "active_hold_rate": _share(table[True, True] + table[True, False], scored),
        "shadow_hold_rate": _share(table[True, True] + table[False, True], scored),
        "table": {
            "active_hold": {
                "shadow_hold": table[True, True],
                "shadow_approve": table[True, False],
            },
            "active_approve": {
                "shadow_hold": table[False, True],
                "shadow_approve": table[False, False],
            },
        },
    }


def _against_reviews(verdicts: Sequence[Row[str, str, str, int]]) -> dict[str, Any]:
    """Both models' actions against the moderators' last word, and where only one was right."""
    active_vs: Counter[tuple[bool, bool]] = Counter()
    shadow_vs: Counter[tuple[bool, bool]] = Counter()
    only_shadow = only_active = 0
    for active_action, shadow_action, review_action, count in verdicts:
        rejected = review_action == "reject"
        active_held, shadow_held = _hold(active_action), _hold(shadow_action)
        active_vs[active_held, rejected] += count
        shadow_vs[shadow_held, rejected] += count
        if (shadow_held == rejected) != (active_held == rejected):
            if shadow_held == rejected:
                only_shadow += count
            else:
                only_active += count
    return {
        "reviewed": sum(active_vs.values()),
        "rejected": active_vs[True, True] + active_vs[False, True],
        "shadow": _confusion(shadow_vs),
        "active": _confusion(active_vs),
        "only_shadow_correct": only_shadow,
        "only_active_correct": only_active,
        "note": REVIEW_NOTE,
    }


def shadow_report(session: Session, version: str, *, site_id: int | None = None) -> dict[str, Any]:
    """How `version` did in shadow: agreement with the active decisions, and with moderators.

    `site_id` limits the figures to one site's comments; None counts every site.
    """
    row = session.get(ModelVersion, version)
    if row is None:
        raise ModelNotFound(f"no model version {version!r}", field="version")
    table = _paired(session, version, site_id)
    span = session.execute(
        _scoped(
            select(func.min(ShadowScore.created_at), func.max(ShadowScore.created_at)),
            version,
            site_id,
        )
    ).one()
    beside = session.execute(
        _scoped(
            select(Decision.model_version, func.count())
            .select_from(ShadowScore)
            .join(Decision, Decision.comment_id == ShadowScore.comment_id)
            .group_by(Decision.model_version),
            version,
            site_id,
        )
    ).all()
    verdicts = _with_last_review(session, version, site_id)
    scored = sum(table.values())
    return {
        "version": version,
        "status": row.status,
        "in_shadow": shadow_version(session) == version,
        "active_version": active_version(session),
        "scored": scored,
        "first_scored_at": span[0],
        "last_scored_at": span[1],
        "compared_with": {model: count for model, count in beside},
        "agreement": _agreement(table, scored),
        "reviews": _against_reviews(verdicts),
    }
