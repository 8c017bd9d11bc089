"""Routes for moderators: the queue, claims, reviews, a comment's history, authors, stats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from service.api.schemas import AuthorTrustIn, BulkReviewIn, ClaimOut, QueueOut, ReviewIn, ReviewOut
from service.http.deps import AdminKey, ModeratorKey, SiteId, State
from service.http.followups import send_review_webhooks
from service.http.units import in_session
from service.moderation.authors import author_view, set_author_trust
from service.moderation.erasure import erase_author
from service.moderation.review_queue import QueueFilters, claim_items, list_queue
from service.moderation.reviews import Reviewed, comment_history, review_comment, review_many
from service.moderation.stats import site_stats

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["moderation"])


def _review_out(reviewed: Reviewed) -> dict[str, Any]:
    return {**reviewed.view, "review": reviewed.review}


@router.get("/queue", response_model=QueueOut, summary="Held comments of the site")
async def get_queue(
    caller: ModeratorKey,
    site_id: SiteId,
    state: State,
    article_id: str | None = None,
    section: str | None = None,
    author_id: str | None = None,
    reason: Annotated[str | None, Query(description="A reason code, e.g. scoring_error")] = None,
    attribute: Annotated[str | None, Query(description="Held for this attribute")] = None,
    since: Annotated[datetime | None, Query(description="Submitted at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Submitted before (ISO 8601)")] = None,
    sort: Literal["score", "age"] = "score",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    filters = QueueFilters(article_id, section, author_id, reason, attribute, since, until)

    def read(session: Session) -> dict[str, Any]:
        page = list_queue(session, site_id, filters=filters, sort=sort, limit=limit, cursor=cursor)
        return {"items": page.items, "next_cursor": page.next_cursor}

    return await in_session(state, read)


@router.post("/queue/claim", response_model=ClaimOut, summary="Lease held comments to review")
async def claim(
    caller: ModeratorKey,
    site_id: SiteId,
    state: State,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    seconds = state.settings.claim_seconds

    def write(session: Session) -> list[dict[str, Any]]:
        return claim_items(
            session, site_id, caller.key_id, limit=limit, claim_seconds=seconds, actor=caller.actor
        )

    return {"items": await in_session(state, write), "claim_seconds": seconds}


@router.post("/comments/{comment_id}/review", response_model=ReviewOut, summary="Approve or reject")
async def review(
    comment_id: str, payload: ReviewIn, caller: ModeratorKey, site_id: SiteId, state: State
) -> dict[str, Any]:
    def write(session: Session) -> list[Reviewed]:
        reviewed = review_comment(
            session,
            site_id,
            comment_id,
            key_id=caller.key_id,
            actor=caller.actor,
            action=payload.action,
            reason=payload.reason,
            note=payload.note,
            version=payload.version,
        )
        return [reviewed]

    [reviewed] = await in_session(state, write, after_commit=send_review_webhooks(state))
    return _review_out(reviewed)


@router.post("/reviews", summary="One action on up to 500 comments, all or nothing")
async def bulk_review(
    payload: BulkReviewIn, caller: ModeratorKey, site_id: SiteId, state: State
) -> dict[str, Any]:
    def write(session: Session) -> list[Reviewed]:
        return review_many(
            session,
            site_id,
            payload.ids,
            key_id=caller.key_id,
            actor=caller.actor,
            action=payload.action,
            reason=payload.reason,
            note=payload.note,
        )

    reviewed = await in_session(state, write, after_commit=send_review_webhooks(state))
    return {"reviewed": len(reviewed), "items": [_review_out(r) for r in reviewed]}


@router.get("/comments/{comment_id}/history", summary="The comment's audit trail")
async def history(
    comment_id: str, caller: ModeratorKey, site_id: SiteId, state: State
) -> dict[str, Any]:
    events = await in_session(state, lambda session: comment_history(session, site_id, comment_id))
    return {"id": comment_id, "events": events}


@router.get("/authors/{author_id:path}", summary="An author's trust and history")
async def get_author(
    author_id: str, caller: ModeratorKey, site_id: SiteId, state: State
) -> dict[str, Any]:
    return await in_session(state, lambda session: author_view(session, site_id, author_id))


@router.post("/authors/{author_id:path}", summary="Mark an author trusted, premoderated or banned")
async def post_author(
    author_id: str, payload: AuthorTrustIn, caller: ModeratorKey, site_id: SiteId, state: State
) -> dict[str, Any]:
    def write(session: Session) -> dict[str, Any]:
        return set_author_trust(
            session, site_id, author_id, payload.trust, actor=caller.actor, note=payload.note
        )

    return await in_session(state, write)


@router.delete(
    "/authors/{author_id:path}",
    summary="Erase an author's comments: texts, metadata, labels and what was made of them",
    description=(
        "For a reader's request to be forgotten. Every comment of the author on the site "
        "loses its text and metadata, its labels, the words its decision and webhook payloads "
        "quoted, and moderators' notes on it; pending and held ones are rejected. Counts and "
        "decisions without text stay; the erasure is audited with counts only. Site admin keys."
    ),
)
async def delete_author(
    author_id: str, caller: AdminKey, site_id: SiteId, state: State
) -> dict[str, Any]:
    # Its own transactions, a chunk of comments each (service/moderation/erasure.py).
    return await run_in_threadpool(
        erase_author, state.sessions, site_id, author_id, actor=caller.actor
    )


@router.get("/stats", summary="Queue size, hold rate, review time, overturn rate")
async def stats(
    caller: ModeratorKey,
    site_id: SiteId,
    state: State,
    hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24,
) -> dict[str, Any]:
    return await in_session(state, lambda session: site_stats(session, site_id, hours=hours))
