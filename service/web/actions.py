"""The moderators' forms: sign in, sign out, review one comment, review the selected ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from service.core.errors import AuthError, InvalidInput
from service.core.tables import Role
from service.http.deps import Anonymous, caller_of
from service.http.followups import send_review_webhooks
from service.http.state import state_of
from service.http.units import run_unit
from service.moderation.reviews import Reviewed, review_comment, review_many
from service.web.auth import new_session
from service.web.deps import (
    SIGN_IN_ROLES,
    CheckedForm,
    Form,
    Moderator,
    SignedIn,
    WebRoute,
    check_csrf,
    current_session,
    html_page,
    read_form,
    safe_next,
    set_session_cookie,
    wants_json,
    with_params,
)
from service.web.sessions import end_session

__all__ = ["router"]

router = APIRouter(prefix="/moderate", route_class=WebRoute, include_in_schema=False)


def _login_page(
    request: Request, *, csrf: str, next_url: str, error: str | None = None, status: int = 200
) -> Response:
    ended = request.query_params.get("ended") == "1"
    signed_out = request.query_params.get("signed_out") == "1"
    return html_page(
        request,
        "login.html",
        status_code=status,
        csrf=csrf,
        next_url=next_url,
        error=error,
        ended=ended,
        signed_out=signed_out,
    )


@router.get("/login", dependencies=[Anonymous])
def login_form(request: Request, next: str | None = None) -> Response:
    # The sign-in form is protected like every other: a session without a key carries its
    # CSRF token, so nobody can sign a browser in to their own key from another site.
    web = current_session(request)
    if web is None:
        web = new_session()
    response = _login_page(request, csrf=web.csrf, next_url=safe_next(next))
    set_session_cookie(request, response, web)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    web = current_session(request)
    check_csrf(request, form, web)
    assert web is not None
    next_url = safe_next(form.get("next"))
    plain = (form.get("key") or "").strip()
    state = state_of(request)

    # Failed sign-ins count against the address, as failed API calls do: guessing stays slow.
    address = request.client.host if request.client else None
    try:
        caller = await caller_of(state, plain or None, roles=Role.ALL, address=address, field="key")
    except AuthError as exc:
        message = "Enter your moderator key." if not plain else f"Not signed in: {exc.detail}."
        return _login_page(request, csrf=web.csrf, next_url=next_url, error=message, status=401)
    key_id, role = caller.key_id, caller.role
    if role not in SIGN_IN_ROLES:
        message = (
            f"Not signed in: a {role} key may not moderate. "
            "Sign in with a moderator, site admin or operator key."
        )
        return _login_page(request, csrf=web.csrf, next_url=next_url, error=message, status=403)
    # A new CSRF token at sign-in, so a token seen before it is worth nothing after.
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(request, response, new_session(key_id))
    return response


@router.get("/logout")
def logout_form(request: Request, me: SignedIn) -> Response:
    return html_page(request, "logout.html", moderator=me)


@router.post("/logout")
def logout(request: Request, me: SignedIn, form: CheckedForm) -> Response:
    state = state_of(request)
    lifetime = timedelta(hours=state.settings.web_session_hours)
    run_unit(state.sessions, lambda session: end_session(session, me.session, lifetime=lifetime))
    response = RedirectResponse("/moderate/login?signed_out=1", status_code=303)
    set_session_cookie(request, response, new_session())
    return response


def _reason(form_value: str | None) -> str | None:
    return (form_value or "").strip() or None


def _done(
    request: Request, form_next: str | None, reviewed: list[Reviewed], action: str
) -> Response:
    if wants_json(request):
        return JSONResponse({"reviewed": [r.view for r in reviewed]})
    target = with_params(safe_next(form_next), done=action, n=len(reviewed))
    return RedirectResponse(target, status_code=303)


def _review_fields(me: Moderator, form: Form, action: str) -> dict[str, Any]:
    """Who reviews, and the action, reason and note of the form: the same for one or many."""
    return {
        "key_id": me.caller.key_id,
        "actor": me.caller.actor,
        "action": action,
        "reason": _reason(form.get("reason")),
        "note": (form.get("note") or "").strip(),
    }


@router.post("/comments/{comment_id}/review")
def review_one(request: Request, comment_id: str, me: SignedIn, form: CheckedForm) -> Response:
    """Approve or reject one comment, at the version the moderator was shown."""
    action = form.get("action") or ""
    version_field = (form.get("version") or "").strip()
    if version_field and not version_field.isdigit():
        raise InvalidInput("version must be a whole number", field="version")
    state = state_of(request)

    def review(session: Session) -> list[Reviewed]:
        reviewed = review_comment(
            session,
            me.caller.site_id,
            comment_id,
            **_review_fields(me, form, action),
            version=int(version_field) if version_field else None,
        )
        return [reviewed]

    reviewed = run_unit(state.sessions, review, after_commit=send_review_webhooks(state))
    return _done(request, form.get("next"), reviewed, action)


@router.post("/review")
def review_selected(request: Request, me: SignedIn, form: CheckedForm) -> Response:
    """One action on every selected comment, all or nothing."""
    action = form.get("action") or ""
    ids = [i for i in form.getlist("ids") if i.strip()]
    if not ids:
        raise InvalidInput("select at least one comment first (x, or its checkbox)", field="ids")
    state = state_of(request)

    def review(session: Session) -> list[Reviewed]:
        return review_many(session, me.caller.site_id, ids, **_review_fields(me, form, action))

    reviewed = run_unit(state.sessions, review, after_commit=send_review_webhooks(state))
    return _done(request, form.get("next"), reviewed, action)
