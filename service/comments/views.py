"""What a comment looks like outside: the views the API, the webhooks and the waiters share."""

from __future__ import annotations

from typing import Any

from service.core.tables import Comment, Decision

__all__ = ["comment_status_view", "comment_view", "decision_payload", "status_view"]


def decision_payload(decision: Decision) -> dict[str, Any]:
    return {
        "action": decision.action,
        "scores": decision.scores,
        "reasons": decision.reasons,
        "model_version": decision.model_version,
        "decided_at": decision.decided_at.isoformat(),
    }


def status_view(
    comment_id: str, external_id: str, *, status: str, decision: Decision | None
) -> dict[str, Any]:
    """The short view, `{"id", "external_id", "status", "decision"}`; decision None until decided.

    It takes the fields rather than a Comment because deciding knows the new status before the
    row it holds does (its guarded UPDATE does not refresh the object).
    """
    return {
        "id": comment_id,
        "external_id": external_id,
        "status": status,
        "decision": decision_payload(decision) if decision is not None else None,
    }


def comment_status_view(comment: Comment) -> dict[str, Any]:
    """The short view of a stored comment (what submitting answers)."""
    return status_view(
        comment.id, comment.external_id, status=comment.status, decision=comment.decision
    )


def comment_view(comment: Comment) -> dict[str, Any]:
    """The full view of a stored comment: the short view, where it was posted, and by whom."""
    return {
        **comment_status_view(comment),
        "article_id": comment.article_id,
        "author_id": comment.author.external_id,
        "parent_id": comment.parent_id,
        "section": comment.section,
        "text": comment.text,
        "metadata": comment.extra,
        "created_at": comment.created_at,
    }
