"""Routes for submitting and reading comments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from service.api.schemas import CommentOut, ErrorOut, SubmitOut
from service.comments.intake import get_comment, get_comment_by_external_id
from service.comments.schemas import CommentIn
from service.comments.views import comment_status_view, comment_view
from service.core.metrics import COMMENTS_SUBMITTED
from service.core.tables import CommentStatus, new_id
from service.http.deps import AnyKey, State, SubmitterKey
from service.http.state import AppState
from service.http.units import in_session

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["comments"])


async def _read(state: AppState, site_id: int, comment_id: str) -> dict[str, Any]:
    return await in_session(
        state, lambda session: comment_status_view(get_comment(session, site_id, comment_id))
    )


@router.post(
    "/comments",
    response_model=SubmitOut,
    status_code=202,
    responses={
        200: {"model": SubmitOut, "description": "Decided within `wait_ms`."},
        409: {"model": ErrorOut, "description": "The external id holds a different comment."},
    },
    summary="Submit a reader comment for moderation",
)
async def post_comment(
    payload: CommentIn,
    caller: SubmitterKey,
    state: State,
    response: Response,
    wait_ms: Annotated[int, Query(ge=0, le=5000, description="Wait this long for a decision")] = 0,
) -> dict[str, Any]:
    waiters = state.waiters
    comment_id = new_id()
    # Listen before the task exists, so even an instant decision cannot be missed.
    future = waiters.register(comment_id) if wait_ms else None
    try:
        # Stored and enqueued with whatever other comments arrived meanwhile (group commit).
        stored = await state.intake.submit(caller.site_id, payload, comment_id)
    except BaseException:
        if future is not None:
            waiters.discard(comment_id, future)
        raise
    view, created = stored.view, stored.created
    if created:
        COMMENTS_SUBMITTED.labels(site=caller.site_name).inc()
    if future is not None and created and not stored.enqueued:
        # Stored, but the queue is away: answer now rather than wait for what cannot come.
        waiters.discard(comment_id, future)
        future = None
    if future is not None and not created:
        waiters.discard(comment_id, future)
        future = None
        if view["status"] == CommentStatus.PENDING:
            # A retry of a comment still being decided: wait for that one instead.
            future = waiters.register(view["id"])
            view = await _read(state, caller.site_id, view["id"])
    if future is not None and view["status"] == CommentStatus.PENDING:
        message = await waiters.wait(view["id"], future, wait_ms / 1000)
        if message is not None:
            view = {**view, "status": message["status"], "decision": message["decision"]}
        else:  # the wake-up may have been lost; the database knows for sure
            view = await _read(state, caller.site_id, view["id"])
    elif future is not None:
        waiters.discard(view["id"], future)
    response.status_code = 202 if view["status"] == CommentStatus.PENDING else 200
    return view


@router.get("/comments/by-external-id/{external_id:path}", response_model=CommentOut)
async def get_by_external_id(external_id: str, caller: AnyKey, state: State) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        return comment_view(get_comment_by_external_id(session, caller.site_id, external_id))

    return await in_session(state, read)


@router.get("/comments/{comment_id}", response_model=CommentOut)
async def get_by_id(comment_id: str, caller: AnyKey, state: State) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        return comment_view(get_comment(session, caller.site_id, comment_id))

    return await in_session(state, read)
