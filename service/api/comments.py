"""Routes for submitting and reading comments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from service.api.schemas import CommentOut, ErrorOut, SubmitOut
from service.comments.decisions import decision_payload
from service.comments.intake import get_comment, get_comment_by_external_id, submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.tables import Comment, CommentStatus, new_id
from service.http.deps import AnyKey, State, SubmitterKey
from service.http.state import AppState

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["comments"])


def _submit_view(comment: Comment) -> dict[str, Any]:
    decision = decision_payload(comment.decision) if comment.decision else None
    return {
        "id": comment.id,
        "external_id": comment.external_id,
        "status": comment.status,
        "decision": decision,
    }


def _comment_view(comment: Comment) -> dict[str, Any]:
    return {
        **_submit_view(comment),
        "article_id": comment.article_id,
        "author_id": comment.author.external_id,
        "parent_id": comment.parent_id,
        "section": comment.section,
        "text": comment.text,
        "metadata": comment.extra,
        "created_at": comment.created_at,
    }


def _store_and_enqueue(
    state: AppState, site_id: int, payload: CommentIn, comment_id: str
) -> tuple[dict[str, Any], bool, bool]:
    """(the comment's view, whether it is new, whether a worker will hear of it now)"""
    with session_scope(state.sessions) as session:
        submitted = submit_comment(
            session,
            site_id,
            payload,
            max_text_chars=state.settings.max_text_chars,
            comment_id=comment_id,
        )
        view = _submit_view(submitted.comment)
    # Enqueue only after the commit, so a worker never looks for a row it cannot see yet.
    enqueued = submitted.created and state.enqueue(view["id"])
    return view, submitted.created, enqueued


def _read(state: AppState, site_id: int, comment_id: str) -> dict[str, Any]:
    with session_scope(state.sessions) as session:
        return _submit_view(get_comment(session, site_id, comment_id))


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
        view, created, enqueued = await run_in_threadpool(
            _store_and_enqueue, state, caller.site_id, payload, comment_id
        )
    except BaseException:
        if future is not None:
            waiters.discard(comment_id, future)
        raise
    if future is not None and created and not enqueued:
        # Stored, but the queue is away: answer now rather than wait for what cannot come.
        waiters.discard(comment_id, future)
        future = None
    if future is not None and not created:
        waiters.discard(comment_id, future)
        future = None
        if view["status"] == CommentStatus.PENDING:
            # A retry of a comment still being decided: wait for that one instead.
            future = waiters.register(view["id"])
            view = await run_in_threadpool(_read, state, caller.site_id, view["id"])
    if future is not None and view["status"] == CommentStatus.PENDING:
        message = await waiters.wait(view["id"], future, wait_ms / 1000)
        if message is not None:
            view = {**view, "status": message["status"], "decision": message["decision"]}
        else:  # the wake-up may have been lost; the database knows for sure
            view = await run_in_threadpool(_read, state, caller.site_id, view["id"])
    elif future is not None:
        waiters.discard(view["id"], future)
    response.status_code = 202 if view["status"] == CommentStatus.PENDING else 200
    return view


@router.get("/comments/by-external-id/{external_id:path}", response_model=CommentOut)
async def get_by_external_id(external_id: str, caller: AnyKey, state: State) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            return _comment_view(get_comment_by_external_id(session, caller.site_id, external_id))

    return await run_in_threadpool(read)


@router.get("/comments/{comment_id}", response_model=CommentOut)
async def get_by_id(comment_id: str, caller: AnyKey, state: State) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            return _comment_view(get_comment(session, caller.site_id, comment_id))

    return await run_in_threadpool(read)
