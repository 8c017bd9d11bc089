"""The moderators' pages: the queue, one comment with its audit trail, an author, the stats."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from service.comments.intake import get_comment
from service.core.errors import InvalidInput, NotFound
from service.core.tables import CommentStatus, utcnow
from service.http.state import state_of
from service.http.units import run_unit
from service.moderation.authors import author_view
from service.moderation.review_queue import QueueFilters, author_histories, list_queue, queue_item
from service.moderation.reviews import comment_history
from service.moderation.stats import site_stats
from service.web.deps import SignedIn, SignedInPolling, WebRoute, html_page
from service.web.render import STATIC_DIR

__all__ = ["router"]

router = APIRouter(prefix="/moderate", route_class=WebRoute, include_in_schema=False)

PAGE_SIZE = 50
# Live updates ask for comments held since a little before the page was rendered (clocks of
# API replicas differ slightly), and skip the ids the page already shows.
LIVE_LOOKBACK = timedelta(seconds=30)
STATS_HOURS = (24, 48, 168)
_STATIC = {"moderate.js": "text/javascript", "moderate.css": "text/css"}
_NOTICES = {"approve": "Approved", "reject": "Rejected"}


def _blank_to_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _filters(
    article: str | None,
    section: str | None,
    author: str | None,
    reason: str | None,
    attribute: str | None,
    *,
    since: datetime | None = None,
) -> QueueFilters:
    return QueueFilters(
        article_id=_blank_to_none(article),
        section=_blank_to_none(section),
        author_id=_blank_to_none(author),
        reason=_blank_to_none(reason),
        attribute=_blank_to_none(attribute),
        since=since,
    )


def _notice(done: str | None, count: str | None) -> str | None:
    if done not in _NOTICES or not (count or "").isdigit():
        return None
    n = int(count or 0)
    return f"{_NOTICES[done or '']} {n} comment{'' if n == 1 else 's'}."


@router.get("")
def queue_page(
    request: Request,
    me: SignedIn,
    article: str | None = None,
    section: str | None = None,
    author: str | None = None,
    reason: str | None = None,
    attribute: str | None = None,
    sort: str = "score",
    cursor: str | None = None,
    done: str | None = None,
    n: str | None = None,
) -> HTMLResponse:
    """Held comments, highest score first (or oldest first), filtered and paged."""
    order: Literal["score", "age"] = "age" if sort == "age" else "score"
    filters = _filters(article, section, author, reason, attribute)
    rendered_at = utcnow()
    page = run_unit(
        state_of(request).sessions,
        lambda session: list_queue(
            session,
            me.caller.site_id,
            filters=filters,
            sort=order,
            limit=PAGE_SIZE,
            cursor=_blank_to_none(cursor),
        ),
    )
    shown = {
        "article": filters.article_id or "",
        "section": filters.section or "",
        "author": filters.author_id or "",
        "reason": filters.reason or "",
        "attribute": filters.attribute or "",
        "sort": order,
    }
    return html_page(
        request,
        "queue.html",
        moderator=me,
        items=page.items,
        next_cursor=page.next_cursor,
        first_page=not cursor,
        filters=shown,
        filter_query=urlencode(
            {k: v for k, v in shown.items() if v and (k, v) != ("sort", "score")}
        ),
        live_since=(rendered_at - LIVE_LOOKBACK).isoformat(),
        notice=_notice(done, n),
    )


@router.get("/queue/new")
def queue_updates(
    request: Request,
    me: SignedInPolling,
    since: str = "",
    article: str | None = None,
    section: str | None = None,
    author: str | None = None,
    reason: str | None = None,
    attribute: str | None = None,
    sort: str = "score",
) -> HTMLResponse:
    """Held comments decided since the page was rendered, as list items the page's script
    inserts into the queue (it skips those it already shows)."""
    try:
        after = datetime.fromisoformat(since)
    except ValueError as exc:
        raise InvalidInput("since must be an ISO 8601 time", field="since") from exc
    if after.tzinfo is None:
        raise InvalidInput("since must carry a time zone", field="since")
    filters = replace(_filters(article, section, author, reason, attribute), held_since=after)
    page = run_unit(
        state_of(request).sessions,
        lambda session: list_queue(
            session,
            me.caller.site_id,
            filters=filters,
            sort="age" if sort == "age" else "score",
            limit=100,
        ),
    )
    # Without the script these forms would return to the queue, never to this fragment.
    return html_page(request, "_items.html", moderator=me, items=page.items, here="/moderate")


def _comment_context(session: Session, site_id: int, comment_id: str) -> dict[str, Any]:
    comment = get_comment(session, site_id, comment_id)
    history = author_histories(session, [comment.author_id])[comment.author_id]
    events = comment_history(session, site_id, comment_id)
    return {
        "item": queue_item(comment, comment.decision, history),
        "events": events,
        # What service.moderation.reviews accepts: held comments, and comments reviewed before.
        "reviewable": comment.status == CommentStatus.HELD
        or any(e["event"] == "reviewed" for e in events),
    }


@router.get("/comments/{comment_id}")
def comment_page(
    request: Request, me: SignedIn, comment_id: str, done: str | None = None, n: str | None = None
) -> HTMLResponse:
    """One comment, its scores and reasons, the review buttons and its whole audit trail."""
    context = run_unit(
        state_of(request).sessions,
        lambda session: _comment_context(session, me.caller.site_id, comment_id),
    )
    return html_page(request, "comment.html", moderator=me, notice=_notice(done, n), **context)


@router.get("/authors/{author_id:path}")
def author_page(
    request: Request, me: SignedIn, author_id: str, fragment: str | None = None
) -> HTMLResponse:
    """An author's standing, counts and latest comments; `fragment=1` for the inline panel."""
    author = run_unit(
        state_of(request).sessions,
        lambda session: author_view(session, me.caller.site_id, author_id),
    )
    template = "_author.html" if fragment else "author.html"
    return html_page(request, template, moderator=me, author=author)


@router.get("/stats")
def stats_page(request: Request, me: SignedIn, hours: str = "24") -> HTMLResponse:
    """Queue size, hold rate, review times and overturn rates, with an hourly chart."""
    span = int(hours) if hours.isdigit() and int(hours) in STATS_HOURS else STATS_HOURS[0]
    stats = run_unit(
        state_of(request).sessions,
        lambda session: site_stats(session, me.caller.site_id, hours=span),
    )
    return html_page(
        request, "stats.html", moderator=me, stats=stats, hours=span, choices=STATS_HOURS
    )


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The pages' one script and one style sheet; cached, since their links carry a hash."""
    if name not in _STATIC:
        raise NotFound(f"no static file {name!r}")
    return FileResponse(
        STATIC_DIR / name,
        media_type=_STATIC[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )
